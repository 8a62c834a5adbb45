"""Fault injection: make a share of the calls to a service or operation fail, for reliability tests.

A rule matches a service (signing name or alias) and optionally one operation. It fires either on
chosen call numbers (``on_calls``: the k-th matching call after the rule was added, counting from 1)
or at a rate (``rate`` in [0, 1], drawn from a seeded generator so a run can be repeated). ``times``
caps how often it fires. Service ``*`` matches every call, whatever its service. Kinds: ``throttle`` (the service's throttling error), ``error500`` (an
internal error), ``latency`` (``latency_ms`` added before the call proceeds) and ``drop`` (the
connection is closed with no answer).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field

from .protocol import AwsCall, canonical_service

KINDS = ("throttle", "error500", "latency", "drop")
# A rule for this service matches every AWS call, so "the k-th call of an operation" can be any call.
ANY_SERVICE = "*"


class FaultRuleError(ValueError):
    """A fault rule that cannot be installed; the message names the field."""


@dataclass
class FaultRule:
    """One installed rule and how often it has matched and fired."""

    id: int
    service: str
    operation: str | None
    kind: str
    on_calls: list[int] = field(default_factory=list)
    rate: float = 0.0
    times: int | None = None
    latency_ms: int = 0
    matched: int = 0
    fired: int = 0

    def applies_to(self, call: AwsCall) -> bool:
        return self.service in (ANY_SERVICE, call.service) and self.operation in (None, call.operation)

    def should_fire(self, draw: float) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.on_calls:
            return self.matched in self.on_calls
        return draw < self.rate


def parse_rule(rule_id: int, spec: dict) -> FaultRule:
    """Validate a rule as posted to ``/_ops/faults``."""
    if not isinstance(spec, dict):
        raise FaultRuleError("a fault rule must be a JSON object")
    unknown = set(spec) - {"service", "operation", "kind", "on_calls", "on_call", "rate", "times", "latency_ms"}
    if unknown:
        raise FaultRuleError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
    service = spec.get("service")
    if not isinstance(service, str) or not service.strip():
        raise FaultRuleError("field `service` is required, e.g. \"ecs\" or \"cloudwatch\"")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise FaultRuleError(f"field `kind` must be one of {', '.join(KINDS)}")
    on_calls = spec.get("on_calls", [])
    if "on_call" in spec:
        on_calls = [spec["on_call"]]
    if not isinstance(on_calls, list) or not all(isinstance(k, int) and k >= 1 for k in on_calls):
        raise FaultRuleError("field `on_calls` must be a list of call numbers counted from 1")
    rate = spec.get("rate", 0.0 if on_calls else 1.0)
    if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise FaultRuleError("field `rate` must be a number from 0 to 1")
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or times < 0):
        raise FaultRuleError("field `times` must be a whole number of at least 0")
    latency_ms = spec.get("latency_ms", 0)
    if not isinstance(latency_ms, int) or latency_ms < 0:
        raise FaultRuleError("field `latency_ms` must be a whole number of milliseconds")
    if kind == "latency" and latency_ms == 0:
        raise FaultRuleError("a `latency` fault needs `latency_ms` above 0")
    operation = spec.get("operation")
    if operation is not None and not isinstance(operation, str):
        raise FaultRuleError("field `operation` must be an operation name such as \"DescribeServices\"")
    return FaultRule(
        id=rule_id,
        service=canonical_service(service),
        operation=operation,
        kind=kind,
        on_calls=sorted(on_calls),
        rate=float(rate),
        times=times,
        latency_ms=latency_ms,
    )


class FaultInjector:
    """Thread-safe set of fault rules plus a count of every AWS call the emulator has answered."""

    def __init__(self, seed: int = 7) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self._random = random.Random(seed)
        self._calls: dict[str, dict[str, int]] = {}

    def add(self, spec: dict) -> FaultRule:
        with self._lock:
            rule = parse_rule(self._next_id, spec)
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def calls(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {service: dict(ops) for service, ops in self._calls.items()}

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def on_call(self, call: AwsCall) -> FaultRule | None:
        """Count the call and return the first rule that fires for it, if any."""
        with self._lock:
            per_service = self._calls.setdefault(call.service, {})
            per_service[call.operation] = per_service.get(call.operation, 0) + 1
            chosen = None
            for rule in self._rules:
                if not rule.applies_to(call):
                    continue
                rule.matched += 1
                if chosen is None and rule.should_fire(self._random.random()):
                    rule.fired += 1
                    chosen = rule
            return chosen
