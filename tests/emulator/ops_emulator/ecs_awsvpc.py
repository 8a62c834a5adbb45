"""awsvpc ECS services as people run them (Fargate): what moto 5.2.5's ECS model lacks or gets wrong.

moto gives an awsvpc task an ENI with a random 10.x address outside its subnet, always in the first
subnet, reads the ENI's ``private_dns_name`` (absent unless the VPC has DNS hostnames on, so tasks in a
VPC from plain ``CreateVpc`` fail with AttributeError), requires ``securityGroups`` (AWS uses the VPC's
default group), never frees the ENI, ignores ``capacityProviderStrategy`` in CreateService, and reads
back no platform version unless one was given. This module patches the model so that, as the Amazon ECS
API Reference and the developer guide ("Fargate task networking") say:

- CreateService / UpdateService check an awsvpc service's ``networkConfiguration`` (required for an
  awsvpc task definition; subnets and security groups must exist and share one VPC; security groups
  optional; ``assignPublicIp`` defaults to DISABLED), its load balancers' target groups (type ``ip``),
  and its launch type or capacity provider strategy (one or the other; providers associated with the
  cluster) before anything is created or changed;
- a Fargate service reads back ``platformVersion`` LATEST when none was given, its deployments and
  tasks the version it resolves to; a capacity provider strategy reads back instead of a launch type;
- each awsvpc task gets an ENI with a free private IPv4 address of one of the service's subnets (spread
  over them, so over their zones), the service's security groups or the VPC's default one, shown as the
  task's ``ElasticNetworkInterface`` attachment, its ``availabilityZone`` and its containers'
  ``networkInterfaces``; when the task stops its ENI is deleted and the attachment reads DELETED.

``ecs_controls`` uses the helpers here for its deployments and controls.
"""

from __future__ import annotations

import copy
import inspect
import ipaddress
import types

from moto.ec2.models import ec2_backends
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Task
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random

from . import ecs_strategies

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
# "The latest Linux platform version is 1.4.0" (developer guide, "Fargate platform versions").
LATEST_LINUX_PLATFORM = "1.4.0"
MAX_SUBNETS, MAX_SECURITY_GROUPS = 16, 5


class TaskStartError(ValueError):
    """A task cannot start: no free address left in the service's subnets."""


# --- the service's launch settings -------------------------------------------------------------


def strategy_of(service) -> list | None:
    return getattr(service, "capacity_provider_strategy", None) or None


def is_fargate(launch_type: str | None, strategy: list | None) -> bool:
    if strategy:
        return strategy[0]["capacityProvider"] in FARGATE_PROVIDERS
    return launch_type == "FARGATE"


def service_is_fargate(service) -> bool:
    return is_fargate(service.launch_type, strategy_of(service))


def resolved_platform(version: str | None) -> str:
    return LATEST_LINUX_PLATFORM if version in (None, "LATEST") else version


def deployment_fields(service) -> dict:
    """What a new deployment of the service records about where and how its tasks run."""
    fargate = service_is_fargate(service)
    strategy = strategy_of(service)
    return {
        "launchType": None if strategy else service.launch_type,
        "capacityProviderStrategy": copy.deepcopy(strategy),
        "platformVersion": resolved_platform(service.platform_version) if fargate else None,
        "platformFamily": "Linux" if fargate else None,
        "networkConfiguration": copy.deepcopy(service.network_configuration) or None,
    }


def provider_for(strategy: list | None, index: int) -> str | None:
    """The capacity provider of the service's ``index``-th task: each provider's ``base`` first, in
    order, then the rest shared by ``weight``."""
    if not strategy:
        return None
    for item in strategy:
        if index < item.get("base", 0):
            return item["capacityProvider"]
        index -= item.get("base", 0)
    weighted = [item for item in strategy if item.get("weight", 0) > 0] or strategy[:1]
    total = sum(max(item.get("weight", 0), 1) for item in weighted)
    slot = index % total
    for item in weighted:
        slot -= max(item.get("weight", 0), 1)
        if slot < 0:
            return item["capacityProvider"]
    return weighted[-1]["capacityProvider"]


def check_capacity(cluster, launch_type: str | None, strategy: list | None) -> tuple[str | None, list | None]:
    """CreateService: a launch type or a capacity provider strategy, not both; neither means the
    cluster's default strategy (or EC2 when it has none). Providers must be associated with the cluster."""
    if launch_type and strategy:
        raise InvalidParameterException(
            "Specify either Launch Type or Capacity Provider Strategy, but not both."
        )
    if not launch_type and not strategy:
        strategy = cluster.default_capacity_provider_strategy or None
        if not strategy:
            return "EC2", None
    if strategy:
        return None, normalize_strategy(cluster, strategy)
    return launch_type, None


def normalize_strategy(cluster, strategy: list) -> list:
    if not isinstance(strategy, list):
        raise InvalidParameterException("capacityProviderStrategy must be a list.")
    associated = set(cluster.capacity_providers or [])
    normalized = []
    for item in strategy:
        name = item.get("capacityProvider") if isinstance(item, dict) else None
        if not name:
            raise InvalidParameterException("capacityProviderStrategy.capacityProvider is required.")
        if name.split("/")[-1] not in associated and name not in associated:
            raise InvalidParameterException(
                "The specified capacity provider strategy cannot contain a capacity provider that is not "
                "associated with the cluster. Associate the capacity provider with the cluster or specify "
                "a valid capacity provider and try again."
            )
        normalized.append(
            {"capacityProvider": name, "weight": int(item.get("weight") or 0), "base": int(item.get("base") or 0)}
        )
    return normalized


# --- the service's network ---------------------------------------------------------------------


def normalize_network(backend: EC2ContainerServiceBackend, network) -> dict:
    """An awsvpc networkConfiguration checked against EC2 and completed as ECS stores it."""
    config = network.get("awsvpcConfiguration") if isinstance(network, dict) else None
    if not isinstance(config, dict):
        raise InvalidParameterException("networkConfiguration.awsvpcConfiguration is required.")
    subnets = config.get("subnets") or []
    groups = config.get("securityGroups")
    public = config.get("assignPublicIp", "DISABLED")
    if not isinstance(subnets, list) or not subnets:
        raise InvalidParameterException("subnets can not be empty.")
    if len(subnets) > MAX_SUBNETS:
        raise InvalidParameterException(f"At most {MAX_SUBNETS} subnets can be specified.")
    if groups is not None and (not isinstance(groups, list) or len(groups) > MAX_SECURITY_GROUPS):
        raise InvalidParameterException(f"At most {MAX_SECURITY_GROUPS} security groups can be specified.")
    if public not in ("ENABLED", "DISABLED"):
        raise InvalidParameterException("assignPublicIp must be one of [ENABLED, DISABLED].")
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    vpcs = set()
    for subnet_id in subnets:
        subnet = _subnet(ec2, subnet_id)
        if subnet is None:
            raise InvalidParameterException(
                f"Error retrieving subnet information for [{subnet_id}]: The subnet ID '{subnet_id}' "
                "does not exist (ErrorCode: InvalidSubnetID.NotFound)"
            )
        vpcs.add(subnet.vpc_id)
    if len(vpcs) > 1:
        raise InvalidParameterException("All subnets must belong to the same VPC.")
    for group_id in groups or []:
        group = ec2.get_security_group_from_id(group_id)
        if group is None:
            raise InvalidParameterException(
                f"Error retrieving security group information for [{group_id}]: The security group "
                f"'{group_id}' does not exist (ErrorCode: InvalidGroup.NotFound)"
            )
        if group.vpc_id not in vpcs:
            raise InvalidParameterException(
                f"Security group {group_id} does not appear to belong to the same VPC as the input subnets."
            )
    normalized = {"subnets": list(subnets), "assignPublicIp": public}
    if groups:
        normalized["securityGroups"] = list(groups)
    return {"awsvpcConfiguration": normalized}


def check_network(definition, network: dict | None) -> None:
    """networkConfiguration "is required for task definitions that use the awsvpc network mode ...
    and it isn't supported for other network modes" (CreateService)."""
    if definition is None:
        return
    if definition.network_mode == "awsvpc" and not network:
        raise InvalidParameterException(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        )
    if definition.network_mode != "awsvpc" and network:
        raise InvalidParameterException(
            "Network Configuration is not valid for the given networkMode of this task definition."
        )


def check_launch(definition, launch_type: str | None, strategy: list | None) -> None:
    """A Fargate service runs only a task definition registered as FARGATE-compatible
    (``requiresCompatibilities``); ECS refuses CreateService and UpdateService otherwise with
    "Task definition does not support launch_type FARGATE." (InvalidParameterException)."""
    if definition is None or not is_fargate(launch_type, strategy):
        return
    if "FARGATE" not in (definition.compatibilities or []):
        raise InvalidParameterException("Task definition does not support launch_type FARGATE.")


def check_load_balancers(backend: EC2ContainerServiceBackend, definition, load_balancers) -> None:
    """Target groups of an awsvpc service must have target type ``ip``, "not instance"."""
    if definition is None or definition.network_mode != "awsvpc":
        return
    from moto.elbv2.models import elbv2_backends

    elbv2 = elbv2_backends[backend.account_id][backend.region_name]
    for balancer in load_balancers or []:
        arn = balancer.get("targetGroupArn")
        group = elbv2.target_groups.get(arn or "")
        if group is not None and group.target_type != "ip":
            raise InvalidParameterException(
                f"The provided target group {arn} has target type {group.target_type}, which is "
                "incompatible with the awsvpc network mode specified in the task definition."
            )


# What UpdateService cannot change on a service whose deployments another controller runs (API
# reference, UpdateService): "For services using the blue/green (CODE_DEPLOY) deployment controller,
# only the desired count, deployment configuration, health check grace period, task placement
# constraints and strategies, enable ECS managed tags option, and propagate tags can be updated ...
# If the network configuration, platform version, task definition, or load balancer need to be
# updated, create a new CodeDeploy deployment." and for an external controller "If the launch type,
# load balancer, network configuration, platform version, or task definition need to be updated,
# create a new task set".
_CONTROLLED_ELSEWHERE = {
    "CODE_DEPLOY": (("task_definition", "task definition"), ("network_configuration", "network configuration"),
                    ("platform_version", "platform version"), ("load_balancers", "load balancers")),
    "EXTERNAL": (("task_definition", "task definition"), ("network_configuration", "network configuration"),
                 ("platform_version", "platform version"), ("load_balancers", "load balancers"),
                 ("capacity_provider_strategy", "launch type")),
}
_USE_INSTEAD = {"CODE_DEPLOY": "Use AWS CodeDeploy to trigger a new deployment.",
                "EXTERNAL": "Use CreateTaskSet to start a new task set."}


def check_controller(service, props: dict, current_definition: str | None) -> None:
    """Refuse what UpdateService cannot change under a CODE_DEPLOY or EXTERNAL controller. The
    CODE_DEPLOY task-definition and force-new-deployment texts are ECS's own (the developer guide,
    "Update Amazon ECS service parameters", quotes the first); the others follow their pattern,
    since AWS documents no text for them."""
    controller = (service.deployment_controller or {}).get("type", "ECS")
    if controller not in _CONTROLLED_ELSEWHERE:
        return
    article = "an" if controller == "EXTERNAL" else "a"
    for key, what in _CONTROLLED_ELSEWHERE[controller]:
        value = props.get(key)
        if value is None or (key == "task_definition" and value == current_definition):
            continue
        raise InvalidParameterException(
            f"Unable to update {what} on services with {article} {controller} deployment controller. "
            f"{_USE_INSTEAD[controller]}"
        )
    if props.get("force_new_deployment"):
        raise InvalidParameterException(
            f"Cannot force a new deployment on services with {article} {controller} deployment controller. "
            f"{_USE_INSTEAD[controller]}"
        )


def prepare_update(backend: EC2ContainerServiceBackend, service, props: dict) -> dict:
    """Check an UpdateService request before anything changes (moto changes the service, then checks
    the task definition). Resolves ``taskDefinition`` (``family``, ``family:revision`` or ARN) to its
    ARN in ``props`` and takes out what ``apply_update`` sets once moto has updated the service."""
    named = props.get("task_definition")
    definition = None
    if named:
        definition = backend.describe_task_definition(named)
        props["task_definition"] = definition.arn
    elif service.task_definition:
        definition = backend.describe_task_definition(service.task_definition)
    check_controller(service, props, service.task_definition)
    if props.get("deployment_configuration") is not None:
        balancers = props.get("load_balancers")
        props["deployment_configuration"] = ecs_strategies.check_configuration(
            backend, props["deployment_configuration"], service.load_balancers if balancers is None else balancers
        )
    plan: dict = {}
    network = props.pop("network_configuration", None)
    if network is not None:
        plan["network"] = normalize_network(backend, network)
    check_network(definition, plan.get("network", service.network_configuration or None))
    balancers = props.get("load_balancers")
    check_load_balancers(backend, definition, service.load_balancers if balancers is None else balancers)
    strategy = props.pop("capacity_provider_strategy", None)
    if strategy is not None:
        cluster = backend._get_cluster(service.cluster_name)
        plan["strategy"] = normalize_strategy(cluster, strategy) if strategy else []
    if "strategy" in plan:
        launch_type = None if plan["strategy"] else ("FARGATE" if service_is_fargate(service) else "EC2")
        check_launch(definition, launch_type, plan["strategy"] or None)
    else:
        check_launch(definition, service.launch_type, strategy_of(service))
    return plan


def apply_update(service, plan: dict) -> None:
    if "network" in plan:
        service.network_configuration = plan["network"]
    if "strategy" in plan:
        was_fargate = service_is_fargate(service)
        if plan["strategy"]:
            service.capacity_provider_strategy = plan["strategy"]
            service.launch_type = None
        else:
            # "Pass an empty list" to go back from a capacity provider to the launch type.
            service.capacity_provider_strategy = None
            service.launch_type = "FARGATE" if was_fargate else "EC2"
    if service_is_fargate(service) and not service.platform_version:
        service.platform_version = "LATEST"


# --- tasks' network interfaces -----------------------------------------------------------------


class _WithoutEni:
    """The task definition as moto's Task sees it while this module makes the task's ENI itself."""

    network_mode = "awsvpc (interface made by ops_emulator.ecs_awsvpc)"

    def __init__(self, definition) -> None:
        self._definition = definition

    def __getattr__(self, name: str):
        return getattr(self._definition, name)


def _subnet(ec2, subnet_id: str):
    try:
        return ec2.get_subnet(subnet_id)
    except Exception:  # InvalidSubnetIdError
        return None


def _used_addresses(ec2, subnet) -> set[str]:
    used = set(getattr(subnet, "_subnet_ips", {}))
    for eni in ec2.enis.values():
        if getattr(eni.subnet, "id", None) != subnet.id:
            continue
        used.add(eni.private_ip_address)
        used.update(a.get("PrivateIpAddress") for a in eni.private_ip_addresses if isinstance(a, dict))
    return used


def _free_address(ec2, subnet) -> str | None:
    """A free private IPv4 address of the subnet; AWS reserves its first four and its last."""
    network = ipaddress.ip_network(subnet.cidr_block, strict=False)
    first, last = 4, network.num_addresses - 2
    if last < first:
        return None
    used = _used_addresses(ec2, subnet)
    for _ in range(32):
        candidate = str(network[mock_random.randint(first, last)])
        if candidate not in used:
            return candidate
    for offset in range(first, last + 1):
        candidate = str(network[offset])
        if candidate not in used:
            return candidate
    return None


def _subnet_of(task) -> str | None:
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "subnetId":
                return detail["value"]
    return None


def _place(backend, cluster, group: str, network: dict) -> tuple:
    """The subnet (the least used by the group's running tasks, in the order given) and the free
    address the next task gets; TaskStartError when every subnet is full."""
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    subnets = network["awsvpcConfiguration"]["subnets"]
    running = [
        t for t in backend.tasks.get(cluster.name, {}).values() if t.group == group and t.last_status == "RUNNING"
    ]
    load = {s: sum(1 for t in running if _subnet_of(t) == s) for s in subnets}
    for subnet_id in sorted(subnets, key=lambda s: (load[s], subnets.index(s))):
        subnet = _subnet(ec2, subnet_id)
        if subnet is None:
            continue
        address = _free_address(ec2, subnet)
        if address is not None:
            return ec2, subnet, address
    raise TaskStartError(f"no free IPv4 address left in subnet(s) {', '.join(subnets)}")


def _attach(task, ec2, subnet, address: str, network: dict) -> None:
    attachment_id = str(mock_random.uuid4())
    groups = network["awsvpcConfiguration"].get("securityGroups") or None
    partition = task.cluster_arn.split(":")[1]
    eni = ec2.create_network_interface(
        subnet=subnet.id,
        private_ip_address=address,
        group_ids=groups,  # None: moto (as AWS) uses the VPC's default security group
        description=f"arn:{partition}:ecs:{task.region_name}:{task._account_id}:attachment/{attachment_id}",
    )
    eni.status = "in-use"
    eni.device_index = 0
    details = [
        {"name": "subnetId", "value": subnet.id},
        {"name": "networkInterfaceId", "value": eni.id},
        {"name": "macAddress", "value": eni.mac_address},
    ]
    dns_name = getattr(eni, "private_dns_name", None)  # set by moto only with DNS hostnames on
    if dns_name:
        details.append({"name": "privateDnsName", "value": dns_name})
    details.append({"name": "privateIPv4Address", "value": address})
    task.attachments.append(
        {"id": attachment_id, "type": "ElasticNetworkInterface", "status": "ATTACHED", "details": details}
    )
    task.availability_zone = subnet.availability_zone
    for container in task.containers:
        container.network_interfaces = [{"attachmentId": attachment_id, "privateIpv4Address": address}]


def _fargate_fields(task) -> None:
    if not task.launch_type and task.capacity_provider_name in FARGATE_PROVIDERS:
        task.launch_type = "FARGATE"
    if task.launch_type == "FARGATE":
        task.platform_version = resolved_platform(task.platform_version)
        task.platform_family = "Linux"


def release(task) -> None:
    """A stopped task's ENI is deleted; its attachment reads DELETED."""
    ec2 = ec2_backends[task._account_id][task.region_name]
    for attachment in task.attachments:
        if attachment.get("type") != "ElasticNetworkInterface" or attachment.get("status") == "DELETED":
            continue
        for detail in attachment.get("details", []):
            if detail.get("name") == "networkInterfaceId":
                ec2.enis.pop(detail["value"], None)
        attachment["status"] = "DELETED"


def discard(backend, task) -> None:
    """Undo a task that a control started but cannot keep: no ENI, no trace in the cluster."""
    release(task)
    backend.tasks.get(task.cluster_name, {}).pop(task.task_arn, None)


# --- installing --------------------------------------------------------------------------------


def install() -> None:
    """Patch moto's ECS Task, CreateService (model and response) and StopTask as described above."""
    if getattr(Task.__init__, "_ops_awsvpc", False):
        return
    original_init = Task.__init__
    signature = inspect.signature(original_init)

    def task_init(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        definition, network = given["task_definition"], given["networking_configuration"]
        if definition.network_mode != "awsvpc" or not network:
            original_init(self, *args, **kwargs)  # moto refuses awsvpc without a network itself
            _fargate_fields(self)
            return
        network = normalize_network(given["backend"], network)
        ec2, subnet, address = _place(given["backend"], given["cluster"], given["group"], network)
        given["task_definition"] = _WithoutEni(definition)
        original_init(*bound.args, **bound.kwargs)
        self.network_configuration = network
        _attach(self, ec2, subnet, address, network)
        _fargate_fields(self)

    task_init._ops_awsvpc = True  # type: ignore[attr-defined]
    Task.__init__ = task_init

    original_create = EC2ContainerServiceBackend.create_service

    def create_service(self, cluster_str, service_name, desired_count, task_definition_str=None,
                       load_balancers=None, scheduling_strategy=None, tags=None, deployment_controller=None,
                       launch_type=None, service_registries=None, platform_version=None,
                       propagate_tags="NONE", network_configuration=None, role_arn=None,
                       capacity_provider_strategy=None, deployment_configuration=None):
        cluster = self._get_cluster(cluster_str)
        configuration = ecs_strategies.check_configuration(self, deployment_configuration, load_balancers)
        definition = self.describe_task_definition(task_definition_str) if task_definition_str else None
        launch_type, strategy = check_capacity(cluster, launch_type, capacity_provider_strategy)
        network = normalize_network(self, network_configuration) if network_configuration is not None else None
        check_network(definition, network)
        check_launch(definition, launch_type, strategy)
        check_load_balancers(self, definition, load_balancers)
        if is_fargate(launch_type, strategy) and not platform_version:
            platform_version = "LATEST"
        service = original_create(
            self, cluster_str, service_name, desired_count, task_definition_str=task_definition_str,
            load_balancers=load_balancers, scheduling_strategy=scheduling_strategy, tags=tags,
            deployment_controller=deployment_controller, launch_type=launch_type or "EC2",
            service_registries=service_registries, platform_version=platform_version,
            propagate_tags=propagate_tags, network_configuration=None, role_arn=role_arn,
        )
        service.launch_type = launch_type
        service.capacity_provider_strategy = strategy
        service.network_configuration = network or {}
        for deployment in service.deployments:
            deployment.update(deployment_fields(service))
        if configuration is not None:
            service.deployment_configuration = configuration
            for deployment in service.deployments:
                ecs_strategies.started(self, service, deployment)
        return service

    EC2ContainerServiceBackend.create_service = create_service

    def create_service_response(self):
        service = self.ecs_backend.create_service(
            self._get_param("cluster", "default"),
            self._get_param("serviceName"),
            self._get_int_param("desiredCount"),
            self._get_param("taskDefinition"),
            self._get_param("loadBalancers"),
            self._get_param("schedulingStrategy"),
            self._get_param("tags"),
            self._get_param("deploymentController"),
            self._get_param("launchType"),
            network_configuration=self._get_param("networkConfiguration"),
            service_registries=self._get_param("serviceRegistries"),
            platform_version=self._get_param("platformVersion"),
            propagate_tags=self._get_param("propagateTags") or "NONE",
            role_arn=self._get_param("role"),
            capacity_provider_strategy=self._get_param("capacityProviderStrategy"),
            deployment_configuration=self._get_param("deploymentConfiguration"),
        )
        return ActionResult({"service": service})

    EC2ContainerServiceResponse.create_service = create_service_response

    original_requirements = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def requirements(task_definition):
        # A Fargate task definition may size memory for the task only (RunTask then failed with
        # TypeError in moto): a container without memory of its own counts as 0 for placement.
        sized = ("memory", "memoryReservation", "Memory", "MemoryReservation")
        containers = [
            c if any(c.get(k) is not None for k in sized) else {**c, "memory": 0}
            for c in task_definition.container_definitions
        ]
        return original_requirements(types.SimpleNamespace(container_definitions=containers))

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(requirements)

    original_stop = EC2ContainerServiceBackend.stop_task

    def stop_task(self, cluster_str, task_str, reason):
        from . import ecs_controls  # imported here: ecs_controls imports this module

        task = original_stop(self, cluster_str, task_str, reason)
        ecs_controls.task_stopped(self, task)
        release(task)
        return task

    EC2ContainerServiceBackend.stop_task = stop_task
