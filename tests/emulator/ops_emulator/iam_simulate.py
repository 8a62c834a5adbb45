"""IAM ``SimulatePrincipalPolicy``: moto 5.2.5 does not implement it, and a function's ``doctor`` asks it.

Follows AWS's documents:

- IAM API Reference: SimulatePrincipalPolicy, and the shapes EvaluationResult,
  ResourceSpecificResult, Statement, ContextEntry (the current text, as in botocore's IAM model:
  one EvaluationResult per action, whose top-level decision is the most restrictive one across the
  requested resources; the decision for each resource is in ResourceSpecificResults).
- IAM User Guide: "Policy evaluation logic" (an explicit Deny wins, then an Allow, else the request
  is implicitly denied; a permissions boundary must allow too), "IAM JSON policy elements:
  Condition operators" (a key missing from the request context fails the condition, but a negated
  operator then holds; ``...IfExists`` and ``Null`` test its presence), "Single-valued vs.
  multivalued context keys"
  (``ForAllValues`` / ``ForAnyValue``), and the Action, NotAction, Resource, NotResource and
  Condition element pages.

What the emulator cannot evaluate (the ``Date*`` and ``IpAddress`` operators, policy variables,
unknown operators) never counts for a statement: such a statement is treated as not matching, and
when its outcome could have changed a decision, ``MissingContextValues`` names the key with the
prefix ``emulator-cannot-evaluate:`` so the caller can report the answer as undetermined.

SourcePolicyId and SourcePolicyType are what IAM answers in practice (not the enum in the API
reference): a managed policy by its name, an inline policy as ``role_<role>_<policy>`` (or
``user_`` / ``group_``), an input policy as ``PolicyInputList.<n>``; the type is ``IAM Policy``.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs

from moto.iam.models import iam_backends

CANNOT_EVALUATE = "emulator-cannot-evaluate:"
POLICY_TYPE = "IAM Policy"
XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
VARIABLES_VERSION = "2012-10-17"  # policy variables exist only in this policy language version
VARIABLE = re.compile(r"\$\{([^}]*)\}")
PRINCIPAL_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):iam::(?P<account>\d{12}):(?P<kind>role|user|group)/(?:.*/)?(?P<name>[^/]+)$"
)
UNSUPPORTED_PARAMETERS = ("ResourcePolicy", "PolicyExclusionList")
ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"


class SimulationError(Exception):
    """A request refused as IAM refuses one: the AWS error code, HTTP status and message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


# --- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Simulation:
    """One SimulatePrincipalPolicy request, decoded from its AWS Query form."""

    source_arn: str
    actions: list[str]
    resources: list[str]
    resources_given: bool
    context: dict[str, list[str]]  # condition key, lower case (keys are case-insensitive) -> values
    input_policies: list[str]
    boundary_policies: list[str]
    max_items: int
    marker: int


def parse_request(body: bytes, query: str) -> Simulation:
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()})
    source_arn = params.get("PolicySourceArn", "")
    actions = _members(params, "ActionNames")
    if not source_arn or not actions:
        raise SimulationError("InvalidInput", 400, "PolicySourceArn and ActionNames are required")
    unsupported = [name for name in UNSUPPORTED_PARAMETERS if any(k.startswith(name) for k in params)]
    if unsupported:
        raise SimulationError("InvalidInput", 400, f"the emulator does not simulate {', '.join(unsupported)}")
    resources = _members(params, "ResourceArns") or ["*"]
    return Simulation(
        source_arn=source_arn,
        actions=actions,
        resources=resources,
        resources_given=resources != ["*"],
        context=_context_entries(params),
        input_policies=_members(params, "PolicyInputList"),
        boundary_policies=_members(params, "PermissionsBoundaryPolicyInputList"),
        max_items=_int_param(params, "MaxItems", 100),
        marker=_int_param(params, "Marker", 0),
    )


def _members(params: dict[str, str], name: str) -> list[str]:
    """The values of an AWS Query list ``<name>.member.<n>``, in order."""
    found = re.compile(rf"^{re.escape(name)}\.member\.(\d+)$")
    indexed = sorted((int(m.group(1)), v) for k, v in params.items() if (m := found.match(k)))
    return [value for _, value in indexed]


def _context_entries(params: dict[str, str]) -> dict[str, list[str]]:
    entry = re.compile(r"^ContextEntries\.member\.(\d+)\.ContextKeyName$")
    context: dict[str, list[str]] = {}
    for key, name in params.items():
        match = entry.match(key)
        if match:
            values = _members(params, f"ContextEntries.member.{match.group(1)}.ContextKeyValues")
            context.setdefault(name.lower(), []).extend(values)
    return context


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name) or default)
    except ValueError:
        raise SimulationError("InvalidInput", 400, f"{name} must be an integer") from None


# --- the policies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement of a policy, with where it sits in the policy text (1-based line, column)."""

    policy_id: str
    index: int
    body: dict
    variables: bool  # whether ${...} is a policy variable (policy language version 2012-10-17)
    start: tuple[int, int] | None
    end: tuple[int, int] | None

    @property
    def ref(self) -> tuple[str, int]:
        return self.policy_id, self.index

    @property
    def effect(self) -> str:
        return self.body.get("Effect", "")


def parse_policy(policy_id: str, text: str) -> list[Statement]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise SimulationError("InvalidInput", 400, f"policy {policy_id} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise SimulationError("InvalidInput", 400, f"policy {policy_id} is not a JSON object")
    bodies = document.get("Statement", [])
    bodies = bodies if isinstance(bodies, list) else [bodies]
    spans = _statement_spans(text)
    variables = document.get("Version") == VARIABLES_VERSION
    statements = []
    for index, body in enumerate(bodies):
        start, end = spans[index] if len(spans) == len(bodies) else (None, None)
        statements.append(Statement(policy_id, index, body if isinstance(body, dict) else {}, variables, start, end))
    return statements


def _statement_spans(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where each statement starts (just after the ``[``, ``,`` or ``:`` before it) and ends (just
    after its ``}``), as IAM's simulator reports StartPosition and EndPosition; [] if unsure."""
    decoder = json.JSONDecoder()
    try:
        cursor = _skip_space(text, 0)
        if text[cursor] != "{":
            return []
        cursor += 1
        while True:
            cursor = _skip_space(text, cursor)
            if text[cursor] == "}":
                return []
            key, cursor = decoder.raw_decode(text, cursor)
            cursor = _skip_space(text, cursor)
            cursor += 1  # the ':'
            if key == "Statement":
                return _spans_of_value(text, cursor, decoder)
            _, cursor = decoder.raw_decode(text, _skip_space(text, cursor))
            cursor = _skip_space(text, cursor) + 1  # ',' or '}'
    except (ValueError, IndexError):
        return []


def _spans_of_value(text: str, cursor: int, decoder: json.JSONDecoder) -> list:
    first = _skip_space(text, cursor)
    if text[first] == "{":
        _, end = decoder.raw_decode(text, first)
        return [(_line_column(text, cursor), _line_column(text, end))]
    spans, start = [], first + 1
    while True:
        item = _skip_space(text, start)
        if text[item] == "]":
            return spans
        _, end = decoder.raw_decode(text, item)
        spans.append((_line_column(text, start), _line_column(text, end)))
        start = _skip_space(text, end) + 1  # past ',' (or ']', then the loop ends)
        if text[start - 1] == "]":
            return spans


def _skip_space(text: str, cursor: int) -> int:
    while text[cursor] in " \t\r\n":
        cursor += 1
    return cursor


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@dataclass(frozen=True)
class PolicySets:
    """The principal's identity policies, and its permissions boundary if it has one."""

    identity: list[Statement]
    boundary: list[Statement] | None


def principal_policies(simulation: Simulation) -> PolicySets:
    """The policies IAM holds for PolicySourceArn (a role, user or group), plus the input ones."""
    match = PRINCIPAL_ARN.match(simulation.source_arn)
    if not match:
        raise SimulationError("InvalidInput", 400, f"Invalid ARN {simulation.source_arn}: not an IAM role, user or group")
    kind, name = match["kind"], match["name"]
    try:
        backend = iam_backends[match["account"]][match["partition"]]
    except KeyError:
        raise _no_such_entity(kind, name) from None
    entity = _find_entity(backend, kind, simulation.source_arn, name)
    named = _inline(kind, entity) + _managed(entity)
    if kind == "user":
        for group in backend.get_groups_for_user(entity.name):
            named += _inline("group", group) + _managed(group)
    named += _numbered("PolicyInputList", simulation.input_policies)
    return PolicySets(_parse_all(named), _boundary(backend, entity, simulation.boundary_policies))


def _numbered(parameter: str, texts: list[str]) -> list[tuple[str, str]]:
    """Input policies named as IAM names them: ``PolicyInputList.1``, ..."""
    return [(f"{parameter}.{i}", text) for i, text in enumerate(texts, start=1)]


def _parse_all(named: list[tuple[str, str]]) -> list[Statement]:
    return [s for policy_id, text in named for s in parse_policy(policy_id, text)]


def _find_entity(backend, kind: str, arn: str, name: str):
    for entity in getattr(backend, f"{kind}s").values():  # backend.roles, .users, .groups
        if entity.arn == arn:
            return entity
    raise _no_such_entity(kind, name)


def _no_such_entity(kind: str, name: str) -> SimulationError:
    return SimulationError("NoSuchEntity", 404, f"The {kind} with name {name} cannot be found.")


def _inline(kind: str, entity) -> list[tuple[str, str]]:
    return [(f"{kind}_{entity.name}_{name}", text) for name, text in entity.policies.items()]


def _managed(entity) -> list[tuple[str, str]]:
    return _managed_named(entity.managed_policies.values())


def _managed_named(policies) -> list[tuple[str, str]]:
    """Managed policies by name, each with its default version's document."""
    return [(p.name, next(v.document for v in p.versions if v.is_default)) for p in policies]


def _boundary(backend, entity, inputs: list[str]) -> list[Statement] | None:
    """PermissionsBoundaryPolicyInputList replaces the entity's own boundary, as the API says."""
    if inputs:
        return _parse_all(_numbered("PermissionsBoundaryPolicyInputList", inputs))
    arn = getattr(entity, "permissions_boundary_arn", None)
    if not arn:
        return None
    policy = backend.managed_policies.get(arn)  # customer and AWS managed policies alike
    if policy is None:
        raise SimulationError("NoSuchEntity", 404, f"Policy {arn} was not found.")
    return _parse_all(_managed_named([policy]))


# --- matching ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A three-valued answer: ``result`` is None when the emulator cannot tell.

    ``missing``: condition keys tested but absent from the context entries. ``unevaluable``: the
    keys that made the answer unknown.
    """

    result: bool | None
    missing: tuple[str, ...] = ()
    unevaluable: tuple[str, ...] = ()


def all_of(checks: list[Check]) -> Check:
    results = [c.result for c in checks]
    result = False if False in results else (None if None in results else True)
    return _joined(result, checks)


def any_of(checks: list[Check]) -> Check:
    results = [c.result for c in checks]
    result = True if True in results else (None if None in results else False)
    return _joined(result, checks)


def _joined(result: bool | None, checks: list[Check]) -> Check:
    missing = tuple(k for c in checks for k in c.missing)
    unevaluable = tuple(k for c in checks if c.result is None for k in c.unevaluable) if result is None else ()
    return Check(result, missing, unevaluable)


def negate(check: Check) -> Check:
    return Check(None if check.result is None else not check.result, check.missing, check.unevaluable)


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern:
    translated = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(translated, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(value: str, pattern: str, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters, ``?`` any one character."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def arn_like(value: str, pattern: str) -> bool:
    """ARN matching: each of the six colon-separated parts separately, case-sensitive, with
    wildcards; a pattern with fewer parts (``*``, ``arn:aws:*``) as a whole."""
    pattern_parts = pattern.split(":", 5)
    if len(pattern_parts) < 6:
        return like(value, pattern)
    value_parts = value.split(":", 5)
    return len(value_parts) == 6 and all(like(v, p) for v, p in zip(value_parts, pattern_parts))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _variables(values: list[str]) -> tuple[str, ...]:
    """The context keys named by policy variables (``${aws:username}``, ``${key, 'default'}``)."""
    return tuple(m.group(1).split(",")[0].strip() for v in values for m in VARIABLE.finditer(v))


def _element_check(statement: Statement, element: str, negated_element: str, test: Callable[[str], bool]) -> Check:
    """Action/NotAction or Resource/NotResource: any listed pattern matches (or, for Not…, none)."""
    if element in statement.body:
        patterns, negated = statement.body[element], False
    elif negated_element in statement.body:
        patterns, negated = statement.body[negated_element], True
    else:
        return Check(False)
    checks = []
    for pattern in map(_as_text, _as_list(patterns)):
        variables = _variables([pattern]) if statement.variables else ()
        checks.append(Check(None, unevaluable=variables) if variables else Check(test(pattern)))
    matched = any_of(checks)
    return negate(matched) if negated else matched


# --- conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """A condition operator: ``test(context value, policy value)``; None if the emulator cannot."""

    test: Callable[[str, str], bool] | None
    negated: bool = False


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def test(actual: str, expected: str) -> bool:
        try:
            return compare(float(actual), float(expected))
        except ValueError:
            return False

    return test


def _equals(actual: str, expected: str) -> bool:
    return actual == expected


def _equals_ignore_case(actual: str, expected: str) -> bool:
    return actual.casefold() == expected.casefold()


OPERATORS: dict[str, Operator] = {
    "StringEquals": Operator(_equals),
    "StringNotEquals": Operator(_equals, negated=True),
    "StringEqualsIgnoreCase": Operator(_equals_ignore_case),
    "StringNotEqualsIgnoreCase": Operator(_equals_ignore_case, negated=True),
    "StringLike": Operator(like),
    "StringNotLike": Operator(like, negated=True),
    "NumericEquals": Operator(_numeric(operator.eq)),
    "NumericNotEquals": Operator(_numeric(operator.eq), negated=True),
    "NumericLessThan": Operator(_numeric(operator.lt)),
    "NumericLessThanEquals": Operator(_numeric(operator.le)),
    "NumericGreaterThan": Operator(_numeric(operator.gt)),
    "NumericGreaterThanEquals": Operator(_numeric(operator.ge)),
    "Bool": Operator(_equals_ignore_case),
    "BinaryEquals": Operator(_equals),
    "ArnEquals": Operator(arn_like),
    "ArnLike": Operator(arn_like),
    "ArnNotEquals": Operator(arn_like, negated=True),
    "ArnNotLike": Operator(arn_like, negated=True),
    # Known to IAM, not evaluated here: the emulator reports them as undetermined.
    "DateEquals": Operator(None),
    "DateNotEquals": Operator(None, negated=True),
    "DateLessThan": Operator(None),
    "DateLessThanEquals": Operator(None),
    "DateGreaterThan": Operator(None),
    "DateGreaterThanEquals": Operator(None),
    "IpAddress": Operator(None),
    "NotIpAddress": Operator(None, negated=True),
}
SET_OPERATORS = ("ForAllValues", "ForAnyValue")


def evaluate_conditions(block, context: dict[str, list[str]], variables: bool) -> Check:
    """A Condition element: every operator and every key under it must match (AND); the values
    listed for one key are alternatives (OR), as "Creating a condition with multiple keys or
    values" in the IAM User Guide has it."""
    if not block:
        return Check(True)
    if not isinstance(block, dict) or not all(isinstance(keys, dict) for keys in block.values()):
        return Check(None, unevaluable=("Condition",))
    return all_of([
        _condition(name, key, [_as_text(v) for v in _as_list(expected)], context, variables)
        for name, keys in block.items()
        for key, expected in keys.items()
    ])


def _condition(name: str, key: str, expected: list[str], context: dict[str, list[str]], variables: bool) -> Check:
    set_operator, _, base = name.rpartition(":")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base[: -len("IfExists")] if if_exists else base
    actual = context.get(key.lower())
    if base == "Null":
        present = bool(actual)
        return Check(any(v.lower() == ("false" if present else "true") for v in expected))
    op = OPERATORS.get(base)
    if op is None or set_operator not in ("", *SET_OPERATORS):
        return Check(None, unevaluable=(key,))
    if not actual:
        return _absent_key(op, set_operator, if_exists, key)
    named = _variables(expected) if variables else ()
    if op.test is None or named:
        return Check(None, unevaluable=named or (key,))

    def hit(value: str) -> bool:
        matched = any(op.test(value, e) for e in expected)
        return not matched if op.negated else matched

    if set_operator == "ForAllValues" or (not set_operator and op.negated):
        return Check(all(hit(v) for v in actual))
    return Check(any(hit(v) for v in actual))


def _absent_key(op: Operator, set_operator: str, if_exists: bool, key: str) -> Check:
    """A key missing from the context: ...IfExists passes; ForAllValues passes (no value fails it);
    ForAnyValue fails; otherwise a negated operator passes and any other fails."""
    if if_exists:
        return Check(True)
    if set_operator:
        return Check(set_operator == "ForAllValues", missing=(key,))
    return Check(op.negated, missing=(key,))


# --- evaluation ----------------------------------------------------------------------------------


def evaluate_statement(statement: Statement, action: str, resource: str, context: dict[str, list[str]]) -> Check:
    """Whether the statement applies to the request. Conditions are read (and missing keys
    reported) only once its action matches and its resource may."""
    if not _element_check(statement, "Action", "NotAction", lambda p: like(action, p, ignore_case=True)).result:
        return Check(False)
    resource_check = _element_check(statement, "Resource", "NotResource", lambda p: arn_like(resource, p))
    if resource_check.result is False:
        return Check(False)
    return all_of([resource_check, evaluate_conditions(statement.body.get("Condition"), context, statement.variables)])


@dataclass
class Verdict:
    """One set of policies against one action on one resource."""

    decision: str
    matched: list[Statement] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown_allows: list[str] = field(default_factory=list)
    unknown_denies: list[str] = field(default_factory=list)


def evaluate_policies(statements: list[Statement], action: str, resource: str, context: dict[str, list[str]]) -> Verdict:
    """Policy evaluation logic: an explicit Deny wins, then any Allow, else an implicit deny."""
    applying: dict[str, list[Statement]] = {"Allow": [], "Deny": []}
    unknown: dict[str, list[str]] = {"Allow": [], "Deny": []}
    missing: list[str] = []
    for statement in statements:
        check = evaluate_statement(statement, action, resource, context)
        missing += check.missing
        if statement.effect not in applying:
            continue
        if check.result:
            applying[statement.effect].append(statement)
        elif check.result is None:
            unknown[statement.effect] += check.unevaluable
    if applying["Deny"]:
        decision, matched = EXPLICIT_DENY, applying["Deny"]
    elif applying["Allow"]:
        decision, matched = ALLOWED, applying["Allow"]
    else:
        decision, matched = IMPLICIT_DENY, []
    return Verdict(decision, matched, missing, unknown["Allow"], unknown["Deny"])


@dataclass
class ResourceResult:
    resource: str
    decision: str
    matched: list[Statement]
    missing: list[str]
    allowed_by_boundary: bool | None


def evaluate_resource(policies: PolicySets, action: str, resource: str, context: dict[str, list[str]]) -> ResourceResult:
    """The identity policies must allow, and the permissions boundary (if any) too; an explicit
    Deny in either wins. Undetermined statements are reported only where they could change the
    decision: a Deny unless the decision is already an explicit deny, an Allow of a set that did
    not allow when the decision is an implicit deny."""
    verdicts = [evaluate_policies(policies.identity, action, resource, context)]
    if policies.boundary is not None:
        verdicts.append(evaluate_policies(policies.boundary, action, resource, context))
    decisions = [v.decision for v in verdicts]
    decision = EXPLICIT_DENY if EXPLICIT_DENY in decisions else ALLOWED if set(decisions) == {ALLOWED} else IMPLICIT_DENY
    undetermined: list[str] = []
    if decision != EXPLICIT_DENY:
        undetermined += [k for v in verdicts for k in v.unknown_denies]
    if decision == IMPLICIT_DENY:
        undetermined += [k for v in verdicts if v.decision == IMPLICIT_DENY for k in v.unknown_allows]
    matched = [s for v in verdicts if v.decision == decision for s in v.matched]
    missing = [k for v in verdicts for k in v.missing] + [CANNOT_EVALUATE + k for k in undetermined]
    boundary = None if policies.boundary is None else verdicts[1].decision == ALLOWED
    return ResourceResult(resource, decision, matched, _unique(missing), boundary)


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))


def _most_restrictive(decisions: list[str]) -> str:
    for decision in (EXPLICIT_DENY, IMPLICIT_DENY):
        if decision in decisions:
            return decision
    return ALLOWED


# --- the answer ----------------------------------------------------------------------------------


def answer(body: bytes, query: str) -> bytes:
    """Serve one SimulatePrincipalPolicy call; raises SimulationError for what IAM refuses."""
    simulation = parse_request(body, query)
    policies = principal_policies(simulation)
    end = simulation.marker + max(simulation.max_items, 1)
    actions = simulation.actions[simulation.marker:end]
    root = ET.Element("SimulatePrincipalPolicyResponse", xmlns=XMLNS)
    result = ET.SubElement(root, "SimulatePrincipalPolicyResult")
    results = ET.SubElement(result, "EvaluationResults")
    for action in actions:
        per_resource = [evaluate_resource(policies, action, r, simulation.context) for r in simulation.resources]
        _evaluation_result(ET.SubElement(results, "member"), action, simulation, per_resource)
    truncated = end < len(simulation.actions)
    _text(result, "IsTruncated", "true" if truncated else "false")
    if truncated:
        _text(result, "Marker", str(end))
    _text(ET.SubElement(root, "ResponseMetadata"), "RequestId", str(uuid.uuid4()))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _evaluation_result(member: ET.Element, action: str, simulation: Simulation, per_resource: list[ResourceResult]) -> None:
    decision = _most_restrictive([r.decision for r in per_resource])
    _text(member, "EvalActionName", action)
    if not simulation.resources_given:
        # Otherwise AWS names the action's ARN template here, which the emulator does not know.
        _text(member, "EvalResourceName", "*")
    _text(member, "EvalDecision", decision)
    deciding = [s for r in per_resource if r.decision == decision for s in r.matched]
    _statements(member, deciding)
    _strings(member, "MissingContextValues", _unique([k for r in per_resource for k in r.missing]))
    if simulation.resources_given:
        ET.SubElement(member, "EvalDecisionDetails")  # same-account simulation: present and empty
    _boundary_detail(member, [r.allowed_by_boundary for r in per_resource])
    specific = ET.SubElement(member, "ResourceSpecificResults")
    for r in per_resource:
        item = ET.SubElement(specific, "member")
        _text(item, "EvalResourceName", r.resource)
        _text(item, "EvalResourceDecision", r.decision)
        _statements(item, r.matched)
        _strings(item, "MissingContextValues", r.missing)
        _boundary_detail(item, [r.allowed_by_boundary])


def _statements(parent: ET.Element, statements: list[Statement]) -> None:
    container = ET.SubElement(parent, "MatchedStatements")
    for statement in {s.ref: s for s in statements}.values():
        item = ET.SubElement(container, "member")
        _text(item, "SourcePolicyId", statement.policy_id)
        _text(item, "SourcePolicyType", POLICY_TYPE)
        for tag, position in (("StartPosition", statement.start), ("EndPosition", statement.end)):
            if position is not None:
                where = ET.SubElement(item, tag)
                _text(where, "Line", str(position[0]))
                _text(where, "Column", str(position[1]))


def _boundary_detail(parent: ET.Element, allowed: list[bool | None]) -> None:
    if any(a is not None for a in allowed):
        detail = ET.SubElement(parent, "PermissionsBoundaryDecisionDetail")
        _text(detail, "AllowedByPermissionsBoundary", "true" if all(allowed) else "false")


def _strings(parent: ET.Element, tag: str, values: list[str]) -> None:
    container = ET.SubElement(parent, tag)
    for value in values:
        _text(container, "member", value)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element
