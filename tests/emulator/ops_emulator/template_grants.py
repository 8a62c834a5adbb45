"""The IAM grants sam/template.yaml gives each function, resolved for one deployment.

`doctor` asks IAM whether a function's role may do its duties. In the emulator that role has to be
made by hand; made from the template itself, the answer proves more than the function's code: it
proves that the template grants what the code calls, with the ARNs and conditions CloudFormation
would put there. This module reads the template (CloudFormation's YAML short forms included),
evaluates its conditions and the intrinsic functions its policies use (`Ref`, `Fn::Sub`,
`Fn::GetAtt`, `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::If` and the condition functions, as the
CloudFormation User Guide's "Intrinsic function reference" defines them) for given parameter values
and resource ARNs, and returns, per function, one policy document holding every statement its role
gets: the function's `Policies` and every `AWS::IAM::RolePolicy` / `AWS::IAM::Policy` on the role SAM
generates for it (`<Function>Role`).

Used as `python -m ops_emulator.template_grants TEMPLATE PARAMETERS_JSON` (prints the documents as
JSON) by the tests and the demo.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

NO_VALUE = object()
PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": NO_VALUE}
# Short forms whose argument is a scalar name rather than a list.
SCALAR_TAGS = {"Ref": "Ref", "Condition": "Condition"}


class Unsupported(Exception):
    """The template uses something this resolver does not evaluate."""


def _constructor(tag: str):
    name = SCALAR_TAGS.get(tag, tag if tag == "Ref" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


class TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (`!Ref`, `!Sub`, ...) as their long forms."""


for _tag in ("Ref", "Sub", "GetAtt", "Join", "Split", "Select", "If", "Equals", "Not", "And", "Or",
             "Condition", "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr",
             # The functions of a template's Rules.
             "Contains", "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll"):
    TemplateLoader.add_constructor(f"!{_tag}", _constructor(_tag))


class Deployment:
    """One deployment of the template: parameter values (defaults filled in), pseudo parameters,
    and the ARNs (or names, for `Ref`) of the resources its policies name."""

    def __init__(self, template: dict, parameters: dict, region: str, account: str, stack: str,
                 refs: dict, arns: dict):
        self.template = template
        self.values = dict(PSEUDO, **{"AWS::Region": region, "AWS::AccountId": account,
                                      "AWS::StackName": stack})
        for name, spec in template.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise Unsupported(f"parameter {name} has no value and no default")
            if spec.get("Type", "").startswith(("CommaDelimitedList", "List<")):
                value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
                value = [] if value == [""] else value
            self.values[name] = value
        self.refs = refs
        self.arns = arns
        self.conditions = {}
        for name, expression in template.get("Conditions", {}).items():
            self.conditions[name] = bool(self.resolve(expression))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key.startswith("Fn::") or key == "Condition":
                return self.function(key, argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self.refs:
            return self.refs[name]
        raise Unsupported(f"no value for Ref {name}: pass it in refs")

    def function(self, name: str, argument: Any) -> Any:
        if name == "Condition":
            return self.conditions[argument]
        if name == "Fn::If":
            condition, yes, no = argument
            return self.resolve(yes if self.conditions[condition] else no)
        if name == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return left == right
        if name == "Fn::Not":
            return not self.resolve(argument[0])
        if name == "Fn::And":
            return all(self.resolve(a) for a in argument)
        if name == "Fn::Or":
            return any(self.resolve(a) for a in argument)
        if name == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(str(i) for i in self.resolve(items))
        if name == "Fn::Split":
            delimiter, text = argument
            return self.resolve(text).split(delimiter)
        if name == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            key = f"{logical}.{attribute}"
            if key not in self.arns:
                raise Unsupported(f"no value for GetAtt {key}: pass it in arns")
            return self.arns[key]
        if name == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self.substitute(text, {k: self.resolve(v) for k, v in variables.items()})
        raise Unsupported(f"{name} is not evaluated here")

    def substitute(self, text: str, variables: dict) -> str:
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.index("}", start)
            name = text[start + 2:end]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name:
                out.append(str(self.function("Fn::GetAtt", name.split(".", 1))))
            else:
                out.append(str(self.ref(name)))
            i = end + 1
        return "".join(out)

    def grants(self) -> dict[str, dict]:
        """Per function (logical id) deployed under its conditions: one policy document with every
        statement its role gets."""
        resources = self.template["Resources"]
        documents = {}
        for name, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            if "Condition" in resource and not self.conditions[resource["Condition"]]:
                continue
            statements = []
            for policy in resource["Properties"].get("Policies", []):
                statements += self.resolve(policy)["Statement"]
            role = f"{name}Role"
            for other in resources.values():
                if other["Type"] not in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy"):
                    continue
                if "Condition" in other and not self.conditions[other["Condition"]]:
                    continue
                properties = other["Properties"]
                attached = [properties.get("RoleName")] + properties.get("Roles", [])
                if {"Ref": role} in attached:
                    statements += self.resolve(properties["PolicyDocument"])["Statement"]
            documents[name] = {"Version": "2012-10-17", "Statement": statements}
        return documents


def grants(template_path: str, request: dict) -> dict[str, dict]:
    """The grants of the template at `template_path` for the deployment `request` describes:
    `parameters`, `region`, `account`, `stack`, `refs` (Ref of resources), `arns` (`Logical.Attr`)."""
    with open(template_path, encoding="utf-8") as source:
        template = yaml.load(source, Loader=TemplateLoader)  # noqa: S506 - SafeLoader subclass
    deployment = Deployment(template, request.get("parameters", {}), request["region"],
                            request["account"], request["stack"], request.get("refs", {}),
                            request.get("arns", {}))
    return deployment.grants()


if __name__ == "__main__":
    print(json.dumps(grants(sys.argv[1], json.loads(sys.argv[2])), indent=1, sort_keys=True))
