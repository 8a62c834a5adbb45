"""The reference a user would otherwise write: a Python function that sets up boto3 clients for
what deploy-trigger does (ECS, ECR, SNS) and serves the Lambda Runtime API. The benchmark measures
its init (process start to the first request for an invocation) and its memory, beside the Rust
functions, in the same run.
"""

import json
import os
import urllib.request

import boto3

session = boto3.session.Session()
ecs = session.client("ecs")
ecr = session.client("ecr")
sns = session.client("sns")

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(answer.read() or b"{}")
    services = ecs.list_services(cluster=event.get("cluster", "prod"))["serviceArns"]
    body = json.dumps({"services": len(services)}).encode()
    urllib.request.urlopen(
        urllib.request.Request(
            f"http://{api}/2018-06-01/runtime/invocation/{request_id}/response", data=body, method="POST"
        )
    ).read()
