"""ELBv2 target health that tests can set: moto reports every registered target healthy.

An override is keyed by target group ARN and target id (optionally port) and holds the state
(``healthy``, ``unhealthy``, ``initial``, ``draining``, ``unavailable``, ``unused``) with a reason
code and description as ``DescribeTargetHealth`` returns them.
"""

from __future__ import annotations

import threading

from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

STATES = ("healthy", "unhealthy", "initial", "draining", "unavailable", "unused")
DEFAULT_REASONS = {
    "unhealthy": ("Target.FailedHealthChecks", "Health checks failed"),
    "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
    "draining": ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
    "unavailable": ("Target.HealthCheckDisabled", "Health checks are disabled"),
    "unused": ("Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"),
}

_lock = threading.Lock()
_overrides: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}


class HealthError(ValueError):
    """A target-health control request with a missing or unknown field."""


def install() -> None:
    """Patch moto so DescribeTargetHealth consults the overrides first."""
    original = FakeTargetGroup.health_for
    if getattr(original, "_ops_patched", False):
        return

    def health_for(self, target, ec2_backend):
        with _lock:
            override = _overrides.get((self.arn, target["Id"]))
        if override is None or target["Id"] not in self.targets:
            return original(self, target, ec2_backend)
        state, reason, description = override
        port = target.get("Port", self.targets[target["Id"]].get("Port", self.port))
        return FakeHealthStatus(target["Id"], port, self.health_check_port, state, reason, description)

    health_for._ops_patched = True  # type: ignore[attr-defined]
    FakeTargetGroup.health_for = health_for


def set_health(spec: dict) -> dict:
    """Set the health of some or all (``targets`` omitted) targets of a target group."""
    from moto.elbv2.models import elbv2_backends

    arn = spec.get("target_group_arn")
    state = spec.get("state")
    if not isinstance(arn, str) or not arn:
        raise HealthError("field `target_group_arn` is required")
    if state not in STATES:
        raise HealthError(f"field `state` must be one of {', '.join(STATES)}")
    group = _find_group(elbv2_backends, arn)
    targets = spec.get("targets") or list(group.targets)
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise HealthError("field `targets` must be a list of target ids")
    unknown = [t for t in targets if t not in group.targets]
    if unknown:
        raise HealthError(f"not registered in {arn}: {', '.join(unknown)}")
    reason, description = DEFAULT_REASONS.get(state, (None, None))
    reason = spec.get("reason", reason)
    description = spec.get("description", description)
    with _lock:
        for target in targets:
            _overrides[(arn, target)] = (state, reason, description)
    return {"target_group_arn": arn, "targets": targets, "state": state}


def _find_group(backends, arn: str):
    parts = arn.split(":")
    if len(parts) < 6:
        raise HealthError(f"`{arn}` is not a target group ARN")
    region, account = parts[3], parts[4]
    group = backends[account][region].target_groups.get(arn)
    if group is None:
        raise HealthError(f"no target group {arn}")
    return group


def reset() -> None:
    """Forget what earlier tests left here (the emulator's ``/_ops/reset``)."""
    with _lock:
        _overrides.clear()
