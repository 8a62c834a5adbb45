"""Identify which AWS service and operation a request is for, and answer errors in its protocol.

The Rust SDK only retries an error it can classify, so an injected throttle must look exactly like
the real service's: a JSON ``__type`` for awsJson, an XML ``ErrorResponse`` for awsQuery, a CBOR map
for Smithy RPC v2 CBOR.
"""

from __future__ import annotations

import functools

import json
import re
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import cbor2

CBOR_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")
CREDENTIAL_SCOPE = re.compile(
    r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
)

# Signing names are what the SDKs put in the credential scope; tests may use the friendlier names.
SERVICE_ALIASES = {
    "cloudwatch": "monitoring",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "asg": "autoscaling",
}


def canonical_service(name: str) -> str:
    """The signing name for a service name or one of its aliases, lower case."""
    lowered = name.strip().lower()
    return SERVICE_ALIASES.get(lowered, lowered)


@dataclass(frozen=True)
class AwsCall:
    """What one request to the emulator is: service signing name, operation, wire protocol."""

    service: str
    operation: str
    protocol: str  # "json", "query", "ec2", "cbor" or "rest"
    region: str = "us-east-1"


def identify(environ: dict, body: bytes) -> AwsCall | None:
    """Classify a WSGI request as an AWS call, or None when it is not one (controls, moto-api)."""
    path = environ.get("PATH_INFO", "")
    if path.startswith("/_ops") or path.startswith("/moto-api"):
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = CREDENTIAL_SCOPE.search(auth)
    service = scope.group("service") if scope else ""
    region = scope.group("region") if scope else "us-east-1"
    cbor_route = CBOR_PATH.match(path)
    if cbor_route and "cbor" in environ.get("CONTENT_TYPE", ""):
        return AwsCall(service or "monitoring", cbor_route.group("operation"), "cbor", region)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return AwsCall(service, target.rsplit(".", 1)[-1], "json", region)
    action = _query_action(environ, body)
    if action:
        return AwsCall(service, action, "ec2" if service == "ec2" else "query", region)
    if service:
        return AwsCall(service, f"{environ.get('REQUEST_METHOD', 'GET')} {path}", "rest", region)
    return None


def _query_action(environ: dict, body: bytes) -> str:
    for source in (environ.get("QUERY_STRING", ""), body.decode("utf-8", "replace")):
        values = parse_qs(source).get("Action")
        if values:
            return values[0]
    return ""


def error_response(call: AwsCall, status: int, code: str, message: str) -> tuple[str, list, bytes]:
    """A WSGI (status line, headers, body) error in the protocol the caller speaks."""
    request_id = str(uuid.uuid4())
    status_line = f"{status} {HTTPStatus(status).phrase}"
    headers = [("x-amzn-RequestId", request_id)]
    if call.protocol == "cbor":
        body = cbor2.dumps({"__type": code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    elif call.protocol in ("json", "rest"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif call.protocol == "ec2":
        body = (
            f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    else:
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers += [("Content-Type", "text/xml")]
    headers.append(("Content-Length", str(len(body))))
    return status_line, headers, body


THROTTLE_CODES = {"query": "Throttling", "ec2": "RequestLimitExceeded"}


def throttle_code(call: AwsCall) -> str:
    """The error code the real service uses for throttling, which the SDKs retry."""
    return THROTTLE_CODES.get(call.protocol, "ThrottlingException")


def json_shape_errors(call: AwsCall, body: bytes) -> str:
    """Why an awsJson request's members do not have the types the service model gives them (an
    object where a string belongs, ...), or "": AWS answers such a request 400
    SerializationException; moto's parser fails on it with a 500. Only types are checked here;
    missing or out-of-range members are each service's own validation."""
    import json

    from botocore.validate import ParamValidator

    try:
        params = json.loads(body or b"{}")
        shape = _service_model(_MODEL_NAMES.get(call.service, call.service)).operation_model(call.operation).input_shape
    except Exception:  # noqa: BLE001 - not a request this check can judge: moto answers it
        return ""
    if not isinstance(params, dict) or shape is None:
        return ""
    report = ParamValidator().validate(params, shape)
    mistyped = [line.strip() for line in report.generate_report().splitlines() if line.strip().startswith("Invalid type")]
    return "; ".join(mistyped)


# Signing names whose botocore model has another name.
_MODEL_NAMES = {"monitoring": "cloudwatch", "elasticloadbalancing": "elbv2", "email": "ses"}


@functools.lru_cache(maxsize=None)
def _service_model(name: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(name)
