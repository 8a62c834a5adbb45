"""The demo account: the resources every chapter of ``make demo`` works on.

Created through boto3 against the emulator's own endpoint (so CloudWatch goes through the CBOR
bridge like any client), then read back: the inventory returned is what AWS says exists, not what
was asked for.
"""

from __future__ import annotations

import boto3

from . import blue_green

ALERT_TOPIC = "ops-alerts"
ALERT_QUEUE = "ops-alerts-inbox"
CLUSTER = "prod"
REGISTRY_HOST = "{account}.dkr.ecr.{region}.amazonaws.com"


class DemoSeeder:
    """Seeds one region of the emulator; ``endpoint`` is set once the server has its port."""

    def __init__(self) -> None:
        self.endpoint = ""

    def _client(self, service: str, region: str):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def __call__(self, region: str) -> dict:
        sns, sqs = self._client("sns", region), self._client("sqs", region)
        ecs, ecr = self._client("ecs", region), self._client("ecr", region)
        ec2, elbv2 = self._client("ec2", region), self._client("elbv2", region)
        autoscaling, cloudwatch = self._client("autoscaling", region), self._client("cloudwatch", region)

        topic_arn = sns.create_topic(Name=ALERT_TOPIC)["TopicArn"]
        queue_url = sqs.create_queue(QueueName=ALERT_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

        account = topic_arn.split(":")[4]
        registry = REGISTRY_HOST.format(account=account, region=region)
        ecr.create_repository(repositoryName="web")

        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate("ab", start=1)
        ]

        ecs.create_cluster(clusterName=CLUSTER)
        # (repository, desired count, tag, opt-in tags for deploy-trigger)
        deploy_on_release = [
            {"key": "ops:deploy-repository", "value": "web"},
            {"key": "ops:deploy-tag-pattern", "value": "release-+"},
        ]
        # prod/web runs on Fargate (awsvpc tasks in the VPC's two subnets); prod/worker stays on
        # EC2, to show both. (repository, desired count, tag, opt-in tags, launch type)
        services = {
            "web": ("web", 2, "release-41", deploy_on_release + [
                {"key": "ops:scale-min", "value": "1"}, {"key": "ops:scale-max", "value": "6"},
            ], "FARGATE"),
            "worker": ("web", 1, "release-41", deploy_on_release + [
                {"key": "ops:scale-min", "value": "1"}, {"key": "ops:scale-max", "value": "4"},
            ], "EC2"),
        }
        tasks_group = ec2.create_security_group(GroupName="web-tasks", Description="prod/web tasks", VpcId=vpc)["GroupId"]
        for service, (repository, desired, tag, tags, launch_type) in services.items():
            placement: dict = {"launchType": launch_type}
            task_level: dict = {}
            if launch_type == "FARGATE":
                placement["networkConfiguration"] = {"awsvpcConfiguration": {
                    "subnets": subnets, "securityGroups": [tasks_group], "assignPublicIp": "DISABLED",
                }}
                task_level = {"networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024"}
            family = ecs.register_task_definition(
                family=service,
                **task_level,
                containerDefinitions=[
                    {
                        "name": "app",
                        "image": f"{registry}/{repository}:{tag}",
                        "memory": 512,
                        "essential": True,
                        "portMappings": [{"containerPort": 8080}],
                        "environment": [{"name": "APP_ENV", "value": "prod"}],
                    },
                    {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", "memory": 64},
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            ecs.create_service(
                cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=desired, tags=tags,
                **placement,
            )

        # The blue/green app `shop` on Fargate: blue live behind shop-alb's port 80, green idle;
        # canary swaps gated on the alarm shop-5xx (see blue_green.py).
        shop = blue_green.create_app(self.endpoint, account, region, {
            "app": "shop", "strategy": "canary 10 5m", "termination_wait": "5m", "alarms": ["shop-5xx"],
            "launch_type": "FARGATE",
        })

        image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        template = ec2.create_launch_template(
            LaunchTemplateName="ops-demo", LaunchTemplateData={"ImageId": image_id, "InstanceType": "t4g.small"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        groups = {"workers": (1, 2, 6, []), "bastion": (1, 1, 4, [("ops:eip-pool", "bastion")])}
        for name, (low, desired, high, tags) in groups.items():
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=low, MaxSize=high, DesiredCapacity=desired,
                LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
                VPCZoneIdentifier=",".join(subnets),
                Tags=[
                    {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v,
                     "PropagateAtLaunch": False}
                    for k, v in tags
                ],
            )
        autoscaling.put_lifecycle_hook(
            AutoScalingGroupName="bastion", LifecycleHookName="bastion-launch",
            LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", HeartbeatTimeout=300,
            DefaultResult="ABANDON",
        )

        # CPU alarms that cpu-alarm-scaler acts on: the group `workers` and the ECS service `worker`.
        alarms = (
            ("workers-cpu-high", "AWS/EC2", "AutoScalingGroupName", "workers", "GreaterThanThreshold", 90.0, "asg:workers"),
            ("workers-cpu-low", "AWS/EC2", "AutoScalingGroupName", "workers", "LessThanThreshold", 70.0, "asg:workers"),
            ("worker-cpu-high", "AWS/ECS", "ServiceName", "worker", "GreaterThanThreshold", 90.0, "ecs:prod/worker"),
            ("worker-cpu-low", "AWS/ECS", "ServiceName", "worker", "LessThanThreshold", 70.0, "ecs:prod/worker"),
        )
        for name, namespace, dimension, value, operator, threshold, target in alarms:
            cloudwatch.put_metric_alarm(
                AlarmName=name, Namespace=namespace, MetricName="CPUUtilization", Statistic="Average",
                Dimensions=[{"Name": dimension, "Value": value}], Period=60,
                EvaluationPeriods=5, Threshold=threshold, ComparisonOperator=operator,
                Tags=[{"Key": "ops:scale-target", "Value": target}],
            )

        for _ in range(2):
            allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
            ec2.create_tags(Resources=[allocation], Tags=[{"Key": "ops:eip-pool", "Value": "bastion"}])

        inventory = _inventory(ecs, elbv2, autoscaling, cloudwatch, ec2, topic_arn, queue_url)
        inventory["blue_green_apps"] = [shop]
        return inventory


def _inventory(ecs, elbv2, autoscaling, cloudwatch, ec2, topic_arn: str, queue_url: str) -> dict:
    service_arns = ecs.list_services(cluster=CLUSTER)["serviceArns"]
    services = ecs.describe_services(cluster=CLUSTER, services=service_arns, include=["TAGS"])["services"]
    groups = elbv2.describe_target_groups()["TargetGroups"]
    listeners = [
        listener
        for alb in elbv2.describe_load_balancers()["LoadBalancers"]
        for listener in elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    ]
    return {
        "alert_topic_arn": topic_arn,
        "alert_queue_url": queue_url,
        "cluster": CLUSTER,
        "services": [
            {"name": s["serviceName"], "desired": s["desiredCount"], "task_definition": s["taskDefinition"],
             "launch_type": s.get("launchType"),
             "subnets": s.get("networkConfiguration", {}).get("awsvpcConfiguration", {}).get("subnets", []),
             "tags": {t["key"]: t["value"] for t in s.get("tags", [])}}
            for s in sorted(services, key=lambda s: s["serviceName"])
        ],
        "target_groups": [{"name": g["TargetGroupName"], "arn": g["TargetGroupArn"]} for g in groups],
        "listeners": [
            {"port": l["Port"], "forwards_to": l["DefaultActions"][0].get("TargetGroupArn")} for l in listeners
        ],
        "auto_scaling_groups": [
            {"name": g["AutoScalingGroupName"], "min": g["MinSize"], "desired": g["DesiredCapacity"], "max": g["MaxSize"]}
            for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
        ],
        "alarms": [
            {"name": a["AlarmName"], "metric": a["MetricName"], "operator": a["ComparisonOperator"],
             "threshold": a["Threshold"], "state": a["StateValue"]}
            for a in cloudwatch.describe_alarms()["MetricAlarms"]
        ],
        "eip_pool": [
            {"allocation_id": a["AllocationId"], "public_ip": a["PublicIp"],
             "pool": next((t["Value"] for t in a.get("Tags", []) if t["Key"] == "ops:eip-pool"), None)}
            for a in ec2.describe_addresses()["Addresses"]
        ],
    }
