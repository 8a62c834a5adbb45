"""Push an image to an ECR repository and answer with the EventBridge event ECR would send.

The manifest is made unique per call, so each push has its own digest, as a real build would.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import boto3
from moto.ecr.models import ecr_backends


class PushError(ValueError):
    """A push control request with a missing field or an unknown repository."""


_clock = threading.Lock()
_last_pushed_ms = 0


def _record_push_time(account: str, region: str, repository: str, digest: str) -> None:
    """ECR records when each image was pushed (`imagePushedAt`, a timestamp, ECR API Reference:
    ImageDetail) to the millisecond; moto keeps whole seconds, so two pushes in one second would
    look simultaneous. Record each push at its own millisecond, later than the one before."""
    global _last_pushed_ms
    with _clock:
        _last_pushed_ms = max(int(time.time() * 1000), _last_pushed_ms + 1)
        pushed = dt.datetime.fromtimestamp(_last_pushed_ms / 1000, tz=dt.timezone.utc)
    for stored in ecr_backends[account][region].repositories[repository].images:
        if stored.image_digest == digest:
            stored.image_pushed_at = pushed


def push(endpoint: str, account: str, region: str, spec: dict) -> dict:
    repository = spec.get("repository")
    tag = spec.get("tag")
    if not isinstance(repository, str) or not repository:
        raise PushError("field `repository` is required")
    if not isinstance(tag, str) or not tag:
        raise PushError("field `tag` is required")
    ecr = boto3.client(
        "ecr", region_name=region, endpoint_url=endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    if repository not in names:
        raise PushError(f"no ECR repository `{repository}`")
    # moto derives the digest from the layer digests, so a fresh layer gives a fresh image.
    layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": f"sha256:{uuid.uuid4().hex * 2}"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": f"sha256:{uuid.uuid4().hex * 2}"},
        "layers": [layer],
    }
    image = ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)["image"]
    digest = image["imageId"]["imageDigest"]
    _record_push_time(account, region, repository, digest)
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": account,
        "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        # As ECR prints it: an image action names no resource (the scan event names the repository).
        # https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": tag,
        },
    }
    return {"digest": digest, "image": f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}", "event": event}
