"""A blue/green app as blue-green-swapper expects one, for tests and the demo.

``create_app`` builds, through boto3 against the emulator itself: an ECR repository with a first
image, an ALB with one target group per colour, a live route (the listener's default action, or a
rule) forwarding all traffic to blue and tagged with the swap contract, an optional test listener,
an ECS service per colour registered in its target group (blue running and healthy, green at zero),
and optional CloudWatch alarms. ``launch_type`` ``FARGATE`` makes both colours Fargate services
(an ``awsvpc``, FARGATE-compatible task definition of two containers, the VPC's two subnets and a
security group of its own); ``EC2``, the default, keeps them EC2 services. It answers with what exists, read back.
"""

from __future__ import annotations

import boto3

from . import ecr_push, ecs_controls

COLOURS = ("blue", "green")
KNOWN_FIELDS = {
    "app", "cluster", "desired", "test_listener", "use_rule", "alarms", "strategy",
    "health_timeout", "test_wait", "termination_wait", "port", "launch_type",
}
LAUNCH_TYPES = ("EC2", "FARGATE")


class BlueGreenError(ValueError):
    """A request for an app with a missing or malformed field."""


def create_app(endpoint: str, account: str, region: str, spec: dict) -> dict:
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise BlueGreenError(f"unknown field(s): {', '.join(sorted(unknown))}")
    app = spec.get("app")
    if not isinstance(app, str) or not app.replace("-", "").isalnum():
        raise BlueGreenError("field `app` is required: letters, digits and `-`")
    cluster = spec.get("cluster", "prod")
    desired = spec.get("desired", 2)
    if not isinstance(desired, int) or desired < 1:
        raise BlueGreenError("field `desired` must be a whole number of at least 1")
    alarms = spec.get("alarms", [])
    if not isinstance(alarms, list) or not all(isinstance(a, str) for a in alarms):
        raise BlueGreenError("field `alarms` must be a list of alarm names")
    port = spec.get("port", 80)
    launch_type = spec.get("launch_type", "EC2")
    if launch_type not in LAUNCH_TYPES:
        raise BlueGreenError(f"field `launch_type` must be one of {', '.join(LAUNCH_TYPES)}")

    def client(service: str):
        return boto3.client(
            service, region_name=region, endpoint_url=endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    ecr, ec2, elbv2 = client("ecr"), client("ec2"), client("elbv2")
    ecs, cloudwatch = client("ecs"), client("cloudwatch")

    if app not in {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}:
        ecr.create_repository(repositoryName=app)
    first = ecr_push.push(endpoint, account, region, {"repository": app, "tag": "v1"})

    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"{region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab", start=1)
    ]
    alb = elbv2.create_load_balancer(Name=f"{app}-alb", Subnets=subnets, Type="application")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    groups = {
        colour: elbv2.create_target_group(
            Name=f"{app}-{colour}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        for colour in COLOURS
    }
    forward_blue = [{"Type": "forward", "TargetGroupArn": groups["blue"]}]
    if spec.get("use_rule"):
        listener = elbv2.create_listener(
            LoadBalancerArn=alb, Protocol="HTTP", Port=port,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]["ListenerArn"]
        live = elbv2.create_rule(
            ListenerArn=listener, Priority=10,
            Conditions=[{"Field": "path-pattern", "Values": ["/*"]}], Actions=forward_blue,
        )["Rules"][0]["RuleArn"]
    else:
        live = elbv2.create_listener(
            LoadBalancerArn=alb, Protocol="HTTP", Port=port, DefaultActions=forward_blue
        )["Listeners"][0]["ListenerArn"]

    contract = {
        "ops:swap-app": app,
        "ops:swap-blue": f"{cluster}/{app}-blue",
        "ops:swap-green": f"{cluster}/{app}-green",
    }
    optional = {
        "strategy": "ops:swap-strategy",
        "health_timeout": "ops:swap-health-timeout",
        "test_wait": "ops:swap-test-wait",
        "termination_wait": "ops:swap-termination-wait",
    }
    contract.update({tag: str(spec[field]) for field, tag in optional.items() if field in spec})
    if alarms:
        contract["ops:swap-alarms"] = " ".join(alarms)
    elbv2.add_tags(ResourceArns=[live], Tags=[{"Key": k, "Value": v} for k, v in contract.items()])
    test = None
    if spec.get("test_listener"):
        test = elbv2.create_listener(
            LoadBalancerArn=alb, Protocol="HTTP", Port=port + 8000,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["green"]}],
        )["Listeners"][0]["ListenerArn"]
        elbv2.add_tags(
            ResourceArns=[test],
            Tags=[{"Key": "ops:swap-app", "Value": app}, {"Key": "ops:swap-role", "Value": "test"}],
        )

    ecs.create_cluster(clusterName=cluster)
    fargate = launch_type == "FARGATE"
    placement: dict = {"launchType": launch_type}
    task_level: dict = {}
    if fargate:
        group = ec2.create_security_group(GroupName=f"{app}-tasks", Description=f"{app} tasks", VpcId=vpc)["GroupId"]
        placement["networkConfiguration"] = {
            "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [group], "assignPublicIp": "DISABLED"}
        }
        task_level = {"networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024"}
    definition = ecs.register_task_definition(
        family=app,
        **task_level,
        containerDefinitions=[
            {
                "name": "app",
                "image": first["image"],
                "memory": 512,
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "APP_ENV", "value": "prod"}],
            },
            {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", "memory": 64},
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    services = {}
    for colour in COLOURS:
        services[colour] = ecs.create_service(
            cluster=cluster, serviceName=f"{app}-{colour}", taskDefinition=definition,
            desiredCount=desired if colour == "blue" else 0,
            loadBalancers=[{"targetGroupArn": groups[colour], "containerName": "app", "containerPort": 8080}],
            tags=[{"key": "ops:swap-app", "value": app}],
            **placement,
        )["service"]["serviceArn"]
    ecs_controls.finish_deployment(account, region, {"cluster": cluster, "service": f"{app}-blue", "state": "COMPLETED"})

    for name in alarms:
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10.0,
            ComparisonOperator="GreaterThanThreshold",
            Dimensions=[{"Name": "LoadBalancer", "Value": alb.split(":loadbalancer/")[-1]}],
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="seeded healthy")

    return {
        "app": app,
        "cluster": cluster,
        "live_route": live,
        "test_route": test,
        "load_balancer": alb,
        "task_definition": definition,
        "launch_type": launch_type,
        "image": first["image"],
        "digest": first["digest"],
        "alarms": alarms,
        "colours": {
            colour: {"service": f"{app}-{colour}", "service_arn": services[colour], "target_group": groups[colour]}
            for colour in COLOURS
        },
    }
