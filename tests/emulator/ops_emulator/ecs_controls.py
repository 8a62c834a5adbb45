"""ECS deployments that move: what moto lacks for testing rollouts.

moto keeps one deployment per service, ``IN_PROGRESS`` with no running tasks for ever, and changing
a service's task definition does not start a new deployment. This module patches the backend so
``UpdateService`` with a new task definition (or ``forceNewDeployment``) starts a new PRIMARY
deployment and demotes the old one to ACTIVE, as ECS does, and gives tests controls to run tasks and
to finish a deployment as COMPLETED or FAILED (optionally with the circuit breaker's rollback).
Each control answers with the ``ECS Deployment State Change`` event ECS would send to EventBridge.
As ECS does for a service with load balancers, tasks that start are registered in the service's
target groups (by a private IP of their own) and tasks that stop are deregistered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from moto.ecs.models import EC2ContainerServiceBackend, Task, ecs_backends
from moto.moto_api._internal import mock_random

ROLLOUT_STATES = ("COMPLETED", "FAILED")


class ControlError(ValueError):
    """A control request that names something that does not exist or asks the impossible."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_deployment(service, task_definition: str) -> dict:
    deployment_id = f"ecs-svc/{mock_random.randint(0, 32**12)}"
    now = _now()
    return {
        "createdAt": now,
        "desiredCount": service.desired_count,
        "failedTasks": 0,
        "id": deployment_id,
        "launchType": service.launch_type,
        "pendingCount": service.desired_count,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
        "runningCount": 0,
        "platformVersion": service.platform_version,
        "networkConfiguration": service.network_configuration or None,
        "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "updatedAt": now,
    }


def _start_deployment(service, task_definition: str) -> dict:
    for deployment in service.deployments:
        if deployment["status"] == "PRIMARY":
            deployment["status"] = "ACTIVE"
            deployment["updatedAt"] = _now()
    deployment = _new_deployment(service, task_definition)
    service.deployments.insert(0, deployment)
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = deployment["pendingCount"]
    return deployment


def install() -> None:
    """Patch moto's ECS backend so a new task definition starts a new deployment, and keep tasks
    RUNNING until a control stops them (moto moves a task one step towards STOPPED each time it is
    described, so a tool that polls DescribeTasks, as ecs-deploy does, never sees it running)."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    original = EC2ContainerServiceBackend.update_service
    if getattr(original, "_ops_patched", False):
        return

    def update_service(self, service_properties):
        cluster = service_properties.get("cluster", "default")
        name = service_properties.get("service", "").split("/")[-1]
        force = bool(service_properties.get("force_new_deployment"))
        before = self._get_service(cluster, name)
        previous_definition = before.task_definition
        previous_running = before.running_count
        service = original(self, service_properties)
        if service.deployment_controller.get("type", "ECS") != "ECS":
            return service
        # moto marks every desired task running at once; only a deployment control may do that.
        service.running_count = previous_running
        changed = service.task_definition != previous_definition
        if changed or force:
            if force and service.deployments:
                # moto re-labels the primary in place on force; undo that and start a real one.
                service.deployments[0]["taskDefinition"] = previous_definition
            _start_deployment(service, service.task_definition)
        else:
            primary = _primary(service)
            primary["desiredCount"] = service.desired_count
            if len(service.deployments) == 1 and primary["runningCount"] > service.desired_count:
                # Scaling in a settled service stops its surplus tasks at once, as ECS does.
                primary["runningCount"] = service.desired_count
                service.running_count = service.desired_count
                _replace_tasks(self, service, primary, service.desired_count)
        return service

    update_service._ops_patched = True  # type: ignore[attr-defined]
    EC2ContainerServiceBackend.update_service = update_service


def _backend(account: str, region: str) -> EC2ContainerServiceBackend:
    return ecs_backends[account][region]


def _service(backend: EC2ContainerServiceBackend, cluster: str, service: str):
    key = f"{cluster.split('/')[-1]}:{service.split('/')[-1]}"
    if key not in backend.services:
        raise ControlError(f"no ECS service `{service}` in cluster `{cluster}`")
    return backend.services[key]


def _primary(service) -> dict:
    for deployment in service.deployments:
        if deployment["status"] == "PRIMARY":
            return deployment
    raise ControlError(f"ECS service `{service.name}` has no primary deployment")


def _task_ip(task) -> str:
    """The private IP a task is registered with: its ENI's, or one derived from its id."""
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return detail["value"]
    digest = hashlib.sha256(task.id.encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


def _register_in_target_groups(backend, service, started: list, stopped: list) -> None:
    """Register started tasks in the service's target groups and deregister stopped ones."""
    from moto.elbv2.models import elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    for balancer in service.load_balancers or []:
        group = elbv2.target_groups.get(balancer.get("targetGroupArn", ""))
        if group is None:
            continue
        port = balancer.get("containerPort", group.port)
        for task in started:
            group.register([{"Id": _task_ip(task), "Port": port}])
        for task in stopped:
            if _task_ip(task) in group.targets:
                group.deregister([{"Id": _task_ip(task)}])


def _stop(task, reason: str) -> None:
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = reason


def _replace_tasks(backend, service, deployment: dict, count: int) -> None:
    """Stop the service's tasks of other revisions and run ``count`` of the deployment's revision."""
    cluster = backend._get_cluster(service.cluster_name)
    tasks = backend.tasks.setdefault(cluster.name, {})
    group = f"service:{service.name}"
    mine = [t for t in tasks.values() if t.group == group and t.last_status == "RUNNING"]
    stopped = [t for t in mine if t.task_definition_arn != deployment["taskDefinition"]]
    for task in stopped:
        _stop(task, f"replaced by deployment {deployment['id']}")
    running = [t for t in mine if t.task_definition_arn == deployment["taskDefinition"]]
    definition = backend.describe_task_definition(deployment["taskDefinition"])
    network = service.network_configuration or None
    if definition.network_mode == "awsvpc" and not network:
        return
    started = []
    for _ in range(max(count - len(running), 0)):
        task = Task(
            cluster,
            definition,
            None,
            None,
            backend,
            group=group,
            launch_type=service.launch_type or "",
            started_by=deployment["id"],
            networking_configuration=network,
        )
        tasks[task.task_arn] = task
        started.append(task)
    for task in running[count:]:
        _stop(task, "scaled in")
        stopped.append(task)
    _register_in_target_groups(backend, service, started, stopped)


def _state_change_event(backend, service, deployment: dict, event_name: str, reason: str) -> dict:
    now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": backend.account_id,
        "time": now,
        "region": backend.region_name,
        "resources": [service.arn],
        "detail": {
            "eventType": "ERROR" if event_name == "SERVICE_DEPLOYMENT_FAILED" else "INFO",
            "eventName": event_name,
            "deploymentId": deployment["id"],
            "updatedAt": now,
            "reason": reason,
        },
    }


def run_tasks(account: str, region: str, spec: dict) -> dict:
    """Run ``count`` tasks of the primary deployment (default: all desired); the rollout goes on."""
    backend = _backend(account, region)
    service = _service(backend, spec.get("cluster", "default"), _required(spec, "service"))
    deployment = _primary(service)
    count = spec.get("count", service.desired_count)
    if not isinstance(count, int) or count < 0:
        raise ControlError("field `count` must be a whole number of tasks")
    deployment["runningCount"] = count
    deployment["pendingCount"] = max(service.desired_count - count, 0)
    deployment["updatedAt"] = _now()
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = deployment["pendingCount"]
    _replace_tasks(backend, service, deployment, count)
    return {"deploymentId": deployment["id"], "runningCount": count}


def finish_deployment(account: str, region: str, spec: dict) -> dict:
    """Move the primary deployment to COMPLETED or FAILED and return the EventBridge event."""
    backend = _backend(account, region)
    service = _service(backend, spec.get("cluster", "default"), _required(spec, "service"))
    state = _required(spec, "state").upper()
    if state not in ROLLOUT_STATES:
        raise ControlError(f"field `state` must be one of {', '.join(ROLLOUT_STATES)}")
    deployment = _primary(service)
    now = _now()
    deployment["updatedAt"] = now
    if state == "COMPLETED":
        deployment.update(
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
            runningCount=service.desired_count,
            pendingCount=0,
        )
        service.deployments[:] = [deployment]
        service.running_count = service.desired_count
        service.pending_count = 0
        _replace_tasks(backend, service, deployment, service.desired_count)
        event = _state_change_event(
            backend, service, deployment, "SERVICE_DEPLOYMENT_COMPLETED",
            f"ECS deployment {deployment['id']} completed.",
        )
        return {"deploymentId": deployment["id"], "rolloutState": "COMPLETED", "event": event}

    reason = spec.get("reason") or "ECS deployment circuit breaker: tasks failed to start."
    deployment.update(
        rolloutState="FAILED",
        rolloutStateReason=reason,
        failedTasks=deployment.get("failedTasks", 0) + max(service.desired_count, 1),
        runningCount=0,
        pendingCount=0,
    )
    answer = {"deploymentId": deployment["id"], "rolloutState": "FAILED"}
    if spec.get("rollback"):
        previous = next((d for d in service.deployments if d["status"] == "ACTIVE"), None)
        if previous is None:
            raise ControlError(f"ECS service `{service.name}` has no earlier deployment to roll back to")
        rollback = _start_deployment(service, previous["taskDefinition"])
        service.task_definition = previous["taskDefinition"]
        deployment["status"] = "ACTIVE"
        answer["rollbackDeploymentId"] = rollback["id"]
        reason = f"{reason} Rolling back to {previous['taskDefinition']}."
    answer["event"] = _state_change_event(
        backend, service, deployment, "SERVICE_DEPLOYMENT_FAILED", reason
    )
    return answer


def _required(spec: dict, name: str) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(f"field `{name}` is required")
    return value
