"""Serve CloudWatch's Smithy RPC v2 CBOR protocol on top of moto's AWS JSON 1.0 CloudWatch.

The Rust SDK speaks CBOR (``POST /service/GraniteServiceVersion20100801/operation/<Op>``), which
moto answers with 404. moto does answer the same operations over AWS JSON 1.0, and botocore ships
CloudWatch's shapes, so a request is decoded from CBOR and re-sent as JSON, and the JSON answer is
re-encoded as CBOR guided by the operation's output shape (timestamps become CBOR tag 1, blobs byte
strings, numbers the width the shape says).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from functools import lru_cache

import botocore.session
import cbor2
from moto.core import DEFAULT_ACCOUNT_ID

from .protocol import AwsCall

TARGET_PREFIX = "GraniteServiceVersion20100801"


@lru_cache(maxsize=1)
def _cloudwatch_model():
    return botocore.session.get_session().get_service_model("cloudwatch")


def _to_json_value(value):
    """CBOR-decoded request values to what AWS JSON 1.0 carries."""
    if isinstance(value, dict):
        return {key: _to_json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json_value(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return float(value.value)
    return value


def _epoch_seconds(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


def _to_cbor_value(shape, value):
    """A JSON response value re-typed by its botocore shape for CBOR encoding."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _to_cbor_value(shape.members[name], item)
            for name, item in value.items()
            if name in shape.members and item is not None
        }
    if kind == "list":
        return [_to_cbor_value(shape.member, item) for item in value]
    if kind == "map":
        return {key: _to_cbor_value(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return cbor2.CBORTag(1, _epoch_seconds(value))
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    return value


def _call_wsgi(app, environ: dict) -> tuple[str, list, bytes]:
    captured: dict = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return captured["status"], captured["headers"], body


def _put_composite_alarm(region: str, request: dict) -> None:
    """PutCompositeAlarm, which moto 5.2.5 does not route though its model keeps composite alarms
    (an alarm with a rule, listed under `CompositeAlarms`): the alarm is stored in moto's backend
    with its rule, actions and tags.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html
    """
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[DEFAULT_ACCOUNT_ID][region].put_metric_alarm(
        name=request["AlarmName"], namespace=None, metric_name=None, comparison_operator=None,
        evaluation_periods=None, period=None, threshold=None, statistic=None,
        description=request.get("AlarmDescription"), dimensions=[],
        alarm_actions=request.get("AlarmActions", []), ok_actions=request.get("OKActions", []),
        insufficient_data_actions=request.get("InsufficientDataActions", []),
        actions_enabled=request.get("ActionsEnabled", True), rule=request["AlarmRule"],
        tags=request.get("Tags", []),
    )


def _only_asked_alarm_types(request: dict, parsed: dict) -> dict:
    """DescribeAlarms returns only metric alarms unless `AlarmTypes` asks for composite ones too
    (moto returns both kinds always).
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    """
    kinds = request.get("AlarmTypes") or ["MetricAlarm"]
    for kind, key in (("MetricAlarm", "MetricAlarms"), ("CompositeAlarm", "CompositeAlarms")):
        if kind not in kinds and key in parsed:
            parsed[key] = []
    return parsed


def serve_cbor(app, environ: dict, body: bytes, call: AwsCall) -> tuple[str, list, bytes]:
    """Answer one CBOR CloudWatch call by way of moto's JSON protocol."""
    request = cbor2.loads(body) if body else {}
    if call.operation == "PutCompositeAlarm":
        _put_composite_alarm(call.region, request)
        return "200 OK", [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", "0"),
        ], b""
    json_body = json.dumps(_to_json_value(request)).encode()
    forwarded = dict(environ)
    forwarded.update(
        {
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(json_body)),
            "HTTP_X_AMZ_TARGET": f"{TARGET_PREFIX}.{call.operation}",
            "wsgi.input": io.BytesIO(json_body),
        }
    )
    forwarded.pop("HTTP_SMITHY_PROTOCOL", None)
    status, headers, answer = _call_wsgi(app, forwarded)
    request_id = next((v for k, v in headers if k.lower() == "x-amzn-requestid"), "")
    parsed = json.loads(answer) if answer.strip() else {}
    if int(status.split()[0]) >= 400:
        code = str(parsed.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
        message = parsed.get("message") or parsed.get("Message") or ""
        encoded = cbor2.dumps({"__type": code, "message": message})
    else:
        if call.operation == "DescribeAlarms":
            parsed = _only_asked_alarm_types(request, parsed)
        output_shape = _cloudwatch_model().operation_model(call.operation).output_shape
        encoded = cbor2.dumps(_to_cbor_value(output_shape, parsed)) if output_shape else b""
    out_headers = [
        ("Content-Type", "application/cbor"),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("x-amzn-RequestId", request_id),
        ("Content-Length", str(len(encoded))),
    ]
    return status, out_headers, encoded
