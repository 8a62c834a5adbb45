"""`make doctor`: ask every deployed ops function whether it can do its job, and print one table.

Each function answers the chat command `{"command": "doctor"}` (it changes nothing): its
configuration as parsed, every resource it is configured to touch, IAM's answer for its own role on
every action it will take on each of them, and one `doctor` alert on the alert topic. This invokes
the functions of a deployed stack (the five, and blue-green-swapper's hook function) (named `<stack>-<function>` by sam/template.yaml), prints
their findings as one table, worst first, and exits 1 unless every row is `ok`.

Run with the tools virtualenv's Python (it has boto3) and AWS credentials for the account:
`make doctor` (stack name from sam/samconfig.toml, or STACK=...).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

FUNCTIONS = [
    "deploy-trigger",
    "blue-green-swapper",
    "blue-green-swapper-hook",
    "cpu-alarm-scaler",
    "legacy-health-monitor",
    "bastion-eip-associator",
]
# The functions a stack may leave out (sam/template.yaml: only with BlueGreenRouteArns).
OPTIONAL = ("blue-green-swapper", "blue-green-swapper-hook")
SAMCONFIG = Path(__file__).with_name("samconfig.toml")
# The order rows are shown in: what needs a human first.
SEVERITY = {"DENIED": 0, "PROBLEM": 1, "ERROR": 1, "undetermined": 2, "absent": 3, "ok": 4}


def default_stack() -> str:
    with SAMCONFIG.open("rb") as config:
        return tomllib.load(config)["default"]["global"]["parameters"]["stack_name"]


def ask(lambda_client, function_name: str) -> list[tuple[str, str, str]]:
    """(verdict, area, row text) for every finding of one function's doctor."""
    try:
        answer = lambda_client.invoke(
            FunctionName=function_name,
            Payload=json.dumps({"command": "doctor", "requested_by": "make doctor"}).encode(),
        )
    except lambda_client.exceptions.ResourceNotFoundException:
        if function_name.endswith(tuple(f"-{name}" for name in OPTIONAL)):
            return [("absent", "function", f"{function_name} is not deployed (it is only with BlueGreenRouteArns)")]
        return [("ERROR", "function", f"{function_name} is not deployed here: check STACK and REGION")]
    except Exception as error:  # noqa: BLE001 - any failure to invoke is a row of the table
        return [("ERROR", "function", f"{function_name} could not be invoked: {error}")]
    body = json.loads(answer["Payload"].read() or b"null")
    findings = body.get("findings") if isinstance(body, dict) else None
    well_formed = isinstance(findings, list) and findings and all(
        isinstance(f, dict) and {"area", "subject", "verdict", "detail"} <= f.keys() for f in findings
    )
    if answer.get("FunctionError") or body.get("status") != "doctor" or not well_formed:
        return [("ERROR", "function", f"{function_name} answered {json.dumps(body)[:500]}")]
    return [
        (row_verdict(finding), finding["area"], f"{finding['subject']} - {finding['detail']}")
        for finding in findings
    ]


def row_verdict(finding: dict) -> str:
    """The verdict as the functions' own tables show it (`ok`, `undetermined`, `PROBLEM`, `DENIED`)."""
    return {"ok": "ok", "undetermined": "undetermined", "problem": "PROBLEM", "denied": "DENIED"}.get(
        finding["verdict"], finding["verdict"]
    )


def render(rows: list[tuple[str, str, str, str]]) -> str:
    """One aligned table of (function, verdict, area, text), worst first."""
    rows = sorted(rows, key=lambda row: (SEVERITY.get(row[1], 1), row[0], row[2]))
    width = max((len(row[0]) for row in rows), default=8)
    lines = [f"{'function':<{width}}  {'verdict':<12} {'area':<11} what"]
    lines += [f"{function:<{width}}  {verdict:<12} {area:<11} {text}" for function, verdict, area, text in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None, lambda_client=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=None, help="the stack name (default: sam/samconfig.toml's)")
    parser.add_argument("--region", default=None, help="the stack's region (default: the AWS CLI's)")
    args = parser.parse_args(argv)
    stack = args.stack or default_stack()
    if lambda_client is None:
        import boto3  # the tools virtualenv has it (SAM CLI depends on it)

        lambda_client = boto3.client("lambda", region_name=args.region)
    rows = []
    for function in FUNCTIONS:
        name = f"{stack}-{function}"
        rows += [(name, verdict, area, text) for verdict, area, text in ask(lambda_client, name)]
    print(render(rows))
    bad = [row for row in rows if row[1] not in ("ok", "absent")]
    print(f"\n{len(rows)} checks of stack {stack}: {len(rows) - len(bad)} ok or absent, {len(bad)} to look at")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
