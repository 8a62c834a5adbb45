"""ECS deployments that move: what moto lacks for testing rollouts.

moto keeps one deployment per service, ``IN_PROGRESS`` with no running tasks for ever, and changing
a service's task definition does not start a new deployment. This module patches the backend so
``UpdateService`` with a new task definition (``family``, ``family:revision`` or ARN, compared as the
revision it names), network configuration or platform version, or ``forceNewDeployment``, starts a
new PRIMARY deployment and demotes the old one to ACTIVE, as ECS does, and gives tests controls to
run tasks and to finish a deployment as COMPLETED or FAILED (optionally with the circuit breaker's
rollback). Each control answers with the ``ECS Deployment State Change`` event ECS would send to
EventBridge, and either does all it says or changes nothing: every check comes first, and the tasks
it must start are started (all, or none) before any count or state moves.

A deployment's tasks are those it started (``startedBy`` is its id, as in ECS). As ECS does for a
service with load balancers, tasks that start are registered in the service's target groups (by
their ENI's private IP for awsvpc tasks, see ``ecs_awsvpc``; by a private IP of their own otherwise)
and tasks that stop are deregistered.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import uuid

from moto.core.exceptions import ServiceException
from moto.ecs.models import EC2ContainerServiceBackend, Task, ecs_backends
from moto.moto_api._internal import mock_random

from . import ecs_awsvpc, ecs_strategies

ROLLOUT_STATES = ("COMPLETED", "FAILED")
# What a rollback deployment takes over from the deployment it goes back to.
ROLLBACK_FIELDS = (
    "launchType", "capacityProviderStrategy", "platformVersion", "platformFamily", "networkConfiguration",
)


class ControlError(ValueError):
    """A control request that names something that does not exist or asks the impossible."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_deployment(service, task_definition: str, fields: dict | None = None) -> dict:
    """A PRIMARY deployment of ``task_definition``; where its tasks run (launch type or capacity
    provider strategy, platform version, network) is ``fields``, by default the service's own."""
    deployment_id = f"ecs-svc/{mock_random.randint(0, 32**12)}"
    now = _now()
    deployment = {
        "createdAt": now,
        "desiredCount": service.desired_count,
        "failedTasks": 0,
        "id": deployment_id,
        "pendingCount": service.desired_count,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
        "runningCount": 0,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "updatedAt": now,
    }
    deployment.update(copy.deepcopy(fields) if fields is not None else ecs_awsvpc.deployment_fields(service))
    return deployment


def _start_deployment(service, task_definition: str, fields: dict | None = None) -> dict:
    for deployment in service.deployments:
        if deployment["status"] == "PRIMARY":
            deployment["status"] = "ACTIVE"
            deployment["updatedAt"] = _now()
    deployment = _new_deployment(service, task_definition, fields)
    service.deployments.insert(0, deployment)
    _recount(service)
    return deployment


def _recount(service) -> None:
    """The service's running and pending counts are its deployments'."""
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    primary = next((d for d in service.deployments if d["status"] == "PRIMARY"), None)
    service.pending_count = primary["pendingCount"] if primary else 0


def _network_key(network) -> str:
    return json.dumps(network or None, sort_keys=True)


def install() -> None:
    """Patch moto's ECS backend so a new task definition (or network configuration, or platform
    version: "This parameter triggers a new service deployment", UpdateService) starts a new
    deployment, and keep tasks RUNNING until a control stops them (moto moves a task one step towards
    STOPPED each time it is described, so a tool that polls DescribeTasks, as ecs-deploy does, never
    sees it running)."""
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
        # Everything is checked before moto changes anything (it sets the properties, then checks
        # the task definition); `family` and `family:revision` become the revision's ARN, as in ECS.
        plan = ecs_awsvpc.prepare_update(self, before, service_properties)
        previous = (
            before.task_definition,
            _network_key(before.network_configuration),
            before.platform_version,
        )
        previous_running = before.running_count
        relabelled = before.deployments[0] if before.deployments else None
        primary_before = {k: relabelled[k] for k in ("id", "createdAt", "updatedAt")} if relabelled else {}
        service = original(self, service_properties)
        ecs_awsvpc.apply_update(service, plan)
        if service.deployment_controller.get("type", "ECS") != "ECS":
            return service
        # moto marks every desired task running at once; only a deployment control may do that.
        service.running_count = previous_running
        now = (service.task_definition, _network_key(service.network_configuration), service.platform_version)
        if now != previous or force:
            if force and relabelled is not None:
                # moto re-labels the primary in place on force; undo that and start a real one.
                relabelled.update(primary_before, taskDefinition=previous[0])
            deployment = _start_deployment(service, service.task_definition)
            ecs_strategies.started(self, service, deployment)
            if service.desired_count == 0 and not ecs_strategies.is_native(service):
                # Nothing to start: ECS stops the older deployments' tasks (they leave their target
                # groups) and the new deployment, at 0 of 0 tasks, has completed.
                _converge(self, service, deployment, 0, drain_others=True)
                deployment.update(
                    rolloutState="COMPLETED",
                    rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
                    pendingCount=0,
                )
                service.deployments[:] = [deployment]
                _recount(service)
        else:
            primary = _primary(service)
            primary["desiredCount"] = service.desired_count
            if len(service.deployments) == 1 and primary["runningCount"] > service.desired_count:
                # Scaling in a settled service stops its surplus tasks at once, as ECS does.
                _converge(self, service, primary, service.desired_count, drain_others=False)
                primary["runningCount"] = service.desired_count
                service.running_count = service.desired_count
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
        # A task of a blue/green, canary or linear service may be in either group of the pair.
        alternate = elbv2.target_groups.get((balancer.get("advancedConfiguration") or {}).get("alternateTargetGroupArn", ""))
        for task in stopped:
            for each in (group, alternate):
                if each is not None and _task_ip(task) in each.targets:
                    each.deregister([{"Id": _task_ip(task)}])


def task_stopped(backend, task) -> None:
    """StopTask on a service's task: it leaves the service's target groups and its deployment's
    running count (ECS then starts a replacement; here a control does, as for every start)."""
    if not (task.group or "").startswith("service:"):
        return
    service = backend.services.get(f"{task.cluster_arn.split('/')[-1]}:{task.group.split(':', 1)[1]}")
    if service is None:
        return
    _register_in_target_groups(backend, service, [], [task])
    for deployment in service.deployments:
        if deployment["id"] == task.started_by and deployment["runningCount"] > 0:
            deployment["runningCount"] -= 1
            deployment["updatedAt"] = _now()
    _recount(service)


def _stop(task, reason: str) -> None:
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = reason
    ecs_awsvpc.release(task)


def _running(backend, service) -> list:
    tasks = backend.tasks.get(service.cluster_name, {})
    group = f"service:{service.name}"
    return [t for t in tasks.values() if t.group == group and t.last_status == "RUNNING"]


def _start_tasks(backend, service, deployment: dict, count: int, already: int) -> list:
    """Start ``count`` tasks of the deployment, all or none: a task that cannot start (no free
    address in the service's subnets) undoes the ones started before it."""
    cluster = backend._get_cluster(service.cluster_name)
    tasks = backend.tasks.setdefault(cluster.name, {})
    definition = backend.describe_task_definition(deployment["taskDefinition"])
    strategy = deployment.get("capacityProviderStrategy")
    started = []
    try:
        for index in range(already, already + count):
            provider = ecs_awsvpc.provider_for(strategy, index)
            launch_type = deployment.get("launchType") or (
                "FARGATE" if provider in ecs_awsvpc.FARGATE_PROVIDERS else "EC2"
            )
            task = Task(
                cluster,
                definition,
                None,
                None,
                backend,
                group=f"service:{service.name}",
                launch_type=launch_type,
                started_by=deployment["id"],
                networking_configuration=copy.deepcopy(deployment.get("networkConfiguration")),
                platform_version=deployment.get("platformVersion"),
                capacity_provider_name=provider,
            )
            tasks[task.task_arn] = task
            started.append(task)
    except (ServiceException, ValueError) as error:
        for task in started:
            ecs_awsvpc.discard(backend, task)
        message = getattr(error, "message", None) or str(error)
        raise ControlError(
            f"ECS service `{service.name}`: cannot start task {len(started) + 1} of {count}: {message}"
        ) from error
    return started


def _converge(backend, service, deployment: dict, count: int, drain_others: bool) -> None:
    """Run exactly ``count`` tasks of the deployment (its tasks are those it started) and, with
    ``drain_others``, stop the service's tasks of every other deployment. Tasks start first, so a
    task that cannot start leaves everything as it was."""
    running = _running(backend, service)
    mine = [t for t in running if t.started_by == deployment["id"]]
    started = _start_tasks(backend, service, deployment, max(count - len(mine), 0), len(mine))
    stopped = []
    if drain_others:
        for task in running:
            if task.started_by != deployment["id"]:
                _stop(task, f"replaced by deployment {deployment['id']}")
                stopped.append(task)
    for task in mine[count:]:
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
    """Run ``count`` tasks of the primary deployment (default: all desired); the rollout goes on and
    older deployments' tasks keep running until it completes."""
    backend = _backend(account, region)
    service = _service(backend, spec.get("cluster", "default"), _required(spec, "service"))
    if ecs_strategies.is_native(service):
        raise ControlError(
            f"ECS service `{service.name}` runs {ecs_strategies.strategy_of(service)} deployments: ECS starts their "
            "tasks at SCALE_UP; walk the deployment with /_ops/ecs/advance-deployment"
        )
    deployment = _primary(service)
    count = spec.get("count", service.desired_count)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ControlError("field `count` must be a whole number of tasks")
    _converge(backend, service, deployment, count, drain_others=False)
    deployment["runningCount"] = count
    deployment["pendingCount"] = max(service.desired_count - count, 0)
    deployment["updatedAt"] = _now()
    _recount(service)
    return {"deploymentId": deployment["id"], "runningCount": count}


def finish_deployment(account: str, region: str, spec: dict) -> dict:
    """Move the primary deployment to COMPLETED or FAILED and return the EventBridge event. Every
    check comes first and tasks start before any count or state changes, so a refused control
    changes nothing."""
    backend = _backend(account, region)
    service = _service(backend, spec.get("cluster", "default"), _required(spec, "service"))
    state = _required(spec, "state").upper()
    if state not in ROLLOUT_STATES:
        raise ControlError(f"field `state` must be one of {', '.join(ROLLOUT_STATES)}")
    if ecs_strategies.is_native(service):
        return ecs_strategies.finish(backend, service, spec, state)
    deployment = _primary(service)
    if state == "COMPLETED":
        _converge(backend, service, deployment, service.desired_count, drain_others=True)
        deployment.update(
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
            runningCount=service.desired_count,
            pendingCount=0,
            updatedAt=_now(),
        )
        service.deployments[:] = [deployment]
        _recount(service)
        event = _state_change_event(
            backend, service, deployment, "SERVICE_DEPLOYMENT_COMPLETED",
            f"ECS deployment {deployment['id']} completed.",
        )
        return {"deploymentId": deployment["id"], "rolloutState": "COMPLETED", "event": event}

    previous = None
    if spec.get("rollback"):
        # The circuit breaker rolls back to "the last deployment that completed successfully" (developer
        # guide, "How the Amazon ECS deployment circuit breaker detects failures"), not to one that was
        # still rolling out when it was replaced.
        previous = next(
            (d for d in service.deployments if d["status"] == "ACTIVE" and d.get("rolloutState") == "COMPLETED"),
            None,
        )
        if previous is None:
            raise ControlError(f"ECS service `{service.name}` has no earlier completed deployment to roll back to")
    reason = spec.get("reason") or "ECS deployment circuit breaker: tasks failed to start."
    # The failed deployment's tasks stop and leave the target groups.
    failed_tasks = [t for t in _running(backend, service) if t.started_by == deployment["id"]]
    for task in failed_tasks:
        _stop(task, f"ECS deployment {deployment['id']} failed")
    _register_in_target_groups(backend, service, [], failed_tasks)
    deployment.update(
        rolloutState="FAILED",
        rolloutStateReason=reason,
        failedTasks=deployment.get("failedTasks", 0) + max(service.desired_count, 1),
        runningCount=0,
        pendingCount=0,
        updatedAt=_now(),
    )
    answer = {"deploymentId": deployment["id"], "rolloutState": "FAILED"}
    if previous is not None:
        fields = {k: previous.get(k) for k in ROLLBACK_FIELDS}
        rollback = _start_deployment(service, previous["taskDefinition"], fields)
        service.task_definition = previous["taskDefinition"]
        if previous.get("networkConfiguration"):
            service.network_configuration = copy.deepcopy(previous["networkConfiguration"])
        deployment["status"] = "ACTIVE"
        answer["rollbackDeploymentId"] = rollback["id"]
        reason = f"{reason} Rolling back to {previous['taskDefinition']}."
    _recount(service)
    answer["event"] = _state_change_event(
        backend, service, deployment, "SERVICE_DEPLOYMENT_FAILED", reason
    )
    return answer


def advance_deployment(account: str, region: str, spec: dict) -> dict:
    """Walk a blue/green, canary or linear deployment through its lifecycle stages (see
    ``ecs_strategies.advance``)."""
    backend = _backend(account, region)
    service = _service(backend, spec.get("cluster", "default"), _required(spec, "service"))
    if not ecs_strategies.is_native(service):
        raise ControlError(
            f"ECS service `{service.name}` runs ROLLING deployments, which have no lifecycle stages; "
            "use /_ops/ecs/run-tasks and /_ops/ecs/finish-deployment"
        )
    return ecs_strategies.advance(backend, service, spec)


def _required(spec: dict, name: str) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(f"field `{name}` is required")
    return value
