"""Self-test of ``POST /_ops/reset``: a fresh account without a new process.

Its own emulator (not the one ``test_ops_emulator`` shares), so a reset here cannot wipe another
test's resources.
"""

from __future__ import annotations

import json
import threading
import unittest
import urllib.request

import boto3
from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from ops_emulator.app import OpsEmulator

REGION = "us-east-1"


class Reset(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        app = OpsEmulator(DomainDispatcherApplication(create_backend_app), REGION)
        cls.server = make_server("127.0.0.1", 0, app, threaded=True)
        cls.url = f"http://127.0.0.1:{cls.server.server_port}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read())

    def test_a_reset_forgets_resources_faults_counts_and_publishes(self):
        client = lambda service: boto3.client(  # noqa: E731
            service, region_name=REGION, endpoint_url=self.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        ecs, sns = client("ecs"), client("sns")
        ecs.create_cluster(clusterName="prod")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.publish(TopicArn=topic, Message="hello")
        self.control("POST", "/_ops/faults", {"service": "ecs", "kind": "throttle", "rate": 0.0})

        self.assertEqual(self.control("POST", "/_ops/reset"), {"reset": True})

        self.assertEqual(ecs.list_clusters()["clusterArns"], [])
        self.assertEqual(sns.list_topics()["Topics"], [])
        self.assertEqual(self.control("GET", "/_ops/faults")["rules"], [])
        self.assertEqual(self.control("GET", "/_ops/sns/published")["published"], [])
        calls = self.control("GET", "/_ops/calls")["calls"]
        self.assertEqual(calls, {"ecs": {"ListClusters": 1}, "sns": {"ListTopics": 1}})


if __name__ == "__main__":
    unittest.main()
