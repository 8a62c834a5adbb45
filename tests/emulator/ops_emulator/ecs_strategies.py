"""ECS's own blue/green, canary and linear deployments, which moto 5.2.5 lacks entirely.

A service on the ECS deployment controller may name ``deploymentConfiguration.strategy``
``BLUE_GREEN``, ``CANARY`` or ``LINEAR`` (API reference, DeploymentConfiguration). ECS then runs each
deployment itself through lifecycle stages (developer guide, "How Amazon ECS blue/green deployments
work"): the new (green) revision scales up beside the old (blue) one in the load balancer's
alternate target group, takes the test traffic, then the production traffic (all at once for
BLUE_GREEN; ``canaryPercent`` then the rest for CANARY; ``stepPercent`` steps for LINEAR) on the
production listener rule, bakes, and the blue tasks stop. A CloudWatch alarm of the deployment or a
failed hook rolls it back: traffic returns to blue and the green tasks stop.

What this module gives the emulator, as those pages and the API reference describe it:

- CreateService / UpdateService take ``deploymentConfiguration`` (stored and read back, defaults of
  ``canaryConfiguration`` and ``linearConfiguration`` filled in as the API reference gives them) and
  check it before anything changes: the strategy, the ranges of the canary and linear fields, and
  for a non-ROLLING strategy an ``advancedConfiguration`` on every load balancer naming an existing
  alternate target group and production listener rule (the texts are the troubleshooting page's,
  "Troubleshooting Amazon ECS blue/green deployments").
- Each deployment of such a service is a service deployment (``ListServiceDeployments``,
  ``DescribeServiceDeployments``) of a target service revision (``DescribeServiceRevisions``), with
  its ``status``, ``lifecycleStage``, requested traffic weights, ``alarms`` and ``rollback``.
  Service deployments of rolling services are not modelled: ListServiceDeployments answers none.
- The service's legacy ``deployments`` carry no ``rolloutState``: the API reference (Deployment,
  rolloutState) says it "is only returned for services that use the rolling update (ECS)
  deployment type", so a client must read the outcome from the service deployment.
- Controls: ``advance`` walks a deployment one stage (or to a named stage), and ``finish`` (through
  ``/_ops/ecs/finish-deployment``) walks it to the end (COMPLETED) or rolls it back (FAILED, with the
  alarm that fired, if one did), answering with the ``ECS Deployment State Change`` event.
  ``create_service`` builds a service of a strategy with its load balancer, two target groups and
  listener rule, through the API, for tests and the demo.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import string
import uuid

import boto3
from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException, EcsClientException, InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api._internal import mock_random

from . import ecs_controls

STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")
NATIVE = ("BLUE_GREEN", "LINEAR", "CANARY")
# Where a finished service deployment rests (developer guide, "View service history using Amazon
# ECS service deployments": Completed).
FINISHED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
CANARY_DEFAULTS = {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 10}
LINEAR_DEFAULTS = {"stepPercent": 10.0, "stepBakeTimeInMinutes": 6}
MAX_DESCRIBE = 20


# --- configuration ------------------------------------------------------------------------------


def strategy_of(service) -> str:
    config = getattr(service, "deployment_configuration", None) or {}
    return config.get("strategy") or "ROLLING"


def is_native(service) -> bool:
    return strategy_of(service) in NATIVE


def _tenths(value, low: float, high: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterException(f"{field} must be a number")
    if not low <= value <= high or abs(round(value * 10) - value * 10) > 1e-6:
        raise InvalidParameterException(f"{field} must be a multiple of 0.1 from {low} to {high}")
    return float(value)


def _minutes(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1440:
        raise InvalidParameterException(f"{field} must be a whole number of minutes from 0 to 1440")
    return value


def check_configuration(backend, config: dict | None, load_balancers: list | None) -> dict | None:
    """The deployment configuration as ECS stores it, or InvalidParameterException before anything
    changes."""
    if config is None:
        return None
    config = copy.deepcopy(config)
    strategy = config.get("strategy", "ROLLING")
    if strategy not in STRATEGIES:
        raise InvalidParameterException(f"strategy must be one of {', '.join(STRATEGIES)}")
    for field, kind, name in (("alarms", dict, "an object"), ("canaryConfiguration", dict, "an object"),
                              ("linearConfiguration", dict, "an object"), ("lifecycleHooks", list, "a list")):
        if field in config and not isinstance(config[field], kind):
            raise InvalidParameterException(f"{field} must be {name}")
    if any(not isinstance(hook, dict) for hook in config.get("lifecycleHooks") or []):
        raise InvalidParameterException("lifecycleHooks must be a list of objects")
    if "bakeTimeInMinutes" in config:
        _minutes(config["bakeTimeInMinutes"], "bakeTimeInMinutes")
    elif strategy == "BLUE_GREEN":
        # API reference, DeploymentConfiguration: "You must provide this parameter when you use
        # the BLUE_GREEN deployment strategy."
        raise InvalidParameterException("bakeTimeInMinutes is required for the BLUE_GREEN deployment strategy")
    if strategy == "CANARY":
        canary = {**CANARY_DEFAULTS, **(config.get("canaryConfiguration") or {})}
        canary["canaryPercent"] = _tenths(canary["canaryPercent"], 0.1, 100.0, "canaryPercent")
        _minutes(canary["canaryBakeTimeInMinutes"], "canaryBakeTimeInMinutes")
        config["canaryConfiguration"] = canary
    if strategy == "LINEAR":
        linear = {**LINEAR_DEFAULTS, **(config.get("linearConfiguration") or {})}
        linear["stepPercent"] = _tenths(linear["stepPercent"], 3.0, 100.0, "stepPercent")
        _minutes(linear["stepBakeTimeInMinutes"], "stepBakeTimeInMinutes")
        config["linearConfiguration"] = linear
    alarms = config.get("alarms")
    if alarms is not None:
        names = alarms.get("alarmNames")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidParameterException("alarms.alarmNames must be a list of alarm names")
    for hook in config.get("lifecycleHooks") or []:
        _check_hook(hook)
    if strategy in NATIVE:
        _check_advanced(backend, load_balancers or [])
    return config


HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
               "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")


def _check_hook(hook: dict) -> None:
    """API reference, DeploymentLifecycleHook; developer guide, "Pause hooks": a Lambda hook names its
    function and the role ECS assumes to call it; pause hooks cannot be at the traffic shifts."""
    kind = hook.get("targetType", "AWS_LAMBDA")
    stages = hook.get("lifecycleStages")
    if kind not in ("AWS_LAMBDA", "PAUSE"):
        raise InvalidParameterException(f"targetType must be AWS_LAMBDA or PAUSE, not {kind!r}")
    if not isinstance(stages, list) or not stages or any(s not in HOOK_STAGES for s in stages):
        raise InvalidParameterException(f"lifecycleStages must name some of {', '.join(HOOK_STAGES)}")
    if kind == "AWS_LAMBDA" and not (hook.get("hookTargetArn") and hook.get("roleArn")):
        raise InvalidParameterException("a Lambda lifecycle hook needs hookTargetArn and roleArn")
    if kind == "PAUSE" and {"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"} & set(stages):
        raise InvalidParameterException("Invalid lifecycle stage provided for Pause Hook")


def _check_advanced(backend, load_balancers: list) -> None:
    from moto.elbv2.models import elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    for balancer in load_balancers:
        advanced = balancer.get("advancedConfiguration")
        if not advanced:
            raise InvalidParameterException(
                "advancedConfiguration field is required for all loadBalancers when using a non-ROLLING deployment strategy"
            )
        alternate = advanced.get("alternateTargetGroupArn")
        if not alternate or alternate not in elbv2.target_groups:
            raise InvalidParameterException(f"alternateTargetGroupArn {alternate!r} is not a target group")
        if alternate == balancer.get("targetGroupArn"):
            raise InvalidParameterException(f"Duplicate targetGroupArn found: {alternate}")
        for field in ("productionListenerRule", "testListenerRule"):
            rule = advanced.get(field)
            if rule is None and field == "testListenerRule":
                continue
            if not rule or ":listener-rule/" not in rule:
                raise InvalidParameterException(
                    f"{field} has an invalid ARN format. Must be RuleArn for ALB or ListenerArn for NLB. Got: {rule}"
                )
            if not elbv2.describe_rules(listener_arn=None, rule_arns=[rule]):
                raise InvalidParameterException(f"{field} {rule} does not exist")


# --- where the service deployments live -----------------------------------------------------------


def _store(backend) -> dict:
    """Service deployments by service ARN (oldest first), revisions by ARN, and the target group
    that serves production traffic now, per load balancer, by service ARN."""
    return backend.__dict__.setdefault("_ops_strategies", {"deployments": {}, "revisions": {}, "live": {}})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _short_id(length: int = 21) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(alphabet[mock_random.randint(0, len(alphabet) - 1)] for _ in range(length))


def _arn(service, kind: str, ident: str) -> str:
    prefix = service.arn.split(":service/")[0]
    return f"{prefix}:{kind}/{service.cluster_name}/{service.name}/{ident}"


def _live(backend, service) -> list[str]:
    live = _store(backend)["live"]
    if service.arn not in live:
        live[service.arn] = [b.get("targetGroupArn") for b in service.load_balancers or []]
    return live[service.arn]


def _green(backend, service, record: dict) -> list[str]:
    """The target group each load balancer's new tasks go to: the one of the pair not serving, or
    the serving one for a service's first deployment (nothing runs beside it)."""
    if not record["sourceServiceRevisions"]:
        return _live(backend, service)
    groups = []
    for balancer, live in zip(service.load_balancers or [], _live(backend, service)):
        pair = [balancer.get("targetGroupArn"), (balancer.get("advancedConfiguration") or {}).get("alternateTargetGroupArn")]
        groups.append(next(g for g in pair if g != live))
    return groups


def _revision(backend, service, deployment: dict) -> dict:
    definition = backend.describe_task_definition(deployment["taskDefinition"])
    revision = {
        "serviceRevisionArn": _arn(service, "service-revision", str(mock_random.randint(10**18, 10**19 - 1))),
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "taskDefinition": deployment["taskDefinition"],
        "launchType": deployment.get("launchType"),
        "capacityProviderStrategy": deployment.get("capacityProviderStrategy"),
        "platformVersion": deployment.get("platformVersion"),
        "loadBalancers": copy.deepcopy(service.load_balancers or []),
        "networkConfiguration": copy.deepcopy(deployment.get("networkConfiguration")),
        "containerImages": [
            {"containerName": c.get("name"), "image": c.get("image")} for c in definition.container_definitions
        ],
        "createdAt": _now(),
    }
    revision = {k: v for k, v in revision.items() if v not in (None, [], {})}
    _store(backend)["revisions"][revision["serviceRevisionArn"]] = revision
    return revision


def _summary(revision: dict, requested: int, production: float, test: float = 0.0) -> dict:
    return {
        "arn": revision["serviceRevisionArn"],
        "requestedTaskCount": requested,
        "runningTaskCount": 0,
        "pendingTaskCount": requested,
        "requestedProductionTrafficWeight": production,
        "requestedTestTrafficWeight": test,
    }


def _stages(config: dict) -> list[tuple[str, float | None]]:
    """The stages a deployment walks, each with the production weight its step sets (None: none)."""
    strategy = config.get("strategy")
    shifts: list[float] = [100.0]
    if strategy == "CANARY":
        shifts = [config["canaryConfiguration"]["canaryPercent"], 100.0]
    if strategy == "LINEAR":
        step = config["linearConfiguration"]["stepPercent"]
        shifts, at = [], step
        while at < 100.0 - 1e-9:
            shifts.append(round(at, 1))
            at += step
        shifts.append(100.0)
    stages: list[tuple[str, float | None]] = [
        ("PRE_SCALE_UP", None), ("SCALE_UP", None), ("POST_SCALE_UP", None),
        ("TEST_TRAFFIC_SHIFT", None), ("POST_TEST_TRAFFIC_SHIFT", None),
    ]
    # Before each shift ECS calls the PRE_PRODUCTION_TRAFFIC_SHIFT hooks (and waits for them):
    # "For linear and canary deployments, this stage is invoked before each traffic shift step"
    # (developer guide, "Lambda hooks for Amazon ECS service deployments").
    for weight in shifts:
        stages += [("PRE_PRODUCTION_TRAFFIC_SHIFT", None), ("PRODUCTION_TRAFFIC_SHIFT", weight)]
    stages += [("POST_PRODUCTION_TRAFFIC_SHIFT", None), ("BAKE_TIME", None), ("CLEAN_UP", None)]
    return stages


def _current(backend, service, rolling_back: bool = False) -> dict | None:
    """The service deployment in progress (or, with ``rolling_back``, rolling back), if one is."""
    wanted = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS") if rolling_back \
        else ("PENDING", "IN_PROGRESS")
    for record in reversed(_store(backend)["deployments"].get(service.arn, [])):
        if record["status"] in wanted:
            return record
    return None


def started(backend, service, deployment: dict) -> None:
    """A deployment of a service on a native strategy began (CreateService or UpdateService): its
    legacy deployment carries no rollout state; a service deployment at PRE_SCALE_UP stands for it,
    and one still in progress is stopped, its new tasks stopped and its traffic given back."""
    if not is_native(service):
        return
    deployment.pop("rolloutState", None)
    deployment.pop("rolloutStateReason", None)
    superseded = _current(backend, service)
    if superseded is not None:
        _give_back(backend, service, superseded)
        _end(superseded, "STOPPED", "Stopped: a new service deployment replaced it.")
    target = _revision(backend, service, deployment)
    sources = []
    for other in service.deployments:
        if other is deployment or other.get("runningCount", 0) == 0:
            continue
        revision = next(
            (r for r in _store(backend)["revisions"].values()
             if r["taskDefinition"] == other["taskDefinition"] and r["serviceArn"] == service.arn),
            None,
        ) or _revision(backend, service, other)
        sources.append(_summary(revision, other["runningCount"], 100.0))
        sources[-1]["runningTaskCount"] = other["runningCount"]
        sources[-1]["pendingTaskCount"] = 0
    config = service.deployment_configuration
    alarms = config.get("alarms") or {}
    now = _now()
    record = {
        "serviceDeploymentArn": _arn(service, "service-deployment", _short_id()),
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "createdAt": now,
        "startedAt": now,
        "updatedAt": now,
        "sourceServiceRevisions": sources,
        "targetServiceRevision": _summary(target, service.desired_count, 0.0),
        "status": "IN_PROGRESS",
        "statusReason": f"ECS deployment {deployment['id']} in progress.",
        "lifecycleStage": "PRE_SCALE_UP",
        "deploymentConfiguration": copy.deepcopy(config),
        "alarms": {
            "status": "MONITORING" if alarms.get("enable") else "DISABLED",
            "alarmNames": list(alarms.get("alarmNames") or []),
            "triggeredAlarmNames": [],
        },
        "lifecycleHookDetails": [],
        "_legacy": deployment["id"],
        "_stages": _stages(config),
        "_at": 0,
        "_calls": [],
        "_events": [],
    }
    target["resolvedConfiguration"] = {"loadBalancers": [
        {"targetGroupArn": group,
         "productionListenerRule": (balancer.get("advancedConfiguration") or {}).get("productionListenerRule")}
        for balancer, group in zip(service.load_balancers or [], _green(backend, service, record))
    ]}
    _store(backend)["deployments"].setdefault(service.arn, []).append(record)


def _end(record: dict, status: str, reason: str) -> None:
    now = _now()
    record.update(status=status, statusReason=reason, finishedAt=now, updatedAt=now)


def _weights(backend, service, record: dict, green_weight: float) -> None:
    """Point each load balancer's production listener rule at green with ``green_weight`` percent."""
    from moto.elbv2.models import FakeAction, elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    if not record["sourceServiceRevisions"]:
        green_weight = 100.0
    for balancer, live, green in zip(service.load_balancers or [], _live(backend, service), _green(backend, service, record)):
        rule_arn = (balancer.get("advancedConfiguration") or {}).get("productionListenerRule")
        rules = elbv2.describe_rules(listener_arn=None, rule_arns=[rule_arn]) if rule_arn else []
        if not rules:
            continue
        if green == live:
            # A first deployment runs in the live target group: it takes all the traffic.
            groups = [{"TargetGroupArn": live, "Weight": 100}]
        else:
            groups = [{"TargetGroupArn": live, "Weight": int(round(100 - green_weight))},
                      {"TargetGroupArn": green, "Weight": int(round(green_weight))}]
        rules[0].actions = [FakeAction({"Type": "forward", "ForwardConfig": {"TargetGroups": groups}})]


def _legacy(service, record: dict) -> dict | None:
    return next((d for d in service.deployments if d["id"] == record["_legacy"]), None)


def _register(backend, service, tasks: list, groups: list[str], register: bool) -> None:
    from moto.elbv2.models import elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    for balancer, arn in zip(service.load_balancers or [], groups):
        group = elbv2.target_groups.get(arn or "")
        if group is None:
            continue
        for task in tasks:
            address = ecs_controls._task_ip(task)
            if register:
                group.register([{"Id": address, "Port": balancer.get("containerPort", group.port)}])
            elif address in group.targets:
                group.deregister([{"Id": address}])


def _hook_calls(service, record: dict, stage: str, production: dict | None = None, test: dict | None = None) -> list:
    """The calls ECS makes to the Lambda hooks the service configures at ``stage``, as the developer
    guide ("Lambda hooks for Amazon ECS service deployments") shows them: ``executionId``,
    ``lifecycleStage``, ``resourceArn`` (the service deployment), ``executionDetails`` with the
    traffic weights by service revision ARN, and ``hookDetails`` when the hook configures some."""
    calls = []
    for hook in record["deploymentConfiguration"].get("lifecycleHooks") or []:
        if hook.get("targetType", "AWS_LAMBDA") != "AWS_LAMBDA" or stage not in (hook.get("lifecycleStages") or []):
            continue
        payload = {
            "executionId": str(uuid.uuid4()),
            "lifecycleStage": stage,
            "resourceArn": record["serviceDeploymentArn"],
            "executionDetails": {
                "serviceArn": service.arn,
                "targetServiceRevisionArn": record["targetServiceRevision"]["arn"],
                "testTrafficWeights": test or {},
                "productionTrafficWeights": production or {},
            },
        }
        if hook.get("hookDetails"):
            details = hook["hookDetails"]
            payload["hookDetails"] = json.loads(details) if isinstance(details, str) else copy.deepcopy(details)
        calls.append({"hookTargetArn": hook.get("hookTargetArn"), "payload": payload})
    return calls


def _lambda_hooks(record: dict, stage: str) -> list[dict]:
    """The Lambda hooks the deployment configures at ``stage``."""
    return [hook for hook in record["deploymentConfiguration"].get("lifecycleHooks") or []
            if hook.get("targetType", "AWS_LAMBDA") == "AWS_LAMBDA" and stage in (hook.get("lifecycleStages") or [])]


def _pause_hooks(record: dict, stage: str) -> list[dict]:
    """The pause hooks the deployment configures at ``stage``."""
    return [hook for hook in record["deploymentConfiguration"].get("lifecycleHooks") or []
            if hook.get("targetType") == "PAUSE" and stage in (hook.get("lifecycleStages") or [])]


def awaiting(record: dict) -> list[dict]:
    """The deployment's pause hooks that wait for ContinueServiceDeployment."""
    return [h for h in record.get("lifecycleHookDetails") or [] if h["status"] == "AWAITING_ACTION"]


def _hook_event(backend, service, record: dict, hook: dict, stage: str, name: str) -> dict:
    """An ``ECS Hook State Change`` event as the developer guide ("Amazon ECS service deployment
    hook state change events") shows it."""
    now = _now()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Hook State Change",
        "source": "aws.ecs",
        "account": backend.account_id,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": backend.region_name,
        "resources": [record["serviceDeploymentArn"]],
        "detail": {
            "eventType": "INFO",
            "eventName": name,
            "hookId": hook["hookId"],
            "hookType": hook["targetType"],
            "expiresAt": hook["expiresAt"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lifecycleStage": stage,
            "clusterArn": service.cluster_arn,
            "serviceArn": service.arn,
            "serviceDeploymentArn": record["serviceDeploymentArn"],
            "updatedAt": now.isoformat().replace("+00:00", "Z"),
        },
    }


def _pause(backend, service, record: dict, stage: str) -> None:
    """ECS pauses at ``stage`` for each pause hook there: a hook execution AWAITING_ACTION with its
    own ``hookId`` and expiry, and a HOOK_AWAITING_ACTION event (developer guide, "Pause hooks for
    Amazon ECS service deployments"). Its timeout is recorded, not run: the emulator has no clock."""
    for hook in _pause_hooks(record, stage):
        timeout = hook.get("timeoutConfiguration") or {}
        execution = {
            "hookId": "ecs-pause-" + "".join(mock_random.choice(string.ascii_letters + string.digits + "_")
                                             for _ in range(43)),
            "targetType": "PAUSE",
            "status": "AWAITING_ACTION",
            "expiresAt": _now() + dt.timedelta(minutes=timeout.get("timeoutInMinutes", 1440)),
            "timeoutAction": timeout.get("action", "ROLLBACK"),
            "_stage": stage,
        }
        record["lifecycleHookDetails"].append(execution)
        record["_events"].append(_hook_event(backend, service, record, execution, stage, "HOOK_AWAITING_ACTION"))


def _weights_by_revision(record: dict, green: float) -> dict:
    weights = {record["targetServiceRevision"]["arn"]: int(round(green))}
    for source in record["sourceServiceRevisions"]:
        weights[source["arn"]] = int(round(100 - green))
    return weights


def _step(backend, service, record: dict) -> dict | None:
    """Enter the next stage; the event ECS sends when the deployment completes, else None. The
    hook calls of the stage are queued in the record for the control's answer."""
    stage, weight = record["_stages"][record["_at"]]
    if stage == "PRE_PRODUCTION_TRAFFIC_SHIFT":
        before = record["targetServiceRevision"]["requestedProductionTrafficWeight"]
        record["_calls"] += _hook_calls(service, record, stage, production=_weights_by_revision(record, before))
    elif weight is not None:
        record["_calls"] += _hook_calls(service, record, stage, production=_weights_by_revision(record, weight))
    elif stage == "TEST_TRAFFIC_SHIFT":
        record["_calls"] += _hook_calls(service, record, stage, test=_weights_by_revision(record, 100.0))
    else:
        record["_calls"] += _hook_calls(service, record, stage)
    legacy = _legacy(service, record)
    record.update(lifecycleStage=stage, updatedAt=_now())
    _pause(backend, service, record, stage)
    target = record["targetServiceRevision"]
    if stage == "SCALE_UP" and legacy is not None:
        started_tasks = ecs_controls._start_tasks(backend, service, legacy, service.desired_count, 0)
        _register(backend, service, started_tasks, _green(backend, service, record), register=True)
        legacy.update(runningCount=service.desired_count, pendingCount=0, updatedAt=_now())
        target.update(runningTaskCount=service.desired_count, pendingTaskCount=0)
        ecs_controls._recount(service)
    if stage == "TEST_TRAFFIC_SHIFT":
        target["requestedTestTrafficWeight"] = 100.0
        for source in record["sourceServiceRevisions"]:
            source["requestedTestTrafficWeight"] = 0.0
    if weight is not None:
        _weights(backend, service, record, weight)
        target["requestedProductionTrafficWeight"] = weight
        for source in record["sourceServiceRevisions"]:
            source["requestedProductionTrafficWeight"] = 100.0 - weight
    if stage == "CLEAN_UP":
        blue = [t for t in ecs_controls._running(backend, service) if legacy is None or t.started_by != legacy["id"]]
        for task in blue:
            ecs_controls._stop(task, f"ECS deployment {record['_legacy']} completed: blue tasks stopped")
        _register(backend, service, blue, _live(backend, service), register=False)
        _store(backend)["live"][service.arn] = _green(backend, service, record)
        if legacy is not None:
            service.deployments[:] = [legacy]
        for source in record["sourceServiceRevisions"]:
            source.update(runningTaskCount=0, requestedTaskCount=0)
        ecs_controls._recount(service)
        if record["alarms"]["status"] == "MONITORING":
            record["alarms"]["status"] = "MONITORING_COMPLETE"
        _end(record, "SUCCESSFUL", f"ECS deployment {record['_legacy']} completed.")
        return ecs_controls._state_change_event(
            backend, service, {"id": record["_legacy"]}, "SERVICE_DEPLOYMENT_COMPLETED",
            f"ECS deployment {record['_legacy']} completed.",
        )
    record["_at"] += 1
    return None


def _give_back(backend, service, record: dict) -> None:
    """Traffic back to blue and the green tasks stopped: what a rollback or a stopped deployment
    leaves."""
    _weights(backend, service, record, 0.0)
    legacy = _legacy(service, record)
    green = [t for t in ecs_controls._running(backend, service) if legacy is not None and t.started_by == legacy["id"]]
    for task in green:
        ecs_controls._stop(task, f"ECS deployment {record['_legacy']} rolled back")
    _register(backend, service, green, _green(backend, service, record), register=False)
    if legacy is not None:
        legacy.update(runningCount=0, pendingCount=0, updatedAt=_now())
    target = record["targetServiceRevision"]
    target.update(runningTaskCount=0, pendingTaskCount=0, requestedProductionTrafficWeight=0.0,
                  requestedTestTrafficWeight=0.0)
    for source in record["sourceServiceRevisions"]:
        source.update(requestedProductionTrafficWeight=100.0)
    ecs_controls._recount(service)


def _answer(record: dict, event: dict | None = None) -> dict:
    calls, record["_calls"] = record["_calls"], []
    hook_events, record["_events"] = record["_events"], []
    event = event or record.pop("_event", None)
    answer = {
        "hookCalls": calls,
        "hookEvents": hook_events,
        "awaiting": [{"hookId": h["hookId"], "lifecycleStage": h["_stage"]} for h in awaiting(record)],
        "serviceDeploymentArn": record["serviceDeploymentArn"],
        "deploymentId": record["_legacy"],
        "status": record["status"],
        "lifecycleStage": record["lifecycleStage"],
        "productionTrafficWeights": {
            s["arn"]: s["requestedProductionTrafficWeight"]
            for s in [record["targetServiceRevision"], *record["sourceServiceRevisions"]]
        },
    }
    if event is not None:
        answer["event"] = event
    return answer


def advance(backend, service, spec: dict) -> dict:
    """Walk the deployment in progress ``stages`` stages (default 1), or ``to`` a named stage."""
    record = _current(backend, service)
    if record is None:
        raise ecs_controls.ControlError(f"ECS service `{service.name}` has no service deployment in progress")
    to = spec.get("to")
    names = [stage for stage, _ in record["_stages"][record["_at"]:]]
    if to is not None and to not in names:
        raise ecs_controls.ControlError(
            f"field `to`: the deployment does not reach {to!r} from {record['lifecycleStage']}; ahead: {', '.join(names)}"
        )
    count = names.index(to) + 1 if to is not None else spec.get("stages", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ecs_controls.ControlError("field `stages` must be a whole number of at least 1")
    paused = awaiting(record)
    if paused:
        raise ecs_controls.ControlError(
            f"the deployment is paused at {paused[0]['_stage']}: pause hook {paused[0]['hookId']} awaits "
            "ContinueServiceDeployment"
        )
    walk = record["_stages"][record["_at"]:record["_at"] + count]
    for at, (stage, _) in enumerate(walk):
        if at < len(walk) - 1 and _pause_hooks(record, stage):
            raise ecs_controls.ControlError(
                f"a pause hook at {stage} stops the deployment there: walk `to` {stage}, then continue it "
                "with ContinueServiceDeployment"
            )
        # ECS calls a Lambda hook at its stage and goes on only once it answers SUCCEEDED (developer
        # guide, "Lambda hooks for Amazon ECS service deployments"): a walk never passes a call the
        # hook has not answered, so a call is delivered while ECS is at its stage.
        if at < len(walk) - 1 and _lambda_hooks(record, stage):
            raise ecs_controls.ControlError(
                f"ECS calls a lifecycle hook at {stage} and waits for its answer there: walk `to` {stage}, "
                "deliver the call, then walk on"
            )
    event = None
    for _ in range(min(count, len(names))):
        event = _step(backend, service, record)
        if event is not None:
            break
    return _answer(record, event)


ROLLBACK_OUTCOMES = ("SUCCESSFUL", "IN_PROGRESS", "FAILED")


def finish(backend, service, spec: dict, state: str) -> dict:
    """COMPLETED: walk to the end. FAILED: roll back (as an alarm of the deployment does, naming it
    in ``alarm``, or a hook that answered FAILED), whatever stage it reached. ``rollback_outcome``
    says how far the rollback gets: SUCCESSFUL (default), IN_PROGRESS (ROLLBACK_IN_PROGRESS: traffic
    is back on blue, the green tasks stopped; a later FAILED finishes it) or FAILED
    (ROLLBACK_FAILED: ECS could not go back, traffic and tasks stay where they were)."""
    record = _current(backend, service, rolling_back=True)
    if record is None:
        raise ecs_controls.ControlError(f"ECS service `{service.name}` has no service deployment in progress")
    outcome = spec.get("rollback_outcome", "SUCCESSFUL")
    if outcome not in ROLLBACK_OUTCOMES:
        raise ecs_controls.ControlError(f"field `rollback_outcome` must be one of {', '.join(ROLLBACK_OUTCOMES)}")
    if record["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"):
        if state != "FAILED" or outcome == "IN_PROGRESS":
            raise ecs_controls.ControlError(
                f"ECS service `{service.name}` is rolling back: finish it with state FAILED and rollback_outcome SUCCESSFUL or FAILED"
            )
        return _end_rollback(backend, service, record, outcome)
    if state == "COMPLETED":
        ahead = {stage for stage, _ in record["_stages"][record["_at"]:]}
        hooked = sorted({stage for hook in record["deploymentConfiguration"].get("lifecycleHooks") or []
                         for stage in hook.get("lifecycleStages") or [] if stage in ahead})
        hooked += [h["_stage"] for h in awaiting(record)]
        if hooked:
            # ECS calls each hook at its stage and waits for the answer before it goes on: a
            # deployment with hooks ahead is walked stage by stage, each call delivered then.
            raise ecs_controls.ControlError(
                f"ECS service `{service.name}` has lifecycle hooks ahead ({', '.join(hooked)}): walk it with "
                "/_ops/ecs/advance-deployment (`to` CLEAN_UP completes it), deliver each hook call at its stage "
                "and continue each pause"
            )
        event = None
        while event is None:
            event = _step(backend, service, record)
        answer = _answer(record, event)
        answer["rolloutState"] = "COMPLETED"
        return answer
    alarm = spec.get("alarm")
    configured = record["deploymentConfiguration"].get("alarms") or {}
    if alarm is not None and (alarm not in record["alarms"]["alarmNames"] or not configured.get("enable")):
        raise ecs_controls.ControlError(
            f"field `alarm`: {alarm!r} is not one of the deployment's enabled alarms ({', '.join(record['alarms']['alarmNames']) or 'none'})"
        )
    if alarm is not None:
        reason = f"Service deployment rolled back because the CloudWatch alarm {alarm} is in ALARM state."
        record["alarms"].update(status="TRIGGERED", triggeredAlarmNames=[alarm])
    else:
        reason = spec.get("reason") or "Service deployment rolled back because a lifecycle hook failed."
    event = ecs_controls._state_change_event(
        backend, service, {"id": record["_legacy"]}, "SERVICE_DEPLOYMENT_FAILED", reason
    )
    if outcome == "FAILED":
        record["rollback"] = _rollback_of(record, reason)
        _end(record, "ROLLBACK_FAILED", reason)
        answer = _answer(record, event)
        answer["rolloutState"] = "FAILED"
        return answer
    begin_rollback(backend, service, record, reason, "ROLLBACK_IN_PROGRESS")
    if outcome == "IN_PROGRESS":
        answer = _answer(record, event)
        answer["rolloutState"] = "FAILED"
        return answer
    return _end_rollback(backend, service, record, "SUCCESSFUL", event)


def _rollback_of(record: dict, reason: str) -> dict:
    sources = record["sourceServiceRevisions"]
    return {"reason": reason, "startedAt": _now(), **({"serviceRevisionArn": sources[0]["arn"]} if sources else {})}


def begin_rollback(backend, service, record: dict, reason: str, status: str, event: bool = False) -> None:
    """ECS starts rolling the deployment back: "When a rollback occurs, Amazon ECS re-invokes hooks
    registered at the PRODUCTION_TRAFFIC_SHIFT and TEST_TRAFFIC_SHIFT stages", the green revision at
    0 (developer guide, Lambda hooks); traffic goes back to blue and the green tasks stop. With
    ``event``, the SERVICE_DEPLOYMENT_FAILED event is kept for the next control's answer."""
    record["rollback"] = _rollback_of(record, reason)
    back = _weights_by_revision(record, 0.0)
    record["_calls"] += _hook_calls(service, record, "TEST_TRAFFIC_SHIFT", test=back)
    record["_calls"] += _hook_calls(service, record, "PRODUCTION_TRAFFIC_SHIFT", production=back)
    _give_back(backend, service, record)
    record.update(status=status, statusReason=reason, updatedAt=_now())
    if event:
        record["_event"] = ecs_controls._state_change_event(
            backend, service, {"id": record["_legacy"]}, "SERVICE_DEPLOYMENT_FAILED", reason
        )


def _end_rollback(backend, service, record: dict, outcome: str, event: dict | None = None) -> dict:
    """The rollback ends: blue is the primary deployment again (SUCCESSFUL), or ECS gave up (FAILED)."""
    reason = record["rollback"]["reason"]
    answer_blue = None
    if outcome == "SUCCESSFUL":
        legacy = _legacy(service, record)
        blue = next((d for d in service.deployments if d is not legacy and d.get("runningCount", 0) > 0), None)
        if legacy is not None:
            legacy.update(status="ACTIVE", updatedAt=_now())
        if blue is not None:
            blue.update(status="PRIMARY", updatedAt=_now())
            service.task_definition = blue["taskDefinition"]
            service.deployments.sort(key=lambda d: d["status"] != "PRIMARY")
            answer_blue = blue["id"]
    _end(record, f"ROLLBACK_{outcome}", reason)
    answer = _answer(record, event)
    answer["rolloutState"] = "FAILED"
    if answer_blue is not None:
        answer["rollbackDeploymentId"] = answer_blue
    return answer


# --- the read APIs ---------------------------------------------------------------------------------


def _public(record: dict) -> dict:
    public = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
    for hook in public.get("lifecycleHookDetails") or []:
        hook.pop("_stage", None)
    return public


class ServiceDeploymentNotFoundException(ECSException):
    def __init__(self) -> None:
        super().__init__("ServiceDeploymentNotFoundException", "The service deployment does not exist.")


def _deployment_by_arn(backend, arn) -> tuple:
    """The record and service of a service deployment ARN, or ServiceDeploymentNotFoundException."""
    for service_arn, records in _store(backend)["deployments"].items():
        for record in records:
            if record["serviceDeploymentArn"] == arn:
                service = next(s for s in backend.services.values() if s.arn == service_arn)
                return record, service
    raise ServiceDeploymentNotFoundException()


def continue_deployment(backend, arn, hook_id, action) -> dict:
    """ContinueServiceDeployment (API reference; texts of the errors from the developer guide,
    "Troubleshooting Amazon ECS blue/green deployments"): CONTINUE (the default) ends the pause hook
    as SUCCEEDED; ROLLBACK ends it as FAILED and ECS rolls the deployment back."""
    if not isinstance(arn, str) or not isinstance(hook_id, str):
        raise InvalidParameterException("serviceDeploymentArn and hookId are required")
    action = action or "CONTINUE"
    if action not in ("CONTINUE", "ROLLBACK"):
        raise InvalidParameterException(f"action must be CONTINUE or ROLLBACK, not {action!r}")
    if not re.fullmatch(r"ecs-[a-z]+-[A-Za-z0-9_-]+", hook_id):
        raise InvalidParameterException("Invalid hookId: hookId must follow the format: ecs-{hookType}-{id}")
    record, service = _deployment_by_arn(backend, arn)
    if record["status"] in FINISHED:
        raise EcsClientException(
            "Continuing a service deployment is not allowed for service deployment in terminal states."
        )
    hook = next((h for h in awaiting(record) if h["hookId"] == hook_id), None)
    if hook is None or record["status"] != "IN_PROGRESS":
        raise InvalidParameterException(
            "Provided hookId is either completed, unavailable, or not associated with the given Resource ARN"
        )
    stage = hook["_stage"]
    if action == "CONTINUE":
        hook["status"] = "SUCCEEDED"
        record["_events"].append(_hook_event(backend, service, record, hook, stage, "HOOK_SUCCEEDED"))
    else:
        hook["status"] = "FAILED"
        record["_events"].append(_hook_event(backend, service, record, hook, stage, "HOOK_FAILED"))
        for other in awaiting(record):
            other["status"] = "FAILED"
        begin_rollback(backend, service, record,
                       f"Service deployment rolled back because {stage} pause hook(s) were continued with ROLLBACK.",
                       "ROLLBACK_IN_PROGRESS", event=True)
    record["updatedAt"] = _now()
    return {"serviceDeploymentArn": arn}


def stop_deployment(backend, arn, stop_type) -> dict:
    """StopServiceDeployment with stop type ROLLBACK ("The valid values are ROLLBACK", API reference):
    a PENDING or IN_PROGRESS deployment "moves to the ROLLBACK_REQUESTED state, and then the rollback
    operation starts"; one already stopping or rolling back goes on (developer guide, "Stopping Amazon
    ECS service deployments")."""
    if not isinstance(arn, str):
        raise InvalidParameterException("serviceDeploymentArn is required")
    if (stop_type or "ROLLBACK") != "ROLLBACK":
        raise InvalidParameterException(f"stopType {stop_type!r} is not supported: the valid value is ROLLBACK")
    record, service = _deployment_by_arn(backend, arn)
    if record["status"] in FINISHED:
        raise EcsClientException("Stopping a service deployment is not allowed for service deployment in terminal states.")
    if record["status"] in ("PENDING", "IN_PROGRESS"):
        for hook in awaiting(record):
            hook["status"] = "FAILED"
        begin_rollback(backend, service, record, "Service deployment rolled back because it was stopped by a user.",
                       "ROLLBACK_REQUESTED", event=True)
    return {"serviceDeploymentArn": arn}


def install() -> None:
    """Serve ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions."""
    if getattr(EC2ContainerServiceResponse, "_ops_strategies", False):
        return

    def list_service_deployments(self):
        backend = self.ecs_backend
        service = backend._get_service(self._get_param("cluster", "default"), self._get_param("service"))
        wanted = self._get_param("status") or None
        limit = self._get_param("maxResults") or 20
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise InvalidParameterException("maxResults must be between 1 and 100")
        records = list(reversed(_store(backend)["deployments"].get(service.arn, [])))
        if wanted:
            records = [r for r in records if r["status"] in wanted]
        created = self._get_param("createdAt") or {}

        def seconds(value) -> float:
            return value.timestamp() if isinstance(value, dt.datetime) else float(value)

        if created.get("after") is not None:
            records = [r for r in records if r["createdAt"].timestamp() >= seconds(created["after"])]
        if created.get("before") is not None:
            records = [r for r in records if r["createdAt"].timestamp() <= seconds(created["before"])]
        start = int(self._get_param("nextToken") or 0)
        page = records[start:start + limit]
        briefs = [
            {k: r[k] for k in ("serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt",
                               "finishedAt", "status", "statusReason") if k in r}
            | {"targetServiceRevisionArn": r["targetServiceRevision"]["arn"]}
            for r in page
        ]
        answer = {"serviceDeployments": briefs}
        if start + limit < len(records):
            answer["nextToken"] = str(start + limit)
        return ActionResult(answer)

    def describe_many(self, field: str, found_in: str, key: str):
        arns = self._get_param(field) or []
        if len(arns) > MAX_DESCRIBE:
            raise InvalidParameterException(f"{field} can have at most {MAX_DESCRIBE} ARNs")
        store = _store(self.ecs_backend)
        if found_in == "deployments":
            index = {r["serviceDeploymentArn"]: r for records in store["deployments"].values() for r in records}
        else:
            index = store["revisions"]
        found = [_public(index[a]) for a in arns if a in index]
        failures = [{"arn": a, "reason": "MISSING"} for a in arns if a not in index]
        return ActionResult({key: found, "failures": failures})

    def describe_service_deployments(self):
        return describe_many(self, "serviceDeploymentArns", "deployments", "serviceDeployments")

    def describe_service_revisions(self):
        return describe_many(self, "serviceRevisionArns", "revisions", "serviceRevisions")

    def continue_service_deployment(self):
        return ActionResult(continue_deployment(
            self.ecs_backend, self._get_param("serviceDeploymentArn"), self._get_param("hookId"),
            self._get_param("action"),
        ))

    def stop_service_deployment(self):
        return ActionResult(stop_deployment(
            self.ecs_backend, self._get_param("serviceDeploymentArn"), self._get_param("stopType"),
        ))

    EC2ContainerServiceResponse.continue_service_deployment = continue_service_deployment
    EC2ContainerServiceResponse.stop_service_deployment = stop_service_deployment
    EC2ContainerServiceResponse.list_service_deployments = list_service_deployments
    EC2ContainerServiceResponse.describe_service_deployments = describe_service_deployments
    EC2ContainerServiceResponse.describe_service_revisions = describe_service_revisions
    EC2ContainerServiceResponse._ops_strategies = True


# --- a service of a strategy, for tests and the demo -------------------------------------------------


def create_service(endpoint: str, region: str, spec: dict) -> dict:
    """An ECS service on ``strategy`` behind an ALB: two ``ip`` target groups, a listener whose rule
    forwards to the first, the service's ``advancedConfiguration`` naming the second and the rule,
    and (for ``alarms``) CloudWatch alarms the deployments watch. Built through the API."""
    known = {"cluster", "service", "task_definition", "strategy", "desired", "tags", "alarms",
             "canary", "linear", "bake_minutes", "network", "lifecycle_hooks"}
    unknown = set(spec) - known
    if unknown:
        raise ecs_controls.ControlError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for field in ("cluster", "service", "task_definition", "strategy"):
        if not isinstance(spec.get(field), str):
            raise ecs_controls.ControlError(f"field `{field}` is required")
    network = spec.get("network")
    if not isinstance(network, dict):
        raise ecs_controls.ControlError("field `network` is required: the service's awsvpcConfiguration")

    def client(name: str):
        return boto3.client(name, region_name=region, endpoint_url=endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    ec2, elbv2, ecs, cloudwatch = client("ec2"), client("elbv2"), client("ecs"), client("cloudwatch")
    subnets = network.get("subnets") or []
    vpc = ec2.describe_subnets(SubnetIds=subnets)["Subnets"][0]["VpcId"]
    name = spec["service"]
    balancer = elbv2.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, Type="application")
    balancer_arn = balancer["LoadBalancers"][0]["LoadBalancerArn"]
    groups = [
        elbv2.create_target_group(Name=f"{name}-{colour}", Protocol="HTTP", Port=80, VpcId=vpc,
                                  TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        for colour in ("blue", "green")
    ]
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer_arn, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener, Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
        Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": groups[0], "Weight": 100}, {"TargetGroupArn": groups[1], "Weight": 0}]}}],
    )["Rules"][0]["RuleArn"]
    alarms = spec.get("alarms") or []
    for alarm in alarms:
        cloudwatch.put_metric_alarm(
            AlarmName=alarm, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
    config = {"strategy": spec["strategy"], "bakeTimeInMinutes": spec.get("bake_minutes", 5)}
    if alarms:
        config["alarms"] = {"alarmNames": alarms, "enable": True, "rollback": True}
    if spec.get("canary"):
        config["canaryConfiguration"] = spec["canary"]
    if spec.get("linear"):
        config["linearConfiguration"] = spec["linear"]
    if spec.get("lifecycle_hooks"):
        config["lifecycleHooks"] = spec["lifecycle_hooks"]
    definition = ecs.describe_task_definition(taskDefinition=spec["task_definition"])["taskDefinition"]
    container = definition["containerDefinitions"][0]
    ecs.create_service(
        cluster=spec["cluster"], serviceName=name, taskDefinition=spec["task_definition"],
        desiredCount=spec.get("desired", 2), launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": network},
        deploymentController={"type": "ECS"}, deploymentConfiguration=config,
        loadBalancers=[{
            "targetGroupArn": groups[0], "containerName": container["name"],
            "containerPort": (container.get("portMappings") or [{"containerPort": 80}])[0]["containerPort"],
            "advancedConfiguration": {
                "alternateTargetGroupArn": groups[1], "productionListenerRule": rule,
                "roleArn": f"arn:aws:iam::{definition['taskDefinitionArn'].split(':')[4]}:role/ecs-load-balancers",
            },
        }],
        tags=[{"key": k, "value": v} for k, v in (spec.get("tags") or {}).items()],
    )
    return {"service": name, "targetGroups": groups, "productionListenerRule": rule, "listener": listener,
            "alarms": alarms}
