"""Start the emulator on a free loopback port and stop when the parent goes away.

Prints one line ``READY http://127.0.0.1:<port>`` on stdout when it accepts calls. It exits when its
standard input closes (the parent died or closed the pipe), on SIGTERM/SIGINT, or when the parent
process id changes, so no emulator outlives the test or demo that started it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from werkzeug.serving import make_server


def _exit_when_orphaned(parent: int) -> None:
    def watch_stdin() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Thread(target=watch_parent, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--no-watch-stdin", action="store_true", help="keep running when stdin closes")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    args = parser.parse_args()

    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .app import OpsEmulator
    from .seed import DemoSeeder

    moto_app = DomainDispatcherApplication(create_backend_app)
    seeder = DemoSeeder()
    server = make_server(args.host, args.port, OpsEmulator(moto_app, args.region, seeder), threaded=True)
    url = f"http://{args.host}:{server.server_port}"
    seeder.endpoint = url
    if not args.no_watch_stdin:
        _exit_when_orphaned(os.getppid())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    print(f"READY {url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
