"""Self-tests of the emulator's controls and bridges, through boto3 as any client would call them.

Run with ``.venv/emulator/bin/python -m unittest discover -s tests/emulator`` (``make test`` does).
One emulator serves this module on a free loopback port in a background thread; each test uses its
own resource names so tests do not see each other's state.
"""

from __future__ import annotations

import json
import threading
import unittest
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from ops_emulator.app import OpsEmulator
from ops_emulator.seed import DemoSeeder

REGION = "us-east-1"


def setUpModule() -> None:
    global SERVER, URL
    seeder = DemoSeeder()
    app = OpsEmulator(DomainDispatcherApplication(create_backend_app), REGION, seeder)
    SERVER = make_server("127.0.0.1", 0, app, threaded=True)
    URL = f"http://127.0.0.1:{SERVER.server_port}"
    seeder.endpoint = URL
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()


def tearDownModule() -> None:
    SERVER.shutdown()


def client(service: str, attempts: int = 3):
    return boto3.client(
        service, region_name=REGION, endpoint_url=URL, aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def control(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{URL}{path}", data=data, method=method)
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def control_error(method: str, path: str, body: dict) -> tuple[int, str]:
    try:
        control(method, path, body)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["error"]
    raise AssertionError("the control accepted a bad request")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_group(name: str, hook: bool = True) -> None:
    ec2, autoscaling = client("ec2"), client("autoscaling")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName=unique("lt"), LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=1, MaxSize=3, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"}, AvailabilityZones=[f"{REGION}a"],
    )
    if hook:
        autoscaling.put_lifecycle_hook(
            AutoScalingGroupName=name, LifecycleHookName="launch",
            LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", DefaultResult="ABANDON",
        )


def lifecycle_state(group: str, instance_id: str) -> str | None:
    groups = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    for instance in groups["AutoScalingGroups"][0]["Instances"]:
        if instance["InstanceId"] == instance_id:
            return instance["LifecycleState"]
    return None


class LifecycleActions(unittest.TestCase):
    def test_a_launch_is_held_at_the_hook_until_continue_puts_it_in_service(self):
        group = unique("bastion")
        make_group(group)
        launched = control("POST", "/_ops/autoscaling/launch", {"group": group})
        instance = launched["instance_id"]
        self.assertEqual(launched["event"]["detail-type"], "EC2 Instance-launch Lifecycle Action")
        self.assertEqual(launched["event"]["detail"]["EC2InstanceId"], instance)
        self.assertEqual(lifecycle_state(group, instance), "Pending:Wait")

        autoscaling = client("autoscaling")
        autoscaling.record_lifecycle_action_heartbeat(
            AutoScalingGroupName=group, LifecycleHookName="launch", LifecycleActionToken=launched["token"]
        )
        autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=group, LifecycleHookName="launch",
            LifecycleActionToken=launched["token"], LifecycleActionResult="CONTINUE",
        )

        self.assertEqual(lifecycle_state(group, instance), "InService")
        action = next(a for a in control("GET", "/_ops/autoscaling/lifecycle-actions")["actions"]
                      if a["token"] == launched["token"])
        self.assertEqual((action["result"], action["heartbeats"]), ("CONTINUE", 1))

    def test_abandon_terminates_the_instance(self):
        group = unique("bastion")
        make_group(group)
        launched = control("POST", "/_ops/autoscaling/launch", {"group": group})
        client("autoscaling").complete_lifecycle_action(
            AutoScalingGroupName=group, LifecycleHookName="launch",
            InstanceId=launched["instance_id"], LifecycleActionResult="ABANDON",
        )
        self.assertIsNone(lifecycle_state(group, launched["instance_id"]))
        state = client("ec2").describe_instances(InstanceIds=[launched["instance_id"]])
        self.assertEqual(state["Reservations"][0]["Instances"][0]["State"]["Name"], "terminated")

    def test_completing_twice_or_with_a_wrong_token_is_a_validation_error(self):
        group = unique("bastion")
        make_group(group)
        launched = control("POST", "/_ops/autoscaling/launch", {"group": group})
        autoscaling = client("autoscaling")
        complete = dict(AutoScalingGroupName=group, LifecycleHookName="launch", LifecycleActionResult="CONTINUE")
        autoscaling.complete_lifecycle_action(LifecycleActionToken=launched["token"], **complete)
        for token in (launched["token"], str(uuid.uuid4())):
            with self.assertRaises(autoscaling.exceptions.ClientError) as raised:
                autoscaling.complete_lifecycle_action(LifecycleActionToken=token, **complete)
            self.assertEqual(raised.exception.response["Error"]["Code"], "ValidationError")
            self.assertIn("No active Lifecycle Action found", raised.exception.response["Error"]["Message"])

    def test_launch_control_refuses_a_group_without_a_hook(self):
        group = unique("plain")
        make_group(group, hook=False)
        status, error = control_error("POST", "/_ops/autoscaling/launch", {"group": group})
        self.assertEqual((status, error), (400, f"group `{group}` has no launch lifecycle hook"))


class TargetHealth(unittest.TestCase):
    def setUp(self):
        ec2, self.elbv2 = client("ec2"), client("elbv2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        self.group = self.elbv2.create_target_group(
            Name=unique("tg"), Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        self.elbv2.register_targets(TargetGroupArn=self.group, Targets=[{"Id": "10.9.0.10"}, {"Id": "10.9.0.11"}])

    def states(self) -> dict:
        health = self.elbv2.describe_target_health(TargetGroupArn=self.group)["TargetHealthDescriptions"]
        return {h["Target"]["Id"]: (h["TargetHealth"]["State"], h["TargetHealth"].get("Reason")) for h in health}

    def test_targets_can_be_made_unhealthy_and_healthy_again(self):
        self.assertEqual(self.states()["10.9.0.10"][0], "healthy")
        control("POST", "/_ops/elbv2/target-health",
                {"target_group_arn": self.group, "targets": ["10.9.0.10"], "state": "unhealthy"})
        self.assertEqual(self.states(), {"10.9.0.10": ("unhealthy", "Target.FailedHealthChecks"),
                                         "10.9.0.11": ("healthy", None)})
        control("POST", "/_ops/elbv2/target-health", {"target_group_arn": self.group, "state": "healthy"})
        self.assertEqual({s for s, _ in self.states().values()}, {"healthy"})

    def test_an_unregistered_target_or_unknown_state_is_refused(self):
        status, error = control_error("POST", "/_ops/elbv2/target-health",
                                      {"target_group_arn": self.group, "targets": ["10.0.0.99"], "state": "unhealthy"})
        self.assertEqual(status, 400)
        self.assertIn("not registered", error)
        _, error = control_error("POST", "/_ops/elbv2/target-health", {"target_group_arn": self.group, "state": "sad"})
        self.assertIn("field `state` must be one of", error)


class Faults(unittest.TestCase):
    def tearDown(self):
        control("DELETE", "/_ops/faults")

    def test_query_protocol_throttling_is_retried_by_the_sdk(self):
        sns = client("sns")
        control("POST", "/_ops/faults", {"service": "sns", "operation": "ListTopics", "kind": "throttle", "on_calls": [1]})
        sns.list_topics()
        rule = control("GET", "/_ops/faults")["rules"][0]
        self.assertEqual((rule["matched"], rule["fired"]), (2, 1))

    def test_the_kth_call_fails_and_times_caps_a_rate(self):
        sqs = client("sqs", attempts=1)
        control("POST", "/_ops/faults", {"service": "sqs", "operation": "ListQueues", "kind": "error500", "on_call": 2})
        sqs.list_queues()
        with self.assertRaises(sqs.exceptions.ClientError) as raised:
            sqs.list_queues()
        self.assertEqual(raised.exception.response["Error"]["Code"], "InternalFailure")
        sqs.list_queues()
        control("DELETE", "/_ops/faults")
        control("POST", "/_ops/faults", {"service": "sqs", "kind": "throttle", "rate": 1.0, "times": 1})
        with self.assertRaises(sqs.exceptions.ClientError):
            sqs.list_queues()
        sqs.list_queues()

    def test_latency_delays_without_failing(self):
        control("POST", "/_ops/faults", {"service": "sqs", "kind": "latency", "latency_ms": 300, "on_calls": [1]})
        import time
        started = time.monotonic()
        client("sqs").list_queues()
        self.assertGreaterEqual(time.monotonic() - started, 0.3)


    def test_a_rule_for_every_service_counts_calls_of_any_service(self):
        sqs, sns = client("sqs", attempts=1), client("sns", attempts=1)
        control("POST", "/_ops/faults", {"service": "*", "kind": "error500", "on_calls": [2]})
        sqs.list_queues()
        with self.assertRaises(sns.exceptions.ClientError):
            sns.list_topics()
        sqs.list_queues()
        rule = control("GET", "/_ops/faults")["rules"][0]
        self.assertEqual((rule["matched"], rule["fired"]), (3, 1))


class ElbTags(unittest.TestCase):
    def test_a_listener_takes_more_than_ten_tags_as_in_aws(self):
        ec2, elbv2 = client("ec2"), client("elbv2")
        vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
            for i, z in enumerate("ab", start=1)
        ]
        alb = elbv2.create_load_balancer(Name=unique("alb"), Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        listener = elbv2.create_listener(
            LoadBalancerArn=alb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]["ListenerArn"]
        elbv2.add_tags(ResourceArns=[listener], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(30)])
        tags = elbv2.describe_tags(ResourceArns=[listener])["TagDescriptions"][0]["Tags"]
        self.assertEqual(len(tags), 30)
        with self.assertRaises(elbv2.exceptions.ClientError) as raised:
            elbv2.add_tags(ResourceArns=[listener], Tags=[{"Key": f"x{i}", "Value": "v"} for i in range(21)])
        self.assertEqual(raised.exception.response["Error"]["Code"], "TooManyTags")


class SnsOutbox(unittest.TestCase):
    def test_each_protocol_body_and_attribute_is_kept(self):
        sns = client("sns")
        topic = sns.create_topic(Name=unique("alerts"))["TopicArn"]
        sns.publish(
            TopicArn=topic, Subject="[INFO] hi", MessageStructure="json",
            Message=json.dumps({"default": "{\"chat\": 1}", "email": "plain text"}),
            MessageAttributes={"severity": {"DataType": "String", "StringValue": "info"}},
        )
        published = control("GET", f"/_ops/sns/published?topic_arn={topic}")["published"]
        self.assertEqual(len(published), 1)
        self.assertEqual(published[0]["bodies"], {"default": "{\"chat\": 1}", "email": "plain text"})
        self.assertEqual(published[0]["attributes"], {"severity": "info"})
        self.assertEqual(published[0]["subject"], "[INFO] hi")


class EcsControls(unittest.TestCase):
    def test_run_tasks_reports_partial_progress_and_unknown_services_are_named(self):
        ecs = client("ecs")
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        definition = ecs.register_task_definition(
            family="svc", containerDefinitions=[{"name": "app", "image": "web:1", "memory": 128}]
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=cluster, serviceName="svc", taskDefinition=definition, desiredCount=3)
        control("POST", "/_ops/ecs/run-tasks", {"cluster": cluster, "service": "svc", "count": 2})
        service = ecs.describe_services(cluster=cluster, services=["svc"])["services"][0]
        self.assertEqual((service["runningCount"], service["deployments"][0]["rolloutState"]), (2, "IN_PROGRESS"))
        self.assertEqual(len(ecs.list_tasks(cluster=cluster, serviceName="svc")["taskArns"]), 2)
        _, error = control_error("POST", "/_ops/ecs/finish-deployment", {"cluster": cluster, "service": "nope", "state": "COMPLETED"})
        self.assertEqual(error, f"no ECS service `nope` in cluster `{cluster}`")


    def test_running_tasks_are_registered_in_the_service_target_group_and_leave_it_when_stopped(self):
        app = control("POST", "/_ops/blue-green/app", {"app": unique("bg"), "desired": 2})
        elbv2, ecs = client("elbv2"), client("ecs")
        blue, green = app["colours"]["blue"], app["colours"]["green"]
        health = elbv2.describe_target_health(TargetGroupArn=blue["target_group"])["TargetHealthDescriptions"]
        self.assertEqual([h["TargetHealth"]["State"] for h in health], ["healthy", "healthy"])
        self.assertEqual(elbv2.describe_target_health(TargetGroupArn=green["target_group"])["TargetHealthDescriptions"], [])
        ecs.update_service(cluster=app["cluster"], service=blue["service"], desiredCount=1)
        health = elbv2.describe_target_health(TargetGroupArn=blue["target_group"])["TargetHealthDescriptions"]
        self.assertEqual(len(health), 1)
        service = ecs.describe_services(cluster=app["cluster"], services=[blue["service"]])["services"][0]
        self.assertEqual((service["desiredCount"], service["runningCount"]), (1, 1))
        tasks = ecs.list_tasks(cluster=app["cluster"], serviceName=blue["service"])["taskArns"]
        for _ in range(3):
            described = ecs.describe_tasks(cluster=app["cluster"], tasks=tasks)["tasks"]
        # moto's ListTasks does not filter by service name: keep this service's tasks.
        mine = [t["lastStatus"] for t in described if t.get("group") == f"service:{blue['service']}"]
        self.assertEqual(sorted(mine), ["RUNNING", "STOPPED"], "described thrice, the kept task still runs")

    def test_a_blue_green_app_is_wired_as_the_swapper_expects(self):
        name = unique("bg")
        app = control("POST", "/_ops/blue-green/app", {"app": name, "test_listener": True, "use_rule": True, "alarms": [f"{name}-5xx"]})
        elbv2 = client("elbv2")
        rule = elbv2.describe_rules(RuleArns=[app["live_route"]])["Rules"][0]
        self.assertEqual(rule["Actions"][0]["TargetGroupArn"], app["colours"]["blue"]["target_group"])
        tags = {t["Key"]: t["Value"] for t in elbv2.describe_tags(ResourceArns=[app["live_route"]])["TagDescriptions"][0]["Tags"]}
        self.assertEqual(tags["ops:swap-green"], f"prod/{name}-green")
        self.assertEqual(tags["ops:swap-alarms"], f"{name}-5xx")
        test = {t["Key"]: t["Value"] for t in elbv2.describe_tags(ResourceArns=[app["test_route"]])["TagDescriptions"][0]["Tags"]}
        self.assertEqual(test, {"ops:swap-app": name, "ops:swap-role": "test"})
        _, error = control_error("POST", "/_ops/blue-green/app", {"app": name, "colour": "red"})
        self.assertEqual(error, "unknown field(s): colour")


class EcrPush(unittest.TestCase):
    def test_each_push_has_its_own_digest_and_the_event_ecr_would_send(self):
        repository = unique("repo")
        client("ecr").create_repository(repositoryName=repository)
        first = control("POST", "/_ops/ecr/push", {"repository": repository, "tag": "release-1"})
        second = control("POST", "/_ops/ecr/push", {"repository": repository, "tag": "release-2"})
        self.assertNotEqual(first["digest"], second["digest"])
        self.assertEqual(first["event"]["detail"]["image-digest"], first["digest"])
        self.assertEqual(first["event"]["detail"]["action-type"], "PUSH")
        images = client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageTag": "release-2"}])
        self.assertEqual(images["imageDetails"][0]["imageDigest"], second["digest"])
        _, error = control_error("POST", "/_ops/ecr/push", {"repository": "nope", "tag": "x"})
        self.assertEqual(error, "no ECR repository `nope`")


class DemoSeed(unittest.TestCase):
    @staticmethod
    def seeded_group(name: str) -> dict:
        client = boto3.client(
            "autoscaling", region_name="eu-west-1", endpoint_url=URL,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        return client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def test_the_demo_account_is_read_back_from_aws(self):
        inventory = control("POST", "/_ops/seed/demo", {"region": "eu-west-1"})
        self.assertEqual([s["name"] for s in inventory["services"]], ["shop-blue", "shop-green", "web", "worker"])
        self.assertEqual({g["name"] for g in inventory["auto_scaling_groups"]}, {"workers", "bastion"})
        bastion = self.seeded_group("bastion")
        self.assertIn({"Key": "ops:eip-pool", "Value": "bastion"}, [{"Key": t["Key"], "Value": t["Value"]} for t in bastion["Tags"]])
        self.assertEqual([a["pool"] for a in inventory["eip_pool"]], ["bastion", "bastion"])
        self.assertEqual(
            {a["name"] for a in inventory["alarms"]},
            {"workers-cpu-high", "workers-cpu-low", "worker-cpu-high", "worker-cpu-low", "shop-5xx"},
        )
        shop = inventory["blue_green_apps"][0]
        self.assertEqual(shop["app"], "shop")
        self.assertEqual([l["forwards_to"] for l in inventory["listeners"]], [shop["colours"]["blue"]["target_group"]])


if __name__ == "__main__":
    unittest.main()
