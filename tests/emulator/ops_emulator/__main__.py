"""Start the emulator on a free loopback port and stop when the parent goes away.

Prints one line ``READY http://127.0.0.1:<port>`` on stdout when it accepts calls. It exits when its
standard input closes (the parent died or closed the pipe), on SIGTERM/SIGINT, or when the parent
process id changes, so no emulator outlives the test or demo that started it.

``--zygote`` starts emulators on request instead, each a fork of this process taken after the
imports (moto's take about 2.5 s of CPU: a test run starts hundreds of emulators). It reads lines
on stdin and answers each on stdout:

- ``spawn <id> <log path>``: fork a fresh emulator logging to that file; ``<id> READY <pid> <url>``.
- ``kill <id> <pid>``: stop that emulator and wait until it is gone; ``<id> GONE <pid>``.

It exits when its stdin closes, and each emulator exits when its zygote is gone, so none outlives
the test process that started the zygote. Each fork starts from the freshly imported state: no
request is ever served by the zygote itself, so emulators share nothing.
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


def _exit_when_parent_goes(parent: int) -> None:
    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()


def _server(host: str, port: int, region: str):  # type: ignore[no-untyped-def]
    """A server for a fresh emulator, and its URL."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .app import OpsEmulator
    from .seed import DemoSeeder

    moto_app = DomainDispatcherApplication(create_backend_app)
    seeder = DemoSeeder()
    server = make_server(host, port, OpsEmulator(moto_app, region, seeder), threaded=True)
    url = f"http://{host}:{server.server_port}"
    seeder.endpoint = url
    return server, url


def _answer(line: str) -> None:
    """One answer line in one write to the pipe: forks answer at the same time, and a `print` may
    write the text and its newline apart (unbuffered stdout), which ran two answers into one."""
    data = (line.replace("\n", " ") + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _zygote(host: str, region: str) -> None:
    """Fork emulators on request (see the module doc); single-threaded until each fork."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: F401 (import now)

    from .app import OpsEmulator  # noqa: F401
    from .seed import DemoSeeder  # noqa: F401

    zygote = os.getpid()
    for line in sys.stdin:
        # At most three words: a log path may hold spaces.
        words = line.rstrip("\n").split(" ", 2)
        if len(words) == 3 and words[0] == "spawn":
            _, request, log_path = words
            child = os.fork()
            if child == 0:
                try:
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    os.dup2(log, 2)
                    sys.stderr = os.fdopen(2, "w", buffering=1)
                    server, url = _server(host, 0, region)
                    _exit_when_parent_goes(zygote)
                    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
                    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
                    _answer(f"{request} READY {os.getpid()} {url}")
                    server.serve_forever()
                except BaseException as error:  # noqa: BLE001 (say why, then go)
                    _answer(f"{request} FAILED {error!r}")
                finally:
                    os._exit(1)
        elif len(words) == 3 and words[0] == "kill":
            _, request, pid = words
            try:
                os.kill(int(pid), signal.SIGTERM)
                os.waitpid(int(pid), 0)
            except (ChildProcessError, ProcessLookupError, ValueError):
                pass
            _answer(f"{request} GONE {pid}")
        else:
            print(f"? unknown request: {line.strip()}", file=sys.stderr, flush=True)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="ops_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--no-watch-stdin", action="store_true", help="keep running when stdin closes")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    parser.add_argument("--zygote", action="store_true", help="fork emulators on request (see above)")
    args = parser.parse_args()

    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    if args.zygote:
        _zygote(args.host, args.region)
        return
    server, url = _server(args.host, args.port, args.region)
    if not args.no_watch_stdin:
        _exit_when_orphaned(os.getppid())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    print(f"READY {url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
