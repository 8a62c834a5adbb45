"""`make doctor`'s table (sam/doctor.py), against a stand-in for Lambda's Invoke that answers as the
functions do (their `doctor` answer's `findings`), an absent function, and a failing one."""

from __future__ import annotations

import io
import json
import unittest
from contextlib import redirect_stdout

import doctor


class NotFound(Exception):
    pass


class FakeLambda:
    """Answers Invoke like Lambda: a payload stream, `FunctionError` for a function error."""

    class exceptions:  # noqa: N801 - boto3's attribute name
        ResourceNotFoundException = NotFound

    def __init__(self, answers: dict):
        self.answers = answers
        self.invoked = []

    def invoke(self, FunctionName: str, Payload: bytes):  # noqa: N803 - boto3's parameter names
        self.invoked.append((FunctionName, json.loads(Payload)))
        answer = self.answers.get(FunctionName)
        if answer is None:
            raise NotFound(FunctionName)
        error = answer.pop("FunctionError", None)
        reply = {"Payload": io.BytesIO(json.dumps(answer).encode())}
        if error:
            reply["FunctionError"] = error
        return reply


def findings(*rows):
    return {"status": "doctor", "findings": [
        {"area": area, "subject": subject, "verdict": verdict, "detail": detail} for area, subject, verdict, detail in rows
    ]}


class Doctor(unittest.TestCase):
    def run_doctor(self, answers):
        client = FakeLambda(answers)
        out = io.StringIO()
        with redirect_stdout(out):
            status = doctor.main(["--stack", "opsstack"], lambda_client=client)
        return status, out.getvalue(), client

    def test_every_function_is_asked_by_its_deployed_name_and_a_clean_stack_exits_zero(self):
        ok = findings(("alert-path", "alert topic", "ok", "the doctor alert (info) was published"))
        answers = {f"opsstack-{f}": json.loads(json.dumps(ok)) for f in doctor.FUNCTIONS}
        status, out, client = self.run_doctor(answers)
        self.assertEqual(status, 0, out)
        self.assertEqual([name for name, _ in client.invoked], [f"opsstack-{f}" for f in doctor.FUNCTIONS])
        self.assertTrue(all(payload["command"] == "doctor" for _, payload in client.invoked))
        self.assertIn("6 checks of stack opsstack: 6 ok or absent, 0 to look at", out)

    def test_a_denied_grant_leads_the_table_and_fails_the_run_and_an_absent_swapper_is_said(self):
        answers = {f"opsstack-{f}": findings(("alert-path", "alert topic", "ok", "published")) for f in doctor.FUNCTIONS}
        answers["opsstack-deploy-trigger"] = findings(
            ("permission", "ecs:UpdateService on arn:aws:ecs:us-east-1:1:service/prod/web", "denied",
             "no statement of the role allows it: implicitly denied (deploys to prod/web)"),
        )
        del answers["opsstack-blue-green-swapper"]
        del answers["opsstack-blue-green-swapper-hook"]
        answers["opsstack-cpu-alarm-scaler"] = {"FunctionError": "Unhandled", "errorMessage": "boom"}
        status, out, _ = self.run_doctor(answers)
        self.assertEqual(status, 1)
        lines = out.splitlines()
        self.assertRegex(lines[1], r"^opsstack-deploy-trigger\s+DENIED\s+permission\s+ecs:UpdateService on arn:aws:ecs:us-east-1:1:service/prod/web - no statement")
        self.assertRegex(lines[2], r"^opsstack-cpu-alarm-scaler\s+ERROR\s+function\s+opsstack-cpu-alarm-scaler answered")
        self.assertIn("opsstack-blue-green-swapper is not deployed (it is only with BlueGreenRouteArns)", out)
        self.assertIn("opsstack-blue-green-swapper-hook is not deployed (it is only with BlueGreenRouteArns)", out)

    def test_a_wrong_stack_or_region_is_an_error_not_a_clean_bill(self):
        status, out, _ = self.run_doctor({})
        self.assertEqual(status, 1)
        self.assertIn("opsstack-deploy-trigger is not deployed here: check STACK and REGION", out)
        self.assertIn("opsstack-blue-green-swapper is not deployed (it is only with BlueGreenRouteArns)", out)

    def test_an_answer_without_findings_or_with_a_malformed_one_is_an_error(self):
        answers = {f"opsstack-{f}": findings(("alert-path", "alert topic", "ok", "published")) for f in doctor.FUNCTIONS}
        answers["opsstack-deploy-trigger"] = {"status": "doctor", "findings": []}
        answers["opsstack-cpu-alarm-scaler"] = {"status": "doctor", "findings": [{"verdict": "ok"}]}
        status, out, _ = self.run_doctor(answers)
        self.assertEqual(status, 1)
        self.assertRegex(out, r"opsstack-deploy-trigger\s+ERROR\s+function\s+opsstack-deploy-trigger answered")
        self.assertRegex(out, r"opsstack-cpu-alarm-scaler\s+ERROR\s+function\s+opsstack-cpu-alarm-scaler answered")


if __name__ == "__main__":
    unittest.main()
