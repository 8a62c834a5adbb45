"""Least privilege, checked: every IAM statement in sam/template.yaml, read with cfn-lint's own
template decoder (which understands !Sub, !If and the other intrinsic tags).

Fails on an `Action` of `*` or `<service>:*`, and on `Resource: "*"` for any action that supports a
resource type in AWS's Service Authorization Reference (the data that test_template_iam_reference.py
reads; justified exceptions are listed there). Run by `make test` with the tools virtualenv's Python.
"""

from __future__ import annotations

import pathlib
import unittest

from cfnlint.decode import decode

from test_template_iam_reference import star_is_the_narrowest

TEMPLATE = pathlib.Path(__file__).with_name("template.yaml")


def statements(template) -> list[tuple[str, dict]]:
    """(resource, statement) for every statement of every function's inline policies and of every
    managed policy."""
    found = []
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            documents = resource["Properties"].get("Policies", [])
        elif resource.get("Type") in ("AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            documents = [resource["Properties"]["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in document.get("Statement", []):
                found.extend((name, s) for s in branches(statement))
    return found


def branches(statement) -> list[dict]:
    """A statement, or both branches of an `Fn::If` around one (`AWS::NoValue` dropped)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        _, yes, no = statement["Fn::If"]
        return [s for s in (yes, no) if not (isinstance(s, dict) and s.get("Ref") == "AWS::NoValue")]
    return [statement]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def simulation_outside_own_role(template, found: list[tuple[str, dict]]) -> list[str]:
    """Every grant of iam:SimulatePrincipalPolicy that is not a role policy's, on the very role it is
    attached to: `doctor` may ask IAM about its own role only."""
    problems = []
    resources = template["Resources"]
    for owner, statement in found:
        if "iam:SimulatePrincipalPolicy" not in as_list(statement["Action"]):
            continue
        sid = statement.get("Sid", "?")
        resource = resources[owner]
        if resource["Type"] != "AWS::IAM::RolePolicy":
            problems.append(f"{owner} {sid}: iam:SimulatePrincipalPolicy only in a role policy on the function's own role")
            continue
        role = resource["Properties"]["RoleName"].get("Ref")
        if statement["Resource"] != {"Fn::GetAtt": [role, "Arn"]}:
            problems.append(
                f"{owner} {sid}: iam:SimulatePrincipalPolicy on {statement['Resource']}, not the role {role} it is attached to"
            )
    return problems


def too_broad(found: list[tuple[str, dict]]) -> list[str]:
    """Every wildcard action, and every action on `Resource: "*"` that supports something narrower."""
    problems = []
    for function, statement in found:
        sid = statement.get("Sid", "?")
        for action in as_list(statement["Action"]):
            if action == "*" or action.endswith(":*"):
                problems.append(f"{function} {sid}: wildcard action {action}")
            elif "*" in as_list(statement["Resource"]) and not star_is_the_narrowest(action, sid):
                problems.append(f'{function} {sid}: {action} on Resource "*"; scope it or document why it cannot be')
    return problems


class Policies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template, matches = decode(str(TEMPLATE))
        assert not matches, matches
        cls.statements = statements(cls.template)

    def test_every_function_has_statements_and_each_has_a_sid(self):
        functions = {n for n, r in self.template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
        self.assertLessEqual(functions, {name for name, _ in self.statements})
        for function, statement in self.statements:
            self.assertIn("Sid", statement, f"{function}: a statement without a Sid: {statement}")

    def test_no_wildcard_action_and_resource_star_only_where_nothing_narrower_exists(self):
        self.assertEqual(too_broad(self.statements), [])

    def test_the_chat_channel_may_only_invoke_the_ops_functions(self):
        resources = self.template["Resources"]
        channel = resources["OpsSlackChannel"]["Properties"]
        self.assertEqual(channel["GuardrailPolicies"], [{"Ref": "ChatOpsInvokeOnly"}])
        self.assertFalse(channel["UserRoleRequired"])
        self.assertEqual(resources["ChatbotChannelRole"]["Properties"]["ManagedPolicyArns"], [{"Ref": "ChatOpsInvokeOnly"}])
        statements = resources["ChatOpsInvokeOnly"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual([s["Action"] for s in statements], ["lambda:InvokeFunction"])
        functions = sorted(n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function")
        granted = sorted(
            branch["Fn::GetAtt"][0]
            for target in statements[0]["Resource"]
            for branch in branches(target)
            if isinstance(branch, dict) and "Fn::GetAtt" in branch
        )
        self.assertEqual(granted, functions)

    def test_every_function_has_an_error_alarm_and_a_log_group(self):
        resources = self.template["Resources"]
        for name, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            alarms = [
                r for r in resources.values()
                if r["Type"] == "AWS::CloudWatch::Alarm"
                and {"Name": "FunctionName", "Value": {"Ref": name}} in r["Properties"].get("Dimensions", [])
            ]
            self.assertEqual(len(alarms), 1, f"{name} needs one Errors alarm")
            log_group = resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            self.assertEqual(resources[log_group]["Type"], "AWS::Logs::LogGroup")

    def test_each_function_knows_its_role_and_may_simulate_only_that_role(self):
        """`doctor` asks IAM about the function's own role (OPS_ROLE_ARN) and nothing else."""
        resources = self.template["Resources"]
        functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
        simulations = {
            name: resource for name, resource in resources.items()
            if resource["Type"] == "AWS::IAM::RolePolicy"
            and any("iam:SimulatePrincipalPolicy" in as_list(s["Action"]) for s in resource["Properties"]["PolicyDocument"]["Statement"])
        }
        for function in functions:
            role = f"{function}Role"
            variables = resources[function]["Properties"]["Environment"]["Variables"]
            self.assertEqual(variables["OPS_ROLE_ARN"], {"Fn::GetAtt": [role, "Arn"]}, function)
            mine = [r for r in simulations.values() if r["Properties"]["RoleName"] == {"Ref": role}]
            self.assertEqual(len(mine), 1, f"{function}: one doctor policy on its own role")
            for statement in mine[0]["Properties"]["PolicyDocument"]["Statement"]:
                self.assertEqual(statement["Resource"], {"Fn::GetAtt": [role, "Arn"]}, function)
            self.assertEqual(mine[0].get("Condition"), resources[function].get("Condition"), function)
        self.assertEqual(len(simulations), len(functions))
        self.assertEqual(simulation_outside_own_role(self.template, self.statements), [])

    def test_the_own_role_check_catches_a_simulate_grant_anywhere_else(self):
        template = {"Resources": {
            "F": {"Type": "AWS::Serverless::Function", "Properties": {}},
            "FDoctor": {"Type": "AWS::IAM::RolePolicy", "Properties": {"RoleName": {"Ref": "FRole"}}},
            "GDoctor": {"Type": "AWS::IAM::RolePolicy", "Properties": {"RoleName": {"Ref": "FRole"}}},
        }}
        simulate = "iam:SimulatePrincipalPolicy"
        found = [
            ("FDoctor", {"Sid": "Own", "Action": simulate, "Resource": {"Fn::GetAtt": ["FRole", "Arn"]}}),
            ("F", {"Sid": "Inline", "Action": [simulate], "Resource": "arn:aws:iam::*:role/*"}),
            ("GDoctor", {"Sid": "Wide", "Action": simulate, "Resource": "arn:aws:iam::*:role/*"}),
        ]
        self.assertEqual(simulation_outside_own_role(template, found), [
            "F Inline: iam:SimulatePrincipalPolicy only in a role policy on the function's own role",
            "GDoctor Wide: iam:SimulatePrincipalPolicy on arn:aws:iam::*:role/*, not the role FRole it is attached to",
        ])

    def test_the_check_catches_broad_grants(self):
        broad = [
            ("F", {"Sid": "A", "Action": "ecs:UpdateService", "Resource": "*"}),
            ("F", {"Sid": "B", "Action": ["ecs:*"], "Resource": "arn:aws:ecs:::service/x"}),
            ("F", {"Sid": "C", "Action": "*", "Resource": "arn:aws:ecs:::service/x"}),
            ("F", {"Sid": "D", "Action": "ecs:ListServices", "Resource": "*"}),
        ]
        self.assertEqual(
            too_broad(broad),
            [
                'F A: ecs:UpdateService on Resource "*"; scope it or document why it cannot be',
                "F B: wildcard action ecs:*",
                "F C: wildcard action *",
            ],
        )


if __name__ == "__main__":
    unittest.main()
