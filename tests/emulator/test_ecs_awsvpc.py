"""Self-tests of awsvpc (Fargate) ECS services in the emulator, through boto3 as any client calls it.

Each test names, in its docstring, the AWS page that says what it checks. One emulator serves this
module on a free loopback port; each test makes its own VPC, cluster and service names.
"""

from __future__ import annotations

import ipaddress
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

REGION = "us-east-1"


def setUpModule() -> None:
    global SERVER, URL
    app = OpsEmulator(DomainDispatcherApplication(create_backend_app), REGION)
    SERVER = make_server("127.0.0.1", 0, app, threaded=True)
    URL = f"http://127.0.0.1:{SERVER.server_port}"
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()


def tearDownModule() -> None:
    SERVER.shutdown()


def client(service: str):
    return boto3.client(
        service, region_name=REGION, endpoint_url=URL, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def control(path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{URL}{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def control_error(path: str, body: dict) -> tuple[int, str]:
    try:
        control(path, body)
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)["error"]
        except (ValueError, KeyError):
            return error.code, text.decode(errors="replace")
    raise AssertionError("the control accepted a request it should refuse")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Vpc:
    """A VPC made by plain CreateVpc (DNS hostnames off, the default), two subnets in two zones."""

    def __init__(self, cidr: str = "10.40.0.0/16", subnet_cidrs=("10.40.1.0/24", "10.40.2.0/24")):
        ec2 = client("ec2")
        self.id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        self.subnets = {}
        for cidr_block, zone in zip(subnet_cidrs, "ab"):
            subnet = ec2.create_subnet(VpcId=self.id, CidrBlock=cidr_block, AvailabilityZone=f"{REGION}{zone}")["Subnet"]
            self.subnets[subnet["SubnetId"]] = subnet
        self.group = ec2.create_security_group(GroupName=unique("web"), Description="web", VpcId=self.id)["GroupId"]
        self.default_group = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [self.id]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"][0]["GroupId"]

    def target_group(self, target_type: str = "ip") -> str:
        elbv2 = client("elbv2")
        balancer = elbv2.create_load_balancer(Name=unique("alb"), Subnets=list(self.subnets), Type="application")[
            "LoadBalancers"][0]["LoadBalancerArn"]
        group = elbv2.create_target_group(
            Name=unique("tg"), Protocol="HTTP", Port=8080, VpcId=self.id, TargetType=target_type
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(LoadBalancerArn=balancer, Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
        return group

    def network(self, security_groups: bool = True, subnets=None) -> dict:
        config = {"subnets": list(subnets or self.subnets), "assignPublicIp": "DISABLED"}
        if security_groups:
            config["securityGroups"] = [self.group]
        return {"awsvpcConfiguration": config}


def fargate_definition(family: str, image: str = "web:1", network_mode: str = "awsvpc") -> str:
    return client("ecs").register_task_definition(
        family=family, networkMode=network_mode, requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": image, "essential": True,
                               "portMappings": [{"containerPort": 8080}]}],
    )["taskDefinition"]["taskDefinitionArn"]


class Service:
    """A Fargate service in its own cluster, registered in an `ip` target group."""

    def __init__(self, vpc: Vpc | None = None, desired: int = 2, security_groups: bool = True,
                 load_balanced: bool = True, **create):
        self.ecs = client("ecs")
        self.vpc = vpc or Vpc()
        self.cluster = unique("c")
        self.name = "web"
        self.family = unique("web")
        self.ecs.create_cluster(clusterName=self.cluster)
        self.first = fargate_definition(self.family)
        self.target_group = self.vpc.target_group() if load_balanced else None
        args = dict(
            cluster=self.cluster, serviceName=self.name, taskDefinition=self.first, desiredCount=desired,
            launchType="FARGATE", networkConfiguration=self.vpc.network(security_groups),
        )
        if load_balanced:
            args["loadBalancers"] = [{"targetGroupArn": self.target_group, "containerName": "app", "containerPort": 8080}]
        args.update(create)
        self.arn = self.ecs.create_service(**args)["service"]["serviceArn"]

    def describe(self) -> dict:
        return self.ecs.describe_services(cluster=self.cluster, services=[self.name])["services"][0]

    def tasks(self, status: str | None = "RUNNING") -> list[dict]:
        arns = self.ecs.list_tasks(cluster=self.cluster)["taskArns"]
        if not arns:
            return []
        described = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"]
        mine = [t for t in described if t.get("group") == f"service:{self.name}"]
        return [t for t in mine if status is None or t["lastStatus"] == status]

    def targets(self) -> dict[str, int]:
        health = client("elbv2").describe_target_health(TargetGroupArn=self.target_group)["TargetHealthDescriptions"]
        return {h["Target"]["Id"]: h["Target"]["Port"] for h in health}

    def control(self, path: str, **body) -> dict:
        return control(f"/_ops/ecs/{path}", {"cluster": self.cluster, "service": self.name, **body})

    def control_error(self, path: str, **body) -> tuple[int, str]:
        return control_error(f"/_ops/ecs/{path}", {"cluster": self.cluster, "service": self.name, **body})

    def new_revision(self, image: str) -> str:
        return fargate_definition(self.family, image)

    def update(self, **args) -> dict:
        return self.ecs.update_service(cluster=self.cluster, service=self.name, **args)["service"]


def eni(task: dict) -> dict[str, str]:
    [attachment] = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    return {"status": attachment["status"], "id": attachment["id"],
            **{d["name"]: d["value"] for d in attachment["details"]}}


def ip(task: dict) -> str:
    return eni(task)["privateIPv4Address"]


class TaskNetworking(unittest.TestCase):
    def test_run_tasks_gives_each_task_an_eni_with_a_private_ip_in_one_of_the_service_subnets(self):
        """Fargate task networking: every task gets an ENI with a primary private IP address in the
        service's VPC, in one of its subnets (awsvpcConfiguration.subnets); DescribeTasks shows it as the
        task's `ElasticNetworkInterface` attachment (subnet ID, ENI ID, MAC, private IPv4 address).
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attachment.html
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html
        Found: in a VPC from plain CreateVpc (DNS hostnames off), starting the tasks failed with
        AttributeError 'NetworkInterface' object has no attribute 'private_dns_name'."""
        service = Service()
        answer = service.control("run-tasks", count=2)
        self.assertEqual(answer["runningCount"], 2)
        tasks = service.tasks()
        self.assertEqual(len(tasks), 2)
        ec2 = client("ec2")
        for task in tasks:
            self.assertEqual(task["launchType"], "FARGATE")
            self.assertEqual(task["lastStatus"], "RUNNING")
            attachment = eni(task)
            self.assertEqual(attachment["status"], "ATTACHED")
            subnet = service.vpc.subnets[attachment["subnetId"]]
            self.assertIn(ipaddress.ip_address(attachment["privateIPv4Address"]),
                          ipaddress.ip_network(subnet["CidrBlock"]))
            self.assertEqual(task["availabilityZone"], subnet["AvailabilityZone"])
            self.assertTrue(attachment["macAddress"])
            [interface] = ec2.describe_network_interfaces(
                NetworkInterfaceIds=[attachment["networkInterfaceId"]])["NetworkInterfaces"]
            self.assertEqual(interface["PrivateIpAddress"], attachment["privateIPv4Address"])
            self.assertEqual(interface["SubnetId"], attachment["subnetId"])
            self.assertEqual([g["GroupId"] for g in interface["Groups"]], [service.vpc.group])
            self.assertEqual(task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"],
                             attachment["privateIPv4Address"])
        self.assertEqual(len({eni(t)["subnetId"] for t in tasks}), 2, "tasks spread over the two subnets (zones)")
        self.assertEqual(len({ip(t) for t in tasks}), 2)

    def test_a_fargate_service_without_security_groups_gets_the_vpc_default_group(self):
        """AwsVpcConfiguration.securityGroups is optional: "If you don't specify a security group, the
        default security group for the VPC is used."
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AwsVpcConfiguration.html
        Found: CreateService refused a Fargate service without `securityGroups`."""
        service = Service(security_groups=False)
        network = service.describe()["networkConfiguration"]["awsvpcConfiguration"]
        self.assertEqual(sorted(network["subnets"]), sorted(service.vpc.subnets))
        service.control("finish-deployment", state="COMPLETED")
        for task in service.tasks():
            [interface] = client("ec2").describe_network_interfaces(
                NetworkInterfaceIds=[eni(task)["networkInterfaceId"]])["NetworkInterfaces"]
            self.assertEqual([g["GroupId"] for g in interface["Groups"]], [service.vpc.default_group])

    def test_an_awsvpc_service_needs_a_network_configuration_and_ip_target_groups(self):
        """CreateService: networkConfiguration "is required for task definitions that use the awsvpc
        network mode"; a load balancer's target group for awsvpc tasks must have target type `ip`, "not
        instance", since those tasks are associated with an ENI, not an EC2 instance.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/nlb.html
        Found: a service without networkConfiguration was created and run-tasks then reported
        `runningCount: 2` with no task behind it."""
        vpc, ecs = Vpc(), client("ecs")
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        definition = fargate_definition(unique("web"))
        with self.assertRaises(ecs.exceptions.InvalidParameterException) as raised:
            ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=definition, desiredCount=1,
                               launchType="FARGATE")
        self.assertIn("Network Configuration must be provided", str(raised.exception))
        instance_group = vpc.target_group("instance")
        with self.assertRaises(ecs.exceptions.InvalidParameterException) as raised:
            ecs.create_service(
                cluster=cluster, serviceName="web", taskDefinition=definition, desiredCount=1, launchType="FARGATE",
                networkConfiguration=vpc.network(),
                loadBalancers=[{"targetGroupArn": instance_group, "containerName": "app", "containerPort": 8080}],
            )
        self.assertIn("target type instance", str(raised.exception))
        with self.assertRaises(ecs.exceptions.InvalidParameterException):
            ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=definition, desiredCount=1,
                               launchType="FARGATE", networkConfiguration=vpc.network(subnets=["subnet-0000000a"]))
        self.assertEqual(ecs.list_services(cluster=cluster)["serviceArns"], [], "nothing was created")

    def test_a_fargate_service_refuses_a_task_definition_not_registered_for_fargate(self):
        """A task definition is checked against the launch types in `requiresCompatibilities` when it
        is registered, and a Fargate service takes only one whose `compatibilities` include FARGATE:
        CreateService and UpdateService answer InvalidParameterException "Task definition does not
        support launch_type FARGATE." and change nothing (a clone that drops
        `requiresCompatibilities` cannot be deployed to Fargate).
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#requires_compatibilities
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskDefinition.html"""
        ecs = client("ecs")
        service = Service(desired=1)
        family = unique("ec2only")
        ec2_only = ecs.register_task_definition(
            family=family, networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": "web:2", "essential": True, "memory": 256,
                                   "portMappings": [{"containerPort": 8080}]}],
        )["taskDefinition"]
        self.assertEqual(ec2_only["compatibilities"], ["EC2"])
        with self.assertRaises(ecs.exceptions.InvalidParameterException) as raised:
            ecs.update_service(cluster=service.cluster, service=service.name, taskDefinition=ec2_only["taskDefinitionArn"])
        self.assertIn("Task definition does not support launch_type FARGATE.", str(raised.exception))
        described = service.describe()
        self.assertEqual(described["taskDefinition"], service.first, "the service still runs its revision")
        self.assertEqual(len(described["deployments"]), 1, "no deployment was started")
        with self.assertRaises(ecs.exceptions.InvalidParameterException) as raised:
            ecs.create_service(cluster=service.cluster, serviceName="other", taskDefinition=ec2_only["taskDefinitionArn"],
                               desiredCount=1, launchType="FARGATE", networkConfiguration=service.vpc.network())
        self.assertIn("does not support launch_type FARGATE", str(raised.exception))
        self.assertEqual(len(ecs.list_services(cluster=service.cluster)["serviceArns"]), 1, "nothing was created")

    def test_run_task_of_a_fargate_definition_gets_an_eni_and_stop_task_deletes_it(self):
        """RunTask with launchType FARGATE and an awsvpcConfiguration: each task gets its ENI in one of
        the subnets (the default security group when none is given); a task definition may size memory
        for the task only. A stopped task's ENI is deleted and its attachment reads DELETED.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attachment.html
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html
        Found: RunTask of such a definition failed (moto summed container memory, None)."""
        vpc, ecs, ec2 = Vpc(), client("ecs"), client("ec2")
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        tasks = ecs.run_task(
            cluster=cluster, taskDefinition=fargate_definition(unique("job")), launchType="FARGATE", count=2,
            networkConfiguration={"awsvpcConfiguration": {"subnets": list(vpc.subnets)}},
        )["tasks"]
        self.assertEqual({eni(t)["subnetId"] for t in tasks}, set(vpc.subnets))
        for task in tasks:
            self.assertEqual((task["launchType"], task["platformVersion"]), ("FARGATE", "1.4.0"))
            [interface] = ec2.describe_network_interfaces(
                NetworkInterfaceIds=[eni(task)["networkInterfaceId"]])["NetworkInterfaces"]
            self.assertEqual([g["GroupId"] for g in interface["Groups"]], [vpc.default_group])
        stopped = ecs.stop_task(cluster=cluster, task=tasks[0]["taskArn"], reason="done")["task"]
        self.assertEqual(eni(stopped)["status"], "DELETED")
        with self.assertRaises(ec2.exceptions.ClientError):
            ec2.describe_network_interfaces(NetworkInterfaceIds=[eni(stopped)["networkInterfaceId"]])


class Rollouts(unittest.TestCase):
    def test_a_completed_rollout_registers_new_tasks_by_ip_and_deregisters_the_old_deployment(self):
        """ECS registers an awsvpc service's tasks in its `ip` target groups by their private IP and
        the container port, and a rolling deployment (UpdateService with a new task definition) starts
        the new revision's tasks, then stops the old ones, deregistering them.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/nlb.html
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html"""
        service = Service()
        done = service.control("finish-deployment", state="COMPLETED")
        self.assertEqual(done["event"]["detail"]["eventName"], "SERVICE_DEPLOYMENT_COMPLETED")
        first = service.tasks()
        self.assertEqual(service.targets(), {ip(t): 8080 for t in first})
        self.assertEqual(len(first), 2)

        second = service.new_revision("web:2")
        updated = service.update(taskDefinition=second)
        self.assertEqual([d["status"] for d in updated["deployments"]], ["PRIMARY", "ACTIVE"])
        service.control("run-tasks", count=1)
        rolling = service.tasks()
        self.assertEqual(len(rolling), 3, "the old deployment's tasks run until the new one completes")
        self.assertEqual(set(service.targets()), {ip(t) for t in rolling})
        self.assertEqual(service.describe()["runningCount"], 3)

        service.control("finish-deployment", state="COMPLETED")
        now = service.tasks()
        self.assertEqual({t["taskDefinitionArn"] for t in now}, {second})
        self.assertEqual(service.targets(), {ip(t): 8080 for t in now})
        described = service.describe()
        self.assertEqual((described["runningCount"], len(described["deployments"])), (2, 1))
        self.assertEqual(described["deployments"][0]["rolloutState"], "COMPLETED")
        stopped = [t for t in service.tasks(status=None) if t["taskDefinitionArn"] == service.first]
        self.assertEqual({t["lastStatus"] for t in stopped}, {"STOPPED"})
        ec2 = client("ec2")
        for task in stopped:
            self.assertEqual(eni(task)["status"], "DELETED")
            with self.assertRaises(ec2.exceptions.ClientError):
                ec2.describe_network_interfaces(NetworkInterfaceIds=[eni(task)["networkInterfaceId"]])

    def test_a_failed_rollout_with_rollback_stops_the_new_tasks_and_restores_the_previous_revision(self):
        """The deployment circuit breaker marks a failing deployment FAILED and, with rollback, starts a
        new deployment of the last revision that completed; the failed deployment's tasks stop and
        leave the target group. UpdateService's deploymentConfiguration / Deployment.rolloutState:
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html"""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        first_ips = {ip(t) for t in service.tasks()}
        second = service.new_revision("web:2")
        service.update(taskDefinition=second)
        service.control("run-tasks", count=1)

        failed = service.control("finish-deployment", state="FAILED", rollback=True)
        self.assertEqual(failed["event"]["detail"]["eventName"], "SERVICE_DEPLOYMENT_FAILED")
        described = service.describe()
        self.assertEqual(described["taskDefinition"], service.first)
        primary = described["deployments"][0]
        self.assertEqual((primary["status"], primary["id"], primary["rolloutState"]),
                         ("PRIMARY", failed["rollbackDeploymentId"], "IN_PROGRESS"))
        [broken] = [d for d in described["deployments"] if d["rolloutState"] == "FAILED"]
        self.assertEqual((broken["taskDefinition"], broken["runningCount"]), (second, 0))
        self.assertEqual(described["runningCount"], 2, "the earlier deployment's tasks still run")
        self.assertEqual({t["taskDefinitionArn"] for t in service.tasks()}, {service.first})
        self.assertEqual(set(service.targets()), first_ips)

        service.control("finish-deployment", state="COMPLETED")
        described = service.describe()
        self.assertEqual((described["runningCount"], len(described["deployments"])), (2, 1))
        tasks = service.tasks()
        self.assertEqual({t["taskDefinitionArn"] for t in tasks}, {service.first})
        self.assertEqual(service.targets(), {ip(t): 8080 for t in tasks})

    def test_the_circuit_breaker_rolls_back_to_the_last_completed_deployment_not_one_still_rolling_out(self):
        """"If a service deployment fails ... the service rolls back to the last deployment that
        completed successfully." Found by an independent test: web:1 COMPLETED, web:2 started, web:3
        started and FAILED went back to web:2, which never completed.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html"""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        second, third = service.new_revision("web:2"), service.new_revision("web:3")
        service.update(taskDefinition=second)
        service.update(taskDefinition=third)
        failed = service.control("finish-deployment", state="FAILED", rollback=True)
        self.assertIn(f"Rolling back to {service.first}.", failed["event"]["detail"]["reason"])
        self.assertEqual(service.describe()["taskDefinition"], service.first)

    def test_a_service_updated_to_a_new_revision_at_zero_tasks_settles_at_once(self):
        """With a desired count of 0 a new deployment has nothing to start: ECS stops the older
        deployments' tasks, which leave the target groups, and the deployment completes. Found by an
        independent test: a blue/green colour restored to its old revision at 0 kept its two tasks
        and healthy targets, and `runningCount: 2` for ever.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html"""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        service.update(taskDefinition=service.new_revision("web:2"))
        service.control("finish-deployment", state="COMPLETED")
        service.update(taskDefinition=service.first, desiredCount=0)
        described = service.describe()
        self.assertEqual((described["desiredCount"], described["runningCount"]), (0, 0))
        self.assertEqual([d["rolloutState"] for d in described["deployments"]], ["COMPLETED"])
        self.assertEqual(service.tasks(), [])
        self.assertEqual(service.targets(), {})

    def test_stop_task_on_a_service_task_deregisters_it_and_lowers_the_running_count(self):
        """StopTask: the task stops, leaves its service's target groups (its ENI is deleted, so its
        address could go to another task) and no longer counts as running.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html"""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        first, second = service.tasks()
        client("ecs").stop_task(cluster=service.cluster, task=first["taskArn"], reason="spot interruption")
        self.assertEqual(service.targets(), {ip(second): 8080})
        self.assertEqual(service.describe()["runningCount"], 1)

    def test_update_service_with_new_subnets_starts_a_deployment_whose_tasks_use_them(self):
        """UpdateService networkConfiguration: "This parameter triggers a new service deployment."
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html"""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        [only] = list(service.vpc.subnets)[:1]
        updated = service.update(networkConfiguration=service.vpc.network(subnets=[only]))
        self.assertEqual(len(updated["deployments"]), 2)
        self.assertEqual(updated["deployments"][0]["networkConfiguration"]["awsvpcConfiguration"]["subnets"], [only])
        service.control("finish-deployment", state="COMPLETED")
        self.assertEqual({eni(t)["subnetId"] for t in service.tasks()}, {only})

    def test_force_new_deployment_or_a_new_platform_version_replaces_every_task(self):
        """UpdateService forceNewDeployment starts "a new deployment with no service definition
        changes" (new tasks of the same revision); platformVersion "triggers a new service deployment".
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html"""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        for update in ({"forceNewDeployment": True}, {"platformVersion": "1.3.0"}):
            old = {t["taskArn"]: ip(t) for t in service.tasks()}
            updated = service.update(**update)
            self.assertEqual([d["status"] for d in updated["deployments"]], ["PRIMARY", "ACTIVE"], update)
            self.assertEqual(updated["deployments"][0]["taskDefinition"], service.first)
            service.control("finish-deployment", state="COMPLETED")
            now = service.tasks()
            self.assertEqual(len(now), 2)
            self.assertFalse(set(old) & {t["taskArn"] for t in now}, update)
            self.assertEqual(service.targets(), {ip(t): 8080 for t in now})
        self.assertEqual({t["platformVersion"] for t in service.tasks()}, {"1.3.0"})


class FargateTaskDefinitions(unittest.TestCase):
    def test_a_fargate_definition_needs_awsvpc_and_a_task_size_fargate_offers(self):
        """RegisterTaskDefinition with requiresCompatibilities FARGATE: "If using the Fargate launch
        type, the awsvpc network mode is required", task-level cpu and memory are required, in one
        of the combinations of the task size table; else ClientException and nothing is registered.
        Found by an independent test: bridge, no network mode, no size and 256 CPU with 4096 MiB
        were all accepted and read back as awsvpc.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html"""
        ecs = client("ecs")
        family = unique("fg")
        app = [{"name": "app", "image": "web:1", "essential": True}]
        for args, expected in (
            ({"networkMode": "bridge", "cpu": "256", "memory": "512"}, "network mode"),
            ({"cpu": "256", "memory": "512"}, "network mode"),
            ({"networkMode": "awsvpc", "memory": "512"}, "'cpu' be defined at the task level"),
            ({"networkMode": "awsvpc", "cpu": "256"}, "'memory' be defined at the task level"),
            ({"networkMode": "awsvpc", "cpu": "256", "memory": "4096"}, "No Fargate configuration exists for given values: 256 CPU, 4096 memory"),
        ):
            with self.assertRaises(ecs.exceptions.ClientException) as raised:
                ecs.register_task_definition(family=family, requiresCompatibilities=["FARGATE"], containerDefinitions=app, **args)
            self.assertIn(expected, str(raised.exception), args)
        with self.assertRaises(ecs.exceptions.ClientException):
            ecs.describe_task_definition(taskDefinition=family)
        ok = ecs.register_task_definition(family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                          cpu="1 vCPU", memory="2 GB", containerDefinitions=app)["taskDefinition"]
        self.assertEqual((ok["networkMode"], ok["compatibilities"]), ("awsvpc", ["EC2", "FARGATE"]))

    def test_compatibilities_name_only_the_launch_types_asked_for(self):
        """`compatibilities`: "The task launch types the task definition validated against during task
        definition registration" — an EXTERNAL definition is not FARGATE-compatible, and a Fargate
        service refuses it. Found by an independent test: it read back FARGATE-compatible and ran.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskDefinition.html"""
        ecs = client("ecs")
        external = ecs.register_task_definition(
            family=unique("ext"), requiresCompatibilities=["EXTERNAL"], networkMode="bridge",
            containerDefinitions=[{"name": "app", "image": "web:1", "memory": 128}],
        )["taskDefinition"]
        self.assertEqual((external["compatibilities"], external["networkMode"]), (["EC2", "EXTERNAL"], "bridge"))
        service = Service(desired=1)
        with self.assertRaises(ecs.exceptions.InvalidParameterException):
            ecs.update_service(cluster=service.cluster, service=service.name, taskDefinition=external["taskDefinitionArn"])
        self.assertEqual(service.describe()["taskDefinition"], service.first)


class ServiceReadBack(unittest.TestCase):
    def test_launch_type_and_platform_version_read_back(self):
        """CreateService platformVersion: "If one isn't specified, the LATEST platform version is used";
        a task runs on a concrete platform version (1.4.0 is the latest Linux one).
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Service.html
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/platform-fargate.html"""
        latest = Service()
        described = latest.describe()
        self.assertEqual((described["launchType"], described["platformVersion"]), ("FARGATE", "LATEST"))
        self.assertNotIn("capacityProviderStrategy", described)
        self.assertEqual(described["deployments"][0]["launchType"], "FARGATE")
        self.assertEqual(described["networkConfiguration"], latest.vpc.network())
        latest.control("run-tasks", count=1)
        [task] = latest.tasks()
        self.assertEqual(task["platformVersion"], "1.4.0")

        pinned = Service(platformVersion="1.3.0")
        self.assertEqual(pinned.describe()["platformVersion"], "1.3.0")
        pinned.control("run-tasks", count=1)
        self.assertEqual(pinned.tasks()[0]["platformVersion"], "1.3.0")

    def test_a_capacity_provider_strategy_reads_back_instead_of_a_launch_type(self):
        """CreateService capacityProviderStrategy: "If a capacityProviderStrategy is specified, the
        launchType parameter must be omitted"; the provider must be associated with the cluster.
        Service.launchType "is omitted if the service was created using a capacity provider strategy".
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Service.html"""
        vpc, ecs = Vpc(), client("ecs")
        strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
        lone = unique("c")
        ecs.create_cluster(clusterName=lone)
        with self.assertRaises(ecs.exceptions.InvalidParameterException):
            ecs.create_service(cluster=lone, serviceName="web", taskDefinition=fargate_definition(unique("web")),
                               desiredCount=1, capacityProviderStrategy=strategy, networkConfiguration=vpc.network())

        service = Service.__new__(Service)
        service.ecs, service.vpc, service.cluster, service.name = ecs, vpc, unique("c"), "web"
        service.family, service.target_group = unique("web"), vpc.target_group()
        ecs.create_cluster(clusterName=service.cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
        service.first = fargate_definition(service.family)
        common = dict(cluster=service.cluster, serviceName="web", taskDefinition=service.first, desiredCount=1,
                      networkConfiguration=vpc.network())
        with self.assertRaises(ecs.exceptions.InvalidParameterException):
            ecs.create_service(launchType="FARGATE", capacityProviderStrategy=strategy, **common)
        ecs.create_service(capacityProviderStrategy=strategy, **common)
        described = service.describe()
        self.assertNotIn("launchType", described)
        self.assertEqual(described["capacityProviderStrategy"], strategy)
        self.assertEqual(described["platformVersion"], "LATEST")
        self.assertEqual(described["deployments"][0]["capacityProviderStrategy"], strategy)
        service.control("finish-deployment", state="COMPLETED")
        [task] = service.tasks()
        self.assertEqual((task["capacityProviderName"], task["launchType"]), ("FARGATE_SPOT", "FARGATE"))
        self.assertEqual(eni(task)["status"], "ATTACHED")

    def test_update_service_naming_the_current_revision_as_family_revision_starts_no_deployment(self):
        """UpdateService taskDefinition is "the family and revision (family:revision) or full ARN";
        without a revision the latest ACTIVE one is used. Either way the same revision is the same task
        definition: no new deployment, and the service reads back the ARN.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html
        Found: `family:revision` of the current revision started a deployment that never ended."""
        service = Service()
        service.control("finish-deployment", state="COMPLETED")
        before = service.describe()["deployments"]
        revision = service.first.rsplit("/", 1)[-1]
        for named in (revision, service.family, service.first):
            updated = service.update(taskDefinition=named)
            self.assertEqual(updated["taskDefinition"], service.first)
            self.assertEqual([(d["id"], d["rolloutState"]) for d in updated["deployments"]],
                             [(d["id"], d["rolloutState"]) for d in before], named)
        second = service.new_revision("web:2")
        updated = service.update(taskDefinition=second.rsplit("/", 1)[-1])
        self.assertEqual(updated["taskDefinition"], second)
        self.assertEqual([d["taskDefinition"] for d in updated["deployments"]], [second, service.first])
        with self.assertRaises(service.ecs.exceptions.ClientException):
            service.update(taskDefinition=f"{service.family}:99", desiredCount=5)
        self.assertEqual(service.describe()["desiredCount"], 2, "a refused update changes nothing")


class AllOrNothing(unittest.TestCase):
    def state(self, service: Service) -> tuple:
        described = service.describe()
        deployments = [(d["id"], d["status"], d["rolloutState"], d["runningCount"], d.get("failedTasks"))
                       for d in described["deployments"]]
        interfaces = client("ec2").describe_network_interfaces(
            Filters=[{"Name": "vpc-id", "Values": [service.vpc.id]}])["NetworkInterfaces"]
        return (described["runningCount"], described["taskDefinition"], deployments,
                sorted((t["taskArn"], t["lastStatus"]) for t in service.tasks(status=None)),
                sorted(service.targets()), sorted(i["NetworkInterfaceId"] for i in interfaces))

    def test_a_control_that_cannot_start_every_task_changes_nothing(self):
        """A /28 subnet has 11 usable addresses (AWS reserves the first four and the last), so in two
        of them the 23rd task gets no ENI: the control answers 400 and the service, its tasks, ENIs and
        target group are as before, never `COMPLETED` with a running count no task is behind.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSubnet.html
        Found: a control failing half-way left the service `COMPLETED, running=2` with no task."""
        vpc = Vpc(cidr="10.41.0.0/24", subnet_cidrs=("10.41.0.0/28", "10.41.0.16/28"))
        service = Service(vpc=vpc, desired=23)
        before = self.state(service)
        for path, body in (("finish-deployment", {"state": "COMPLETED"}), ("run-tasks", {"count": 23})):
            status, error = service.control_error(path, **body)
            self.assertEqual(status, 400, error)
            self.assertIn("no free IPv4 address", error)
            self.assertEqual(self.state(service), before, path)
        service.control("run-tasks", count=22)
        self.assertEqual(len(service.tasks()), 22)
        self.assertEqual(len(service.targets()), 22)

    def test_failed_with_rollback_but_no_earlier_deployment_changes_nothing(self):
        """The circuit breaker rolls back to the last deployment that completed; with none there is
        nothing to roll back to, and the refused control leaves the deployment as it was.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html"""
        service = Service()
        service.control("run-tasks", count=1)
        before = self.state(service)
        status, error = service.control_error("finish-deployment", state="FAILED", rollback=True)
        self.assertEqual((status, error), (400, "ECS service `web` has no earlier completed deployment to roll back to"))
        self.assertEqual(self.state(service), before)


if __name__ == "__main__":
    unittest.main()
