"""What SNS was asked to deliver: every successful Publish, as the caller sent it.

An SQS queue subscribed to a topic shows the ``default`` body only; the plain-text ``email`` body of
a ``MessageStructure=json`` message never reaches a queue. The outbox keeps each publish's subject,
per-protocol bodies and message attributes so tests can read what an email subscriber would get.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

_lock = threading.Lock()
_published: list[dict] = []


def record(body: bytes, query: str) -> None:
    """Keep one Publish call (awsQuery form) that SNS accepted."""
    params = {k: v[0] for k, v in parse_qs(query).items()}
    params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
    message = params.get("Message", "")
    bodies = {"default": message}
    if params.get("MessageStructure") == "json":
        try:
            bodies = json.loads(message)
        except ValueError:
            bodies = {"default": message}
    attributes = {}
    index = 1
    while f"MessageAttributes.entry.{index}.Name" in params:
        prefix = f"MessageAttributes.entry.{index}"
        attributes[params[f"{prefix}.Name"]] = params.get(f"{prefix}.Value.StringValue", "")
        index += 1
    with _lock:
        _published.append(
            {
                "topic_arn": params.get("TopicArn") or params.get("TargetArn"),
                "subject": params.get("Subject"),
                "message_structure": params.get("MessageStructure"),
                "bodies": bodies,
                "attributes": attributes,
            }
        )


def published(topic_arn: str | None = None) -> list[dict]:
    with _lock:
        return [p for p in _published if topic_arn in (None, p["topic_arn"])]


def reset() -> None:
    """Forget what earlier tests left here (the emulator's ``/_ops/reset``)."""
    with _lock:
        _published.clear()
