"""The WSGI application: moto's server behind the launcher's bridges, faults and controls.

Order of work for each request: a ``/_ops/...`` control is answered here; an AWS call is counted and
may get an injected fault; CloudWatch CBOR goes through the bridge; lifecycle-action completion is
answered here, and so is IAM's SimulatePrincipalPolicy; everything else is moto's, with SNS publishes
copied to the outbox.
"""

from __future__ import annotations

import io
import json
import socket
import time
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID

from . import blue_green, ec2_addresses, ecr_push, ecs_controls, elbv2_health, elbv2_tags, iam_simulate, lifecycle, sns_outbox
from . import ecs_awsvpc, ecs_strategies, ecs_task_definitions
from . import dynamodb_transactions
from .cbor_bridge import serve_cbor
from .faults import FaultInjector, FaultRuleError
from .protocol import AwsCall, error_response, identify, json_shape_errors, throttle_code

CONTROL_ERRORS = (
    FaultRuleError,
    ecs_controls.ControlError,
    elbv2_health.HealthError,
    lifecycle.LifecycleError,
    ecr_push.PushError,
    blue_green.BlueGreenError,
    KeyError,
)


class OpsEmulator:
    """WSGI middleware around moto's DomainDispatcherApplication."""

    def __init__(self, moto_app, region: str, seeder=None) -> None:
        self.moto_app = moto_app
        self.region = region
        self.account = DEFAULT_ACCOUNT_ID
        self.faults = FaultInjector()
        self.seeder = seeder
        ecs_controls.install()
        ecs_awsvpc.install()
        ecs_task_definitions.install()
        ecs_strategies.install()
        elbv2_health.install()
        elbv2_tags.install()
        ec2_addresses.install()
        dynamodb_transactions.install()

    def reset(self) -> dict:
        """Forget every resource, fault, count, health override, lifecycle action and publish: a
        fresh account without a new process (the model-based tests run thousands of sequences)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        self.faults.clear()
        self.faults.reset_calls()
        elbv2_health.reset()
        lifecycle.reset()
        sns_outbox.reset()
        return {"reset": True}

    def __call__(self, environ, start_response):
        body = _read_body(environ)
        if environ.get("PATH_INFO", "").startswith("/_ops/"):
            return self._control(environ, body, start_response)
        call = identify(environ, body)
        if call is None:
            return self.moto_app(environ, start_response)
        rule = self.faults.on_call(call)
        if rule is not None:
            if rule.kind == "latency":
                time.sleep(rule.latency_ms / 1000)
            elif rule.kind == "drop":
                return _drop_connection(environ, start_response)
            else:
                return _respond(start_response, *_injected_error(call, rule.kind))
        if call.protocol == "cbor":
            return _respond(start_response, *serve_cbor(self.moto_app, environ, body, call))
        if call.protocol == "json":
            mistyped = json_shape_errors(call, body)
            if mistyped:
                return _respond(start_response, *error_response(call, 400, "SerializationException", mistyped))
        if call.service == "autoscaling" and lifecycle.handles(call.operation):
            return self._lifecycle(call, environ, body, start_response)
        if call.service == "iam" and call.operation == "SimulatePrincipalPolicy":
            return self._simulate(call, environ, body, start_response)
        if call.service == "sns" and call.operation == "Publish":
            return self._publish(environ, body, start_response)
        return self.moto_app(environ, start_response)

    def _lifecycle(self, call: AwsCall, environ, body: bytes, start_response):
        try:
            answer = lifecycle.answer(
                self.account, call.region, call.operation, body, environ.get("QUERY_STRING", "")
            )
        except lifecycle.LifecycleError as error:
            return _respond(start_response, *error_response(call, 400, "ValidationError", str(error)))
        return _xml(start_response, answer)

    def _simulate(self, call: AwsCall, environ, body: bytes, start_response):
        try:
            answer = iam_simulate.answer(body, environ.get("QUERY_STRING", ""))
        except iam_simulate.SimulationError as error:
            return _respond(start_response, *error_response(call, error.status, error.code, error.message))
        return _xml(start_response, answer)

    def _publish(self, environ, body: bytes, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        answer = self.moto_app(environ, capture)
        if captured.get("status", "").startswith("200"):
            sns_outbox.record(body, environ.get("QUERY_STRING", ""))
        return answer

    def _control(self, environ, body: bytes, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ["PATH_INFO"].rstrip("/")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            spec = json.loads(body) if body.strip() else {}
            if not isinstance(spec, dict):
                raise FaultRuleError("a control request body must be a JSON object")
            region = spec.pop("region", None) or query.get("region") or self.region
            result = self._route(method, path, spec, query, region)
        except CONTROL_ERRORS as error:
            return _json(start_response, "400 Bad Request", {"error": str(error).strip("'\"")})
        except json.JSONDecodeError as error:
            return _json(start_response, "400 Bad Request", {"error": f"body is not JSON: {error}"})
        if result is None:
            return _json(start_response, "404 Not Found", {"error": f"no control {method} {path}"})
        return _json(start_response, "200 OK", result)

    def _route(self, method: str, path: str, spec: dict, query: dict, region: str):
        account = self.account
        routes = {
            ("GET", "/_ops/health"): lambda: {"ok": True},
            ("GET", "/_ops/faults"): lambda: {"rules": self.faults.rules()},
            ("POST", "/_ops/faults"): lambda: self.faults.add(spec).__dict__,
            ("DELETE", "/_ops/faults"): lambda: self.faults.clear() or {"rules": []},
            ("GET", "/_ops/calls"): lambda: {"calls": self.faults.calls()},
            ("DELETE", "/_ops/calls"): lambda: self.faults.reset_calls() or {"calls": {}},
            ("POST", "/_ops/reset"): self.reset,
            ("POST", "/_ops/ecs/run-tasks"): lambda: ecs_controls.run_tasks(account, region, spec),
            ("POST", "/_ops/ecs/finish-deployment"): lambda: ecs_controls.finish_deployment(
                account, region, spec
            ),
            ("POST", "/_ops/ecs/advance-deployment"): lambda: ecs_controls.advance_deployment(
                account, region, spec
            ),
            ("POST", "/_ops/ecs/strategy-service"): lambda: ecs_strategies.create_service(
                self.seeder.endpoint, region, spec
            ),
            ("POST", "/_ops/elbv2/target-health"): lambda: elbv2_health.set_health(spec),
            ("POST", "/_ops/autoscaling/launch"): lambda: lifecycle.launch(account, region, spec),
            ("GET", "/_ops/autoscaling/lifecycle-actions"): lambda: {"actions": lifecycle.actions()},
            ("GET", "/_ops/sns/published"): lambda: {
                "published": sns_outbox.published(query.get("topic_arn"))
            },
            ("POST", "/_ops/ecr/push"): lambda: ecr_push.push(self.seeder.endpoint, account, region, spec),
            ("POST", "/_ops/seed/demo"): lambda: self.seeder(region),
            ("POST", "/_ops/blue-green/app"): lambda: blue_green.create_app(
                self.seeder.endpoint, account, region, spec
            ),
        }
        handler = routes.get((method, path))
        return handler() if handler else None


def _read_body(environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _injected_error(call: AwsCall, kind: str):
    if kind == "throttle":
        return error_response(call, 400, throttle_code(call), "Rate exceeded (fault injected by the emulator)")
    return error_response(call, 500, "InternalFailure", "Internal failure (fault injected by the emulator)")


def _drop_connection(environ, start_response):
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    start_response("500 Internal Server Error", [("Content-Length", "0")])
    return []


def _respond(start_response, status: str, headers: list, body: bytes):
    start_response(status, headers)
    return [body]


def _xml(start_response, body: bytes) -> list:
    return _respond(start_response, "200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body)


def _json(start_response, status: str, payload) -> list:
    body = json.dumps(payload, default=str).encode()
    return _respond(start_response, status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body)
