"""Task definitions as RegisterTaskDefinition checks them for Fargate: what moto 5.2.5 lacks.

moto reads back every task definition whose ``requiresCompatibilities`` is not exactly ``[EC2]`` as
FARGATE-compatible (an EXTERNAL-only one too) with network mode ``awsvpc`` whatever was asked, and
accepts a Fargate task definition without task-level cpu or memory or with a size Fargate does not
offer. This module patches registration so that, as the Amazon ECS developer guide says:

- ``compatibilities`` are the launch types the definition was validated against: EC2, plus each one
  ``requiresCompatibilities`` names ("Task definition parameters", requiresCompatibilities);
- a definition that requires FARGATE must use network mode ``awsvpc`` ("If using the Fargate launch
  type, the awsvpc network mode is required"), and give task-level ``cpu`` and ``memory`` in one of
  the combinations Fargate supports ("Task size", the table of CPU and memory values); otherwise
  ECS answers ClientException and registers nothing.

https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
"""

from __future__ import annotations

from moto.ecs.exceptions import EcsClientException
from moto.ecs.models import EC2ContainerServiceBackend

LAUNCH_TYPE_ORDER = ("EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES")
# Fargate (Linux) task sizes: CPU units -> the memory values (MiB) it may be paired with.
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}


def _units(value, per_unit: int) -> int | None:
    """CPU units or MiB from the forms ECS accepts: "1024", "1 vCPU", "2 GB"; None if unreadable."""
    text = str(value).strip().lower()
    for suffix in ("vcpu", "gb"):
        if text.endswith(suffix):
            try:
                return int(float(text[: -len(suffix)].strip()) * per_unit)
            except ValueError:
                return None
    try:
        return int(text)
    except ValueError:
        return None


def check_fargate(network_mode: str | None, cpu, memory) -> None:
    if network_mode != "awsvpc":
        raise EcsClientException("Fargate only supports network mode ‘awsvpc’.")
    if not cpu:
        raise EcsClientException("Fargate requires that 'cpu' be defined at the task level.")
    if not memory:
        raise EcsClientException("Fargate requires that 'memory' be defined at the task level.")
    cpu_units, memory_mib = _units(cpu, 1024), _units(memory, 1024)
    if cpu_units is None or memory_mib is None:
        return
    if memory_mib not in FARGATE_SIZES.get(cpu_units, []):
        raise EcsClientException(
            f"No Fargate configuration exists for given values: {cpu_units} CPU, {memory_mib} memory. "
            "See the Amazon ECS documentation for the valid values."
        )


def compatibilities_of(requires: list[str] | None) -> list[str]:
    named = set(requires or []) | {"EC2"}
    return [launch for launch in LAUNCH_TYPE_ORDER if launch in named]


def install() -> None:
    original = EC2ContainerServiceBackend.register_task_definition
    if getattr(original, "_ops_fargate", False):
        return

    def register_task_definition(self, family, container_definitions, *args, **kwargs):
        requires = kwargs.get("requires_compatibilities")
        network_mode = kwargs.get("network_mode")
        if requires and "FARGATE" in requires:
            check_fargate(network_mode, kwargs.get("cpu"), kwargs.get("memory"))
        definition = original(self, family, container_definitions, *args, **kwargs)
        definition.compatibilities = compatibilities_of(requires)
        if network_mode is not None:
            definition.network_mode = network_mode
        return definition

    register_task_definition._ops_fargate = True  # type: ignore[attr-defined]
    EC2ContainerServiceBackend.register_task_definition = register_task_definition
