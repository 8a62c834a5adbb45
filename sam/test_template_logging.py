"""Logging and the dashboard in sam/template.yaml, read with cfn-lint's template decoder.

The functions' metrics (the health monitor's, and the change counts the dashboard shows) are
CloudWatch embedded metric format lines without a "level" key. Under JSON logging Lambda counts
such a line as INFO and drops it when the application log level is WARN or ERROR
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html), so no
level that would do so may be chosen. Run by `make test` with the tools virtualenv's Python.
"""

from __future__ import annotations

import json
import pathlib
import re
import unittest

from cfnlint.decode import decode

TEMPLATE = pathlib.Path(__file__).with_name("template.yaml")
# Levels at which an INFO line is still sent.
KEEPS_INFO = {"TRACE", "DEBUG", "INFO"}


class LoggingAndDashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template, matches = decode(str(TEMPLATE))
        assert cls.template is not None, matches

    def functions(self):
        return {
            name: resource
            for name, resource in self.template["Resources"].items()
            if resource.get("Type") == "AWS::Serverless::Function"
        }

    def test_no_log_level_on_offer_drops_the_metric_lines(self):
        allowed = set(self.template["Parameters"]["LogLevel"]["AllowedValues"])
        self.assertLessEqual(allowed, KEEPS_INFO)
        self.assertIn(self.template["Parameters"]["LogLevel"]["Default"], KEEPS_INFO)

    def test_every_function_logs_json_at_the_stacks_level(self):
        defaults = self.template["Globals"]["Function"]["LoggingConfig"]
        for name, function in self.functions().items():
            config = {**defaults, **function["Properties"].get("LoggingConfig", {})}
            self.assertEqual(config["LogFormat"], "JSON", name)
            self.assertEqual(config["ApplicationLogLevel"], {"Ref": "LogLevel"}, name)

    def test_the_dashboard_body_is_json_once_its_two_variables_are_filled_in(self):
        dashboard = self.template["Resources"]["OpsDashboard"]
        self.assertEqual(dashboard["Type"], "AWS::CloudWatch::Dashboard")
        body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
        self.assertEqual(
            set(re.findall(r"\$\{([^}]*)\}", body)), {"AWS::StackName", "AWS::Region"}
        )
        filled = body.replace("${AWS::StackName}", "opsstack").replace("${AWS::Region}", "eu-west-1")
        widgets = json.loads(filled)["widgets"]
        self.assertGreater(len(widgets), 8)
        for widget in widgets:
            if widget["type"] == "metric":
                self.assertEqual(widget["properties"]["region"], "eu-west-1")
            # The grid is 24 columns wide.
            self.assertLessEqual(widget["x"] + widget["width"], 24, widget)
        named = {
            line[3]
            for widget in widgets
            for line in widget["properties"].get("metrics", [])
            if isinstance(line[0], str) and len(line) > 3 and line[2] == "FunctionName"
        }
        deployed = {
            function["Properties"]["FunctionName"]["Fn::Sub"].replace("${AWS::StackName}", "opsstack")
            for function in self.functions().values()
        }
        self.assertEqual(named, deployed)


if __name__ == "__main__":
    unittest.main()
