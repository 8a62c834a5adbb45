"""Auto Scaling lifecycle actions: moto raises NotImplementedError for completing one.

The ``launch`` control adds an instance to a group and holds it in ``Pending:Wait`` behind a
lifecycle hook, with a token, and answers with the ``EC2 Instance-launch Lifecycle Action`` event
EventBridge would deliver. ``CompleteLifecycleAction`` and ``RecordLifecycleActionHeartbeat`` are
answered here in the Auto Scaling query protocol; CONTINUE puts the instance in service, ABANDON
terminates it. Every completion is kept so tests can read which result a function chose.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import parse_qs

from moto.autoscaling.models import autoscaling_backends
from moto.ec2.models import ec2_backends

RESPONSE = (
    '<{op}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><{op}Result/>'
    "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"
)


class LifecycleError(ValueError):
    """A lifecycle call or control that AWS would reject; the message says why."""


@dataclass
class LifecycleAction:
    """One launch held in Pending:Wait, and how it ended."""

    token: str
    group: str
    hook: str
    instance_id: str
    started_at: str
    heartbeats: int = 0
    result: str | None = None
    completed_at: str | None = None


_lock = threading.Lock()
_actions: dict[str, LifecycleAction] = {}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def launch(account: str, region: str, spec: dict) -> dict:
    """Scale a group out by one, hold the new instance at the launch hook, return the event."""
    group_name = spec.get("group")
    if not isinstance(group_name, str) or not group_name:
        raise LifecycleError("field `group` is required")
    backend = autoscaling_backends[account][region]
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        raise LifecycleError(f"no Auto Scaling group `{group_name}`")
    hooks = [
        h for h in backend.lifecycle_hooks.values()
        if h.auto_scaling_group_name == group_name
        and h.lifecycle_transition == "autoscaling:EC2_INSTANCE_LAUNCHING"
    ]
    if spec.get("hook"):
        hooks = [h for h in hooks if h.name == spec["hook"]]
    if not hooks:
        raise LifecycleError(f"group `{group_name}` has no launch lifecycle hook")
    hook = hooks[0]
    before = {state.instance.id for state in group.instance_states}
    if group.desired_capacity + 1 > group.max_size:
        raise LifecycleError(f"group `{group_name}` is at its max size {group.max_size}")
    backend.set_desired_capacity(group_name, group.desired_capacity + 1)
    new_states = [s for s in group.instance_states if s.instance.id not in before]
    if not new_states:
        raise LifecycleError(f"group `{group_name}` started no instance")
    state = new_states[0]
    state.lifecycle_state = "Pending:Wait"
    action = LifecycleAction(
        token=str(uuid.uuid4()),
        group=group_name,
        hook=hook.name,
        instance_id=state.instance.id,
        started_at=_now(),
    )
    with _lock:
        _actions[action.token] = action
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance-launch Lifecycle Action",
        "source": "aws.autoscaling",
        "account": account,
        "time": action.started_at,
        "region": region,
        "resources": [group.arn],
        "detail": {
            "LifecycleActionToken": action.token,
            "AutoScalingGroupName": group_name,
            "LifecycleHookName": hook.name,
            "EC2InstanceId": action.instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "Origin": "EC2",
            "Destination": "AutoScalingGroup",
        },
    }
    return {"token": action.token, "instance_id": action.instance_id, "event": event}


def actions() -> list[dict]:
    with _lock:
        return [asdict(a) for a in _actions.values()]


def handles(operation: str) -> bool:
    return operation in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat")


def answer(account: str, region: str, operation: str, body: bytes, query: str) -> bytes:
    """Serve one lifecycle call; raises LifecycleError for what AWS answers with ValidationError."""
    params = {k: v[0] for k, v in parse_qs(query).items()}
    params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
    group_name = params.get("AutoScalingGroupName", "")
    hook_name = params.get("LifecycleHookName", "")
    token = params.get("LifecycleActionToken")
    instance_id = params.get("InstanceId")
    backend = autoscaling_backends[account][region]
    if group_name not in backend.autoscaling_groups:
        raise LifecycleError(f"Group {group_name} not found")
    if f"{group_name}_{hook_name}" not in backend.lifecycle_hooks:
        raise LifecycleError(f"No Lifecycle Hook found with name {hook_name} for group {group_name}")
    with _lock:
        action = _find_action(group_name, hook_name, token, instance_id)
        if operation == "RecordLifecycleActionHeartbeat":
            action.heartbeats += 1
        else:
            result = params.get("LifecycleActionResult", "")
            if result not in ("CONTINUE", "ABANDON"):
                raise LifecycleError("LifecycleActionResult must be CONTINUE or ABANDON")
            action.result = result
            action.completed_at = _now()
            _apply_result(account, region, backend, action)
    return RESPONSE.format(op=operation, request_id=uuid.uuid4()).encode()


def _find_action(group: str, hook: str, token: str | None, instance_id: str | None) -> LifecycleAction:
    for action in _actions.values():
        if action.group != group or action.hook != hook or action.result is not None:
            continue
        if (token and action.token == token) or (not token and instance_id == action.instance_id):
            return action
    described = f"token {token}" if token else f"instance {instance_id}"
    raise LifecycleError(f"No active Lifecycle Action found with {described}")


def _apply_result(account: str, region: str, backend, action: LifecycleAction) -> None:
    group = backend.autoscaling_groups[action.group]
    for state in list(group.instance_states):
        if state.instance.id != action.instance_id:
            continue
        if action.result == "CONTINUE":
            state.lifecycle_state = "InService"
        else:
            group.instance_states.remove(state)
            group.desired_capacity = max(group.desired_capacity - 1, group.min_size)
            ec2_backends[account][region].terminate_instances([action.instance_id])


def reset() -> None:
    """Forget what earlier tests left here (the emulator's ``/_ops/reset``)."""
    with _lock:
        _actions.clear()
