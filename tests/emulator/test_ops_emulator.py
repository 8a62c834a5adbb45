"""Self-tests of the emulator's controls and bridges, through boto3 as any client would call them.

Run with ``.venv/emulator/bin/python -m unittest discover -s tests/emulator`` (``make test`` does).
One emulator serves this module on a free loopback port in a background thread; each test uses its
own resource names so tests do not see each other's state.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import unittest
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from ops_emulator import template_grants
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

    def test_a_fargate_blue_green_app_runs_awsvpc_tasks_registered_by_ip_in_its_subnets(self):
        """`launch_type: FARGATE`: both colours are Fargate services of an awsvpc task definition, and
        blue's tasks are registered in its `ip` target group by their ENIs' private IPs, each inside
        one of the app's subnets.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html"""
        app = control("POST", "/_ops/blue-green/app", {"app": unique("bg"), "desired": 2, "launch_type": "FARGATE"})
        ecs, elbv2, ec2 = client("ecs"), client("elbv2"), client("ec2")
        blue = app["colours"]["blue"]
        services = ecs.describe_services(cluster=app["cluster"], services=[blue["service"], app["colours"]["green"]["service"]])
        for service in services["services"]:
            self.assertEqual(service["launchType"], "FARGATE")
            self.assertEqual(service["platformVersion"], "LATEST")
            subnets = service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
            self.assertEqual(len(subnets), 2)
        definition = ecs.describe_task_definition(taskDefinition=app["task_definition"])["taskDefinition"]
        self.assertEqual((definition["networkMode"], definition["requiresCompatibilities"]), ("awsvpc", ["FARGATE"]))
        cidrs = [ipaddress.ip_network(s["CidrBlock"]) for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]]
        health = elbv2.describe_target_health(TargetGroupArn=blue["target_group"])["TargetHealthDescriptions"]
        addresses = [ipaddress.ip_address(h["Target"]["Id"]) for h in health]
        self.assertEqual(len(addresses), 2)
        self.assertTrue(all(any(a in c for c in cidrs) for a in addresses), f"{addresses} not in {cidrs}")
        _, error = control_error("POST", "/_ops/blue-green/app", {"app": unique("bg"), "launch_type": "LAMBDA"})
        self.assertEqual(error, "field `launch_type` must be one of EC2, FARGATE")

    def test_a_service_on_another_deployment_controller_refuses_a_new_task_definition_and_changes_nothing(self):
        """UpdateService: on a CODE_DEPLOY service "only the desired count, deployment configuration,
        health check grace period, task placement constraints and strategies, enable ECS managed tags
        option, and propagate tags can be updated ... If the network configuration, platform version,
        task definition, or load balancer need to be updated, create a new CodeDeploy deployment"; on an
        EXTERNAL one "create a new task set". ECS answers InvalidParameterException "Unable to update
        task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to
        trigger a new deployment." (quoted in the developer guide, "Update Amazon ECS service parameters").
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html"""
        ecs = client("ecs", attempts=1)
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        first, second = (
            ecs.register_task_definition(family=unique("svc"), containerDefinitions=[{"name": "app", "image": f"web:{n}", "memory": 128}])[
                "taskDefinition"]["taskDefinitionArn"]
            for n in (1, 2)
        )
        for controller, expected in (
            ("CODE_DEPLOY", "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
                            "Use AWS CodeDeploy to trigger a new deployment."),
            ("EXTERNAL", "Unable to update task definition on services with an EXTERNAL deployment controller. "
                         "Use CreateTaskSet to start a new task set."),
        ):
            name = controller.lower()
            ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=first, desiredCount=2,
                               deploymentController={"type": controller})
            with self.assertRaises(ecs.exceptions.InvalidParameterException) as raised:
                ecs.update_service(cluster=cluster, service=name, taskDefinition=second)
            self.assertIn(expected, str(raised.exception))
            with self.assertRaises(ecs.exceptions.InvalidParameterException) as raised:
                ecs.update_service(cluster=cluster, service=name, forceNewDeployment=True)
            self.assertIn(f"Cannot force a new deployment on services with", str(raised.exception))
            service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            self.assertEqual((service["taskDefinition"], service["desiredCount"]), (first, 2), "nothing changed")
            ecs.update_service(cluster=cluster, service=name, desiredCount=3)
            ecs.update_service(cluster=cluster, service=name, taskDefinition=first)
            service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            self.assertEqual((service["taskDefinition"], service["desiredCount"]), (first, 3),
                             "the desired count may change; naming the current revision is no change")


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
        launch = {s["name"]: (s["launch_type"], len(s["subnets"])) for s in inventory["services"]}
        self.assertEqual(launch, {"shop-blue": ("FARGATE", 2), "shop-green": ("FARGATE", 2), "web": ("FARGATE", 2),
                                  "worker": ("EC2", 0)}, "Fargate by default, one EC2 service to show both")
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


ACCOUNT = "123456789012"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
OTHER_SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/api"
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def outcome(result: dict) -> tuple[str, list[str]]:
    """A ResourceSpecificResult's decision and missing context values."""
    return result["EvalResourceDecision"], result["MissingContextValues"]


PASSED_TO_ECS = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def context(keys: dict[str, list[str]]) -> list[dict]:
    """ContextEntries from {key: values}."""
    return [{"ContextKeyName": name, "ContextKeyValues": values, "ContextKeyType": "stringList"}
            for name, values in keys.items()]


class IamSimulatePrincipalPolicy(unittest.TestCase):
    """IAM API Reference, SimulatePrincipalPolicy (moto 5.2.5 has none): one EvaluationResult per
    action, its decision the most restrictive across the resources, each resource's decision in
    ResourceSpecificResults (EvaluationResult, ResourceSpecificResult)."""

    def setUp(self):
        self.iam = client("iam")

    def role(self, *statements: dict, name: str | None = None) -> str:
        name = name or unique("fn-role")
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        if statements:
            self.iam.put_role_policy(RoleName=name, PolicyName="ops", PolicyDocument=policy(*statements))
        return arn

    def simulate(self, role: str, actions: list[str], resources: list[str] | None = None, entries=None) -> list[dict]:
        request = {"PolicySourceArn": role, "ActionNames": actions}
        if resources:
            request["ResourceArns"] = resources
        if entries:
            request["ContextEntries"] = entries
        return self.iam.simulate_principal_policy(**request)["EvaluationResults"]

    def decide(self, role: str, action: str, resource: str, entries=None) -> dict:
        """The one ResourceSpecificResult for one action on one resource."""
        [result] = self.simulate(role, [action], [resource], entries)
        [specific] = result["ResourceSpecificResults"]
        self.assertEqual((result["EvalActionName"], specific["EvalResourceName"]), (action, resource))
        self.assertEqual(result["EvalDecision"], specific["EvalResourceDecision"])
        return specific

    def test_an_inline_policy_on_the_exact_arn_allows_and_is_the_matched_statement(self):
        # SimulatePrincipalPolicy; Statement (SourcePolicyId, positions). IAM names an inline role
        # policy role_<role>_<policy>, type "IAM Policy". GetRole works for the function's own role.
        name = unique("fn-role")
        role = self.role(allow("ecs:UpdateService", SERVICE_ARN), name=name)
        self.assertEqual(self.iam.get_role(RoleName=name)["Role"]["Arn"], role)
        result = self.decide(role, "ecs:UpdateService", SERVICE_ARN)
        self.assertEqual(result["EvalResourceDecision"], "allowed")
        self.assertEqual(result["MissingContextValues"], [])
        [statement] = result["MatchedStatements"]
        self.assertEqual((statement["SourcePolicyId"], statement["SourcePolicyType"]), (f"role_{name}_ops", "IAM Policy"))
        # From just after the "[" to just after the "}", as IAM reports positions (a captured IAM
        # answer for AdministratorAccess, laid out like this, reads 3:17 to 8:6 too).
        self.assertEqual((statement["StartPosition"], statement["EndPosition"]),
                         ({"Line": 3, "Column": 17}, {"Line": 8, "Column": 6}))

    def test_a_wildcard_resource_allows_and_another_arn_is_implicitly_denied(self):
        # IAM JSON policy elements: Resource (wildcards * and ? within the ARN); Policy evaluation
        # logic (no Allow: implicit deny). Top level: the most restrictive decision (EvaluationResult).
        role = self.role(allow("ecs:DescribeServices", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/w?b*"))
        [result] = self.simulate(role, ["ecs:DescribeServices"], [SERVICE_ARN, OTHER_SERVICE_ARN])
        decisions = {r["EvalResourceName"]: r["EvalResourceDecision"] for r in result["ResourceSpecificResults"]}
        self.assertEqual(decisions, {SERVICE_ARN: "allowed", OTHER_SERVICE_ARN: "implicitDeny"})
        self.assertEqual(result["EvalDecision"], "implicitDeny")
        self.assertEqual(result["MatchedStatements"], [])

    def test_an_explicit_deny_wins_over_an_allow(self):
        # Policy evaluation logic: an explicit Deny overrides any Allow; ResourceSpecificResult:
        # the deny statement is the only entry in MatchedStatements.
        role = self.role(allow("ecs:*", "*"), {"Effect": "Deny", "Action": "ecs:DeleteService", "Resource": SERVICE_ARN})
        result = self.decide(role, "ecs:DeleteService", SERVICE_ARN)
        self.assertEqual(result["EvalResourceDecision"], "explicitDeny")
        # Only the Deny, the second statement, which starts after the "}," on line 8.
        self.assertEqual([s["StartPosition"]["Line"] for s in result["MatchedStatements"]], [8])
        self.assertEqual(self.decide(role, "ecs:DeleteService", OTHER_SERVICE_ARN)["EvalResourceDecision"], "allowed")

    def test_a_string_equals_condition_met_by_a_context_entry_allows(self):
        # IAM JSON policy elements: Condition operators (StringEquals); ContextEntry; condition key
        # names are case-insensitive.
        role = self.role(allow("iam:PassRole", "*", Condition=PASSED_TO_ECS))
        result = self.decide(role, "iam:PassRole", "*", context({"iam:passedtoservice": ["ecs-tasks.amazonaws.com"]}))
        self.assertEqual(outcome(result), ("allowed", []))
        result = self.decide(role, "iam:PassRole", "*", context({"iam:PassedToService": ["lambda.amazonaws.com"]}))
        self.assertEqual(outcome(result), ("implicitDeny", []))

    def test_without_the_context_entry_the_condition_fails_and_the_key_is_missing(self):
        # Condition operators: a key absent from the request context does not match; a negated
        # operator (StringNotEquals) then does match. ResourceSpecificResult: MissingContextValues.
        role = self.role(allow("iam:PassRole", "*", Condition=PASSED_TO_ECS),
                         {"Effect": "Deny", "Action": "ecs:TagResource", "Resource": "*",
                          "Condition": {"StringNotEquals": {"aws:ResourceTag/team": "ops"}}})
        result = self.decide(role, "iam:PassRole", "*")
        self.assertEqual(outcome(result), ("implicitDeny", ["iam:PassedToService"]))
        result = self.decide(role, "ecs:TagResource", SERVICE_ARN)
        self.assertEqual(outcome(result), ("explicitDeny", ["aws:ResourceTag/team"]))

    def test_for_all_values_string_like_on_tag_keys_as_the_template_writes_it(self):
        # Single-valued vs. multivalued context keys: ForAllValues matches when every value in the
        # request matches one in the policy, and when the key is absent.
        role = self.role(allow("ecs:TagResource", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/*",
                               Condition={"ForAllValues:StringLike": {"aws:TagKeys": ["ops:deploy-*"]}}))

        def tags(*keys: str) -> dict:
            return self.decide(role, "ecs:TagResource", SERVICE_ARN, context({"aws:TagKeys": list(keys)}))

        self.assertEqual(tags("ops:deploy-state", "ops:deploy-at")["EvalResourceDecision"], "allowed")
        self.assertEqual(tags("ops:deploy-state", "owner")["EvalResourceDecision"], "implicitDeny")
        absent = self.decide(role, "ecs:TagResource", SERVICE_ARN)
        self.assertEqual(outcome(absent), ("allowed", ["aws:TagKeys"]))

    def test_an_operator_the_emulator_cannot_evaluate_never_allows_and_is_named(self):
        # Condition operators (IpAddress, DateGreaterThan): not evaluated by the emulator. The
        # statement does not count; MissingContextValues names the key as emulator-cannot-evaluate:
        # where it could change the decision (README, "IAM policy simulation").
        from_vpc = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
        role = self.role(allow("sns:Publish", "*", Condition=from_vpc))
        result = self.decide(role, "sns:Publish", "*", context({"aws:SourceIp": ["10.1.2.3"]}))
        self.assertEqual(result["EvalResourceDecision"], "implicitDeny")
        self.assertEqual(result["MissingContextValues"], ["emulator-cannot-evaluate:aws:SourceIp"])

        denied_later = self.role(allow("sns:Publish", "*"), {"Effect": "Deny", "Action": "sns:*", "Resource": "*",
                                 "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}})
        result = self.decide(denied_later, "sns:Publish", "*", context({"aws:CurrentTime": ["2026-06-01T00:00:00Z"]}))
        self.assertEqual(result["EvalResourceDecision"], "allowed")
        self.assertEqual(result["MissingContextValues"], ["emulator-cannot-evaluate:aws:CurrentTime"])

        also_allowed = self.role(allow("sns:Publish", "*"), allow("sns:Publish", "*", Condition=from_vpc))
        result = self.decide(also_allowed, "sns:Publish", "*", context({"aws:SourceIp": ["10.1.2.3"]}))
        self.assertEqual(outcome(result), ("allowed", []))

        # IAM policy elements: Variables and tags (not resolved by the emulator).
        per_user = self.role(allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*"))
        result = self.decide(per_user, "s3:GetObject", "arn:aws:s3:::home/ana/notes", context({"aws:username": ["ana"]}))
        self.assertEqual(result["EvalResourceDecision"], "implicitDeny")
        self.assertEqual(result["MissingContextValues"], ["emulator-cannot-evaluate:aws:username"])

    def test_not_action_and_not_resource(self):
        # IAM JSON policy elements: NotAction, NotResource (the statement applies to everything
        # not listed).
        role = self.role({"Effect": "Allow", "NotAction": "iam:*", "NotResource": OTHER_SERVICE_ARN})
        self.assertEqual(self.decide(role, "ecs:UpdateService", SERVICE_ARN)["EvalResourceDecision"], "allowed")
        self.assertEqual(self.decide(role, "ecs:UpdateService", OTHER_SERVICE_ARN)["EvalResourceDecision"], "implicitDeny")
        self.assertEqual(self.decide(role, "IAM:PassRole", SERVICE_ARN)["EvalResourceDecision"], "implicitDeny")

    def test_an_attached_managed_policy_counts(self):
        # SimulatePrincipalPolicy: all policies associated with the entity; a managed policy is
        # named by its policy name, its default version is the one in force.
        role = self.role()
        name = unique("ops-managed")
        arn = self.iam.create_policy(PolicyName=name, PolicyDocument=policy(allow("sns:Publish", "*")))["Policy"]["Arn"]
        self.iam.attach_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyArn=arn)
        result = self.decide(role, "sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts")
        self.assertEqual(result["EvalResourceDecision"], "allowed")
        self.assertEqual([s["SourcePolicyId"] for s in result["MatchedStatements"]], [name])

    def test_policy_input_list_adds_policies_and_a_permissions_boundary_caps_them(self):
        # SimulatePrincipalPolicy: PolicyInputList, PermissionsBoundaryPolicyInputList;
        # Policy evaluation logic: a permissions boundary must allow as well.
        role = self.role()
        request = {"PolicySourceArn": role, "ActionNames": ["sqs:SendMessage", "sns:Publish"],
                   "PolicyInputList": [policy(allow(["sqs:SendMessage", "sns:Publish"], "*"))]}
        results = self.iam.simulate_principal_policy(**request)["EvaluationResults"]
        self.assertEqual([(r["EvalResourceName"], r["EvalDecision"]) for r in results], [("*", "allowed"), ("*", "allowed")])
        self.assertEqual(results[0]["MatchedStatements"][0]["SourcePolicyId"], "PolicyInputList.1")
        request["PermissionsBoundaryPolicyInputList"] = [policy(allow("sns:*", "*"))]
        results = self.iam.simulate_principal_policy(**request)["EvaluationResults"]
        self.assertEqual([r["EvalDecision"] for r in results], ["implicitDeny", "allowed"])
        self.assertEqual(results[0]["PermissionsBoundaryDecisionDetail"], {"AllowedByPermissionsBoundary": False})

    def test_max_items_and_marker_page_the_results(self):
        # SimulatePrincipalPolicy: MaxItems, Marker; the answer's IsTruncated and Marker.
        role = self.role(allow("sns:Publish", "*"))
        actions = ["sns:Publish", "sqs:SendMessage", "ecs:ListServices"]
        request = {"PolicySourceArn": role, "ActionNames": actions, "MaxItems": 2}
        first = self.iam.simulate_principal_policy(**request)
        self.assertEqual([r["EvalDecision"] for r in first["EvaluationResults"]], ["allowed", "implicitDeny"])
        self.assertTrue(first["IsTruncated"])
        rest = self.iam.simulate_principal_policy(Marker=first["Marker"], **request)
        self.assertEqual([r["EvalActionName"] for r in rest["EvaluationResults"]], ["ecs:ListServices"])
        self.assertFalse(rest["IsTruncated"])

    def test_an_unknown_role_is_no_such_entity(self):
        # SimulatePrincipalPolicy, Errors: NoSuchEntity, HTTP 404.
        with self.assertRaises(self.iam.exceptions.NoSuchEntityException) as raised:
            self.simulate(f"arn:aws:iam::{ACCOUNT}:role/{unique('missing')}", ["sns:Publish"])
        self.assertEqual(raised.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)


def cloudwatch_cbor(operation: str, request: dict) -> dict:
    """One CloudWatch call in Smithy RPC v2 CBOR, as `aws-sdk-cloudwatch` sends it (boto3 speaks
    JSON here, which moto answers without the bridge)."""
    import cbor2

    call = urllib.request.Request(
        f"{URL}/service/GraniteServiceVersion20100801/operation/{operation}",
        data=cbor2.dumps(request), method="POST",
        headers={
            "Content-Type": "application/cbor", "Accept": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
            # The credential scope names the service, as a signed SDK request does.
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/monitoring/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(call) as answer:
        body = answer.read()
    return cbor2.loads(body) if body else {}


class CompositeAlarms(unittest.TestCase):
    def test_a_composite_alarm_is_put_and_described_only_when_asked_for_as_in_aws(self):
        # PutCompositeAlarm: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html
        # DescribeAlarms without AlarmTypes returns metric alarms only:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
        child, name = unique("cpu-high"), unique("service-down")
        cloudwatch_cbor("PutMetricAlarm", {
            "AlarmName": child, "Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Statistic": "Average",
            "Period": 60, "EvaluationPeriods": 1, "Threshold": 90.0, "ComparisonOperator": "GreaterThanThreshold",
        })
        cloudwatch_cbor("PutCompositeAlarm", {
            "AlarmName": name, "AlarmRule": f"ALARM({child})", "Tags": [{"Key": "team", "Value": "ops"}],
        })
        names = {"AlarmNames": [child, name]}
        default = cloudwatch_cbor("DescribeAlarms", names)
        self.assertEqual([a["AlarmName"] for a in default["MetricAlarms"]], [child])
        self.assertEqual(default.get("CompositeAlarms", []), [])
        both = cloudwatch_cbor("DescribeAlarms", {**names, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]})
        self.assertEqual([a["AlarmName"] for a in both["MetricAlarms"]], [child])
        composite = both["CompositeAlarms"][0]
        self.assertEqual((composite["AlarmName"], composite["AlarmRule"]), (name, f"ALARM({child})"))
        only = cloudwatch_cbor("DescribeAlarms", {**names, "AlarmTypes": ["CompositeAlarm"]})
        self.assertEqual((only.get("MetricAlarms", []), len(only["CompositeAlarms"])), ([], 1))
        tags = client("cloudwatch").list_tags_for_resource(ResourceARN=composite["AlarmArn"])["Tags"]
        self.assertEqual(tags, [{"Key": "team", "Value": "ops"}])


class EcrPushTimes(unittest.TestCase):
    def test_each_push_is_recorded_at_its_own_millisecond_later_than_the_one_before(self):
        # ECR's ImageDetail.imagePushedAt is a timestamp to the millisecond:
        # https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageDetail.html
        repository = unique("times")
        client("ecr").create_repository(repositoryName=repository)
        digests = [control("POST", "/_ops/ecr/push", {"repository": repository, "tag": f"v{i}"})["digest"] for i in range(3)]
        images = client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageDigest": d} for d in digests])
        pushed = {image["imageDigest"]: image["imagePushedAt"] for image in images["imageDetails"]}
        times = [pushed[d] for d in digests]
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(set(times)), 3, times)


class TemplateGrants(unittest.TestCase):
    """ops_emulator.template_grants resolves sam/template.yaml's policies for one deployment, as
    CloudFormation's intrinsic function reference defines Fn::Sub, Fn::Join, Fn::Split, Fn::If and
    the condition functions."""

    TEMPLATE = str(Path(__file__).resolve().parents[2] / "sam" / "template.yaml")

    def grants(self, parameters):
        request = {
            "region": "eu-west-1", "account": "111122223333", "stack": "opsstack", "parameters": parameters,
            "refs": {"AlertTopic": "arn:aws:sns:eu-west-1:111122223333:alerts", "HealthStateTable": "state",
                     **{f"{f}Role": f"{f}-role" for f in FUNCTIONS}},
            "arns": {"HealthStateTable.Arn": "arn:aws:dynamodb:eu-west-1:111122223333:table/state",
                     **{f"{f}Role.Arn": f"arn:aws:iam::111122223333:role/{f}-role" for f in FUNCTIONS}},
        }
        return template_grants.grants(self.TEMPLATE, request)

    def statement(self, document, sid):
        return next(s for s in document["Statement"] if s["Sid"] == sid)

    def test_a_list_parameter_becomes_one_service_arn_per_cluster_and_sub_fills_the_pseudo_parameters(self):
        grants = self.grants({"EcsClusterNames": "prod,staging"})
        deploy = grants["DeployTriggerFunction"]
        self.assertEqual(
            self.statement(deploy, "ReadAndDeployServicesInManagedClusters")["Resource"],
            ["arn:aws:ecs:*:*:service/prod/*", "arn:aws:ecs:*:*:service/staging/*"],
        )
        self.assertEqual(self.statement(deploy, "RegisterRevisions")["Resource"],
                         "arn:aws:ecs:eu-west-1:111122223333:task-definition/*")
        self.assertEqual(self.statement(deploy, "Alert")["Resource"], "arn:aws:sns:eu-west-1:111122223333:alerts")

    def test_each_role_gets_its_own_doctor_grant_and_a_conditional_function_only_when_deployed(self):
        without = self.grants({})
        self.assertNotIn("BlueGreenSwapperFunction", without, "HasBlueGreenRoutes is false without routes")
        self.assertEqual(
            self.statement(without["DeployTriggerFunction"], "SimulateItsOwnRole")["Resource"],
            "arn:aws:iam::111122223333:role/DeployTriggerFunction-role",
        )
        route = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/shop/1/2"
        withroutes = self.grants({"BlueGreenRouteArns": route})
        self.assertEqual(
            self.statement(withroutes["BlueGreenSwapperFunction"], "SimulateItsOwnRole")["Resource"],
            "arn:aws:iam::111122223333:role/BlueGreenSwapperFunction-role",
        )
        self.assertEqual(
            self.statement(withroutes["BlueGreenSwapperHookFunction"], "SimulateItsOwnRole")["Resource"],
            "arn:aws:iam::111122223333:role/BlueGreenSwapperHookFunction-role",
        )

    def test_an_unresolvable_reference_is_an_error_not_a_guess(self):
        with self.assertRaises(template_grants.Unsupported):
            template_grants.grants(self.TEMPLATE, {"region": "eu-west-1", "account": "1", "stack": "s"})


FUNCTIONS = ["DeployTriggerFunction", "CpuAlarmScalerFunction", "BlueGreenSwapperFunction",
             "BlueGreenSwapperHookFunction", "LegacyHealthMonitorFunction", "BastionEipAssociatorFunction"]


if __name__ == "__main__":
    unittest.main()
