"""Self-tests of ECS's own blue/green, canary and linear deployments in the emulator, through boto3.

Each test names, in its docstring, the AWS page that says what it checks. One emulator serves this
module on a free loopback port; each test makes its own VPC, cluster and service names.
"""

from __future__ import annotations

import json
import threading
import unittest
import urllib.error
import urllib.request

from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.ecs.exceptions import InvalidParameterException
from ops_emulator import ecs_strategies
from ops_emulator.app import OpsEmulator

import test_ecs_awsvpc as shared
from test_ecs_awsvpc import Vpc, client, fargate_definition, unique


def setUpModule() -> None:
    global SERVER
    app = OpsEmulator(DomainDispatcherApplication(create_backend_app), shared.REGION)
    SERVER = make_server("127.0.0.1", 0, app, threaded=True)
    shared.URL = f"http://127.0.0.1:{SERVER.server_port}"
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()


def tearDownModule() -> None:
    SERVER.shutdown()


class StrategyService:
    """A Fargate service on ``strategy`` behind an ALB rule, its first deployment COMPLETED."""

    def __init__(self, strategy: str, alarms=(), **extra) -> None:
        self.vpc = Vpc()
        self.ecs = client("ecs")
        self.cluster = unique("c")
        self.ecs.create_cluster(clusterName=self.cluster)
        self.family = unique("web")
        self.first = fargate_definition(self.family, "web:1")
        self.name = unique("svc")
        self.made = ecs_strategies.create_service(shared.URL, shared.REGION, {
            "cluster": self.cluster, "service": self.name, "task_definition": self.first,
            "strategy": strategy, "alarms": list(alarms), "network": self.vpc.network()["awsvpcConfiguration"], **extra,
        })
        self.blue, self.green = self.made["targetGroups"]
        # The first deployment, walked stage by stage to its end (its hook calls, if any, answered
        # SUCCEEDED, its pauses continued).
        while True:
            step = self.advance()
            for pause in step["awaiting"]:
                self.ecs.continue_service_deployment(
                    serviceDeploymentArn=step["serviceDeploymentArn"], hookId=pause["hookId"])
            if step["status"] == "SUCCESSFUL":
                break

    def control(self, path: str, **body) -> dict:
        return shared.control(f"/_ops/ecs/{path}", {"cluster": self.cluster, "service": self.name, **body})

    def finish(self, **body) -> dict:
        return self.control("finish-deployment", **body)

    def advance(self, **body) -> dict:
        return self.control("advance-deployment", **body)

    def describe(self) -> dict:
        return self.ecs.describe_services(cluster=self.cluster, services=[self.name])["services"][0]

    def deploy(self, image: str) -> str:
        revision = fargate_definition(self.family, image)
        self.ecs.update_service(cluster=self.cluster, service=self.name, taskDefinition=revision)
        return revision

    def service_deployments(self) -> list[dict]:
        briefs = self.ecs.list_service_deployments(cluster=self.cluster, service=self.name)["serviceDeployments"]
        arns = [b["serviceDeploymentArn"] for b in briefs]
        return self.ecs.describe_service_deployments(serviceDeploymentArns=arns)["serviceDeployments"]

    def weights(self) -> dict[str, int]:
        rule = client("elbv2").describe_rules(RuleArns=[self.made["productionListenerRule"]])["Rules"][0]
        groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
        return {g["TargetGroupArn"]: g["Weight"] for g in groups}

    def targets(self, group: str) -> int:
        return len(client("elbv2").describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"])


class NativeDeploymentTest(unittest.TestCase):
    def test_a_canary_deployment_walks_its_stages_shifting_the_canary_percent_then_the_rest(self):
        """Developer guide, "Amazon ECS canary deployments" (traffic shifts in two phases: first the
        canary percentage, then the rest) and "How Amazon ECS blue/green deployments work" (the
        stages, green in the alternate target group); API reference, ServiceDeployment."""
        app = StrategyService("CANARY", canary={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5})
        config = app.describe()["deploymentConfiguration"]
        self.assertEqual(config["canaryConfiguration"], {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5})
        second = app.deploy("web:2")
        latest = app.service_deployments()[0]
        self.assertEqual((latest["status"], latest["lifecycleStage"]), ("IN_PROGRESS", "PRE_SCALE_UP"))
        self.assertNotIn("rolloutState", app.describe()["deployments"][0],
                         "API reference, Deployment: rolloutState is only returned for rolling updates")
        revision = app.ecs.describe_service_revisions(
            serviceRevisionArns=[latest["targetServiceRevision"]["arn"]])["serviceRevisions"][0]
        self.assertEqual(revision["taskDefinition"], second)
        self.assertEqual(revision["containerImages"][0]["image"], "web:2")

        step = app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        self.assertEqual(step["lifecycleStage"], "PRODUCTION_TRAFFIC_SHIFT")
        self.assertEqual(app.weights(), {app.blue: 90, app.green: 10})
        self.assertEqual((app.targets(app.blue), app.targets(app.green)), (2, 2))
        latest = app.service_deployments()[0]
        self.assertEqual(latest["targetServiceRevision"]["requestedProductionTrafficWeight"], 10.0)
        self.assertEqual(latest["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"], 90.0)

        done = app.finish(state="COMPLETED")
        self.assertEqual(done["event"]["detail"]["eventName"], "SERVICE_DEPLOYMENT_COMPLETED")
        self.assertEqual(done["event"]["detail"]["deploymentId"], app.describe()["deployments"][0]["id"])
        self.assertEqual(app.weights(), {app.blue: 0, app.green: 100})
        self.assertEqual((app.targets(app.blue), app.targets(app.green)), (0, 2))
        service = app.describe()
        self.assertEqual([d["taskDefinition"] for d in service["deployments"]], [second])
        latest = app.service_deployments()[0]
        self.assertEqual((latest["status"], latest["lifecycleStage"]), ("SUCCESSFUL", "CLEAN_UP"))

        # The next deployment's green is the other group: the pair swaps roles.
        app.deploy("web:3")
        app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        self.assertEqual(app.weights(), {app.green: 90, app.blue: 10})

    def test_a_linear_deployment_shifts_in_equal_steps(self):
        """API reference, LinearConfiguration: stepPercent steps until 100 percent."""
        app = StrategyService("LINEAR", linear={"stepPercent": 25.0, "stepBakeTimeInMinutes": 1})
        app.deploy("web:2")
        seen = []
        app.advance(to="POST_TEST_TRAFFIC_SHIFT")
        for _ in range(4):
            before = app.advance()
            self.assertEqual(before["lifecycleStage"], "PRE_PRODUCTION_TRAFFIC_SHIFT")
            seen.append(app.advance()["productionTrafficWeights"])
        shares = [sorted(w.values()) for w in seen]
        self.assertEqual(shares, [[25.0, 75.0], [50.0, 50.0], [25.0, 75.0], [0.0, 100.0]])
        self.assertEqual(app.weights()[app.green], 100)

    def test_an_alarm_rolls_the_deployment_back_to_blue(self):
        """API reference, DeploymentAlarms ("When the alarms are generated, Amazon ECS sets the service
        deployment to failed ... roll back") and ServiceDeployment (alarms.triggeredAlarmNames, rollback)."""
        app = StrategyService("BLUE_GREEN", alarms=[unique("web-5xx")])
        alarm = app.made["alarms"][0]
        second = app.deploy("web:2")
        app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        self.assertEqual(app.weights(), {app.blue: 0, app.green: 100})
        failed = app.finish(state="FAILED", alarm=alarm)
        self.assertEqual(failed["event"]["detail"]["eventName"], "SERVICE_DEPLOYMENT_FAILED")
        self.assertIn(alarm, failed["event"]["detail"]["reason"])
        self.assertEqual(app.weights(), {app.blue: 100, app.green: 0})
        self.assertEqual((app.targets(app.blue), app.targets(app.green)), (2, 0))
        service = app.describe()
        self.assertEqual(service["taskDefinition"], app.first)
        self.assertEqual(service["deployments"][0]["taskDefinition"], app.first)
        latest = app.service_deployments()[0]
        self.assertEqual(latest["status"], "ROLLBACK_SUCCESSFUL")
        self.assertEqual(latest["alarms"]["triggeredAlarmNames"], [alarm])
        self.assertEqual(latest["alarms"]["status"], "TRIGGERED")
        self.assertIn(alarm, latest["rollback"]["reason"])
        self.assertNotEqual(latest["rollback"]["serviceRevisionArn"], latest["targetServiceRevision"]["arn"])
        revision = app.ecs.describe_service_revisions(
            serviceRevisionArns=[latest["targetServiceRevision"]["arn"]])["serviceRevisions"][0]
        self.assertEqual(revision["taskDefinition"], second)

    def test_a_rollback_can_be_caught_in_progress_and_can_fail(self):
        """Developer guide, "View service history using Amazon ECS service deployments":
        ROLLBACK_IN_PROGRESS is ongoing; ROLLBACK_SUCCESSFUL and ROLLBACK_FAILED are completed."""
        app = StrategyService("BLUE_GREEN", alarms=[unique("web-5xx")])
        alarm = app.made["alarms"][0]
        app.deploy("web:2")
        app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        app.finish(state="FAILED", alarm=alarm, rollback_outcome="IN_PROGRESS")
        self.assertEqual(app.service_deployments()[0]["status"], "ROLLBACK_IN_PROGRESS")
        self.assertEqual(app.weights(), {app.blue: 100, app.green: 0})
        self.assertNotEqual(app.describe()["taskDefinition"], app.first, "blue is not primary yet")
        app.finish(state="FAILED", rollback_outcome="SUCCESSFUL")
        self.assertEqual(app.service_deployments()[0]["status"], "ROLLBACK_SUCCESSFUL")
        self.assertEqual(app.describe()["taskDefinition"], app.first)

        app.deploy("web:3")
        app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        app.finish(state="FAILED", alarm=alarm, rollback_outcome="FAILED")
        latest = app.service_deployments()[0]
        self.assertEqual(latest["status"], "ROLLBACK_FAILED")
        self.assertEqual(app.weights(), {app.blue: 0, app.green: 100}, "traffic stays where ECS left it")

    def test_list_service_deployments_filters_by_creation_time(self):
        """API reference, ListServiceDeployments and CreatedAt (after / before)."""
        app = StrategyService("BLUE_GREEN")
        app.deploy("web:2")
        everything = app.ecs.list_service_deployments(cluster=app.cluster, service=app.name)["serviceDeployments"]
        self.assertEqual(len(everything), 2)
        newest = max(d["createdAt"] for d in everything)
        later = app.ecs.list_service_deployments(cluster=app.cluster, service=app.name,
                                                 createdAt={"after": newest})["serviceDeployments"]
        self.assertEqual([d["createdAt"] for d in later], [newest])

    def test_a_new_deployment_stops_the_one_in_progress(self):
        """Developer guide, "View service history using Amazon ECS service deployments": STOPPED."""
        app = StrategyService("BLUE_GREEN")
        app.deploy("web:2")
        app.advance(to="SCALE_UP")
        app.deploy("web:3")
        statuses = [d["status"] for d in app.service_deployments()]
        self.assertEqual(statuses[:2], ["IN_PROGRESS", "STOPPED"])
        self.assertEqual(app.targets(app.green), 0)
        self.assertEqual(app.weights(), {app.blue: 100, app.green: 0})


HOOK = {"hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:swapper",
        "roleArn": "arn:aws:iam::123456789012:role/ecs-calls-hooks",
        "lifecycleStages": ["POST_SCALE_UP", "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"],
        "hookDetails": {"team": "web"}}


class LifecycleHookTest(unittest.TestCase):
    def test_each_configured_stage_yields_the_call_ecs_makes_and_a_rollback_calls_the_shift_hooks_again(self):
        """Developer guide, "Lambda hooks for Amazon ECS service deployments": the payload
        (executionId, lifecycleStage, resourceArn, executionDetails with weights by revision ARN,
        hookDetails) and the rollback re-invocation at PRODUCTION_TRAFFIC_SHIFT with green at 0."""
        app = StrategyService("CANARY", alarms=[unique("web-5xx")], lifecycle_hooks=[HOOK],
                              canary={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5})
        app.deploy("web:2")
        status, error = shared.control_error("/_ops/ecs/finish-deployment",
                                             {"cluster": app.cluster, "service": app.name, "state": "COMPLETED"})
        self.assertEqual(status, 400)
        self.assertIn("lifecycle hooks ahead (POST_SCALE_UP, PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT)", error)
        scaled = app.advance(to="POST_SCALE_UP")
        self.assertEqual([c["payload"]["lifecycleStage"] for c in scaled["hookCalls"]], ["POST_SCALE_UP"])
        call = scaled["hookCalls"][0]
        self.assertEqual(call["hookTargetArn"], HOOK["hookTargetArn"])
        payload = call["payload"]
        deployment = app.service_deployments()[0]
        self.assertEqual(payload["resourceArn"], deployment["serviceDeploymentArn"])
        self.assertEqual(payload["executionDetails"]["targetServiceRevisionArn"], deployment["targetServiceRevision"]["arn"])
        self.assertEqual(payload["executionDetails"]["productionTrafficWeights"], {})
        self.assertEqual(payload["hookDetails"], {"team": "web"})
        revision = app.ecs.describe_service_revisions(
            serviceRevisionArns=[deployment["targetServiceRevision"]["arn"]])["serviceRevisions"][0]
        self.assertEqual([b["targetGroupArn"] for b in revision["resolvedConfiguration"]["loadBalancers"]], [app.green])

        # ECS waits at a stage for its hook's answer: a walk never passes a call not yet delivered.
        status, error = shared.control_error("/_ops/ecs/advance-deployment",
                                             {"cluster": app.cluster, "service": app.name,
                                              "to": "PRODUCTION_TRAFFIC_SHIFT"})
        self.assertEqual(status, 400)
        self.assertIn("ECS calls a lifecycle hook at PRE_PRODUCTION_TRAFFIC_SHIFT and waits for its answer there", error)
        self.assertEqual(app.service_deployments()[0]["lifecycleStage"], "POST_SCALE_UP", "nothing moved")
        shift = app.advance(to="PRE_PRODUCTION_TRAFFIC_SHIFT")["hookCalls"]
        shift += app.advance(to="PRODUCTION_TRAFFIC_SHIFT")["hookCalls"]
        self.assertEqual([c["payload"]["lifecycleStage"] for c in shift],
                         ["PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"])
        green = deployment["targetServiceRevision"]["arn"]
        self.assertEqual(shift[0]["payload"]["executionDetails"]["productionTrafficWeights"][green], 0)
        self.assertEqual(shift[1]["payload"]["executionDetails"]["productionTrafficWeights"][green], 10)

        back = app.finish(state="FAILED", reason="Service deployment rolled back because a lifecycle hook failed.")
        self.assertEqual([c["payload"]["lifecycleStage"] for c in back["hookCalls"]], ["PRODUCTION_TRAFFIC_SHIFT"])
        weights = back["hookCalls"][0]["payload"]["executionDetails"]["productionTrafficWeights"]
        self.assertEqual(weights[green], 0)
        self.assertEqual(sorted(weights.values()), [0, 100])

    def test_a_pause_hook_at_a_traffic_shift_and_a_lambda_hook_without_its_role_are_refused(self):
        """Developer guide, "Pause hooks" ("Pause hooks cannot be configured at the TEST_TRAFFIC_SHIFT or
        PRODUCTION_TRAFFIC_SHIFT stages") and API reference, DeploymentLifecycleHook."""
        app = StrategyService("BLUE_GREEN")
        for hook, text in (
            ({"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]},
             "Invalid lifecycle stage provided for Pause Hook"),
            ({"hookTargetArn": HOOK["hookTargetArn"], "lifecycleStages": ["POST_SCALE_UP"]}, "roleArn"),
        ):
            with self.assertRaises(ClientError) as refused:
                app.ecs.update_service(cluster=app.cluster, service=app.name, deploymentConfiguration={
                    "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5, "lifecycleHooks": [hook]})
            self.assertIn(text, str(refused.exception))
        self.assertNotIn("lifecycleHooks", app.describe()["deploymentConfiguration"])


class NativeConfigurationTest(unittest.TestCase):
    def test_a_non_rolling_strategy_needs_advanced_configuration_and_nothing_is_created_without_it(self):
        """Developer guide, "Troubleshooting Amazon ECS blue/green deployments": "advancedConfiguration
        field is required for all loadBalancers when using a non-ROLLING deployment strategy"."""
        vpc, ecs = Vpc(), client("ecs")
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        revision = fargate_definition(unique("web"))
        group = vpc.target_group()
        with self.assertRaises(ClientError) as refused:
            ecs.create_service(
                cluster=cluster, serviceName="web", taskDefinition=revision, desiredCount=1,
                launchType="FARGATE", networkConfiguration=vpc.network(),
                deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5},
                loadBalancers=[{"targetGroupArn": group, "containerName": "app", "containerPort": 80}],
            )
        self.assertIn("advancedConfiguration field is required for all loadBalancers", str(refused.exception))
        self.assertEqual(ecs.list_services(cluster=cluster)["serviceArns"], [])

    def test_malformed_fields_and_a_blue_green_without_bake_time_are_refused_not_a_server_error(self):
        """API reference, DeploymentConfiguration: bakeTimeInMinutes "You must provide this parameter
        when you use the BLUE_GREEN deployment strategy"; a field of the wrong type is a client error."""
        app = StrategyService("BLUE_GREEN")
        with self.assertRaises(ClientError) as refused:
            app.ecs.update_service(cluster=app.cluster, service=app.name,
                                   deploymentConfiguration={"strategy": "BLUE_GREEN"})
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterException")
        self.assertIn("bakeTimeInMinutes is required", str(refused.exception))
        # boto3 and the Rust SDK refuse these before sending; a hand-made request reaches the check.
        for config, text in (
            ({"strategy": "CANARY", "canaryConfiguration": "10%"}, "canaryConfiguration must be an object"),
            ({"strategy": "LINEAR", "linearConfiguration": [10]}, "linearConfiguration must be an object"),
            ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5, "alarms": "web-5xx"}, "alarms must be an object"),
            ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5, "lifecycleHooks": ["x"]}, "list of objects"),
        ):
            with self.assertRaises(InvalidParameterException) as refused:
                ecs_strategies.check_configuration(None, config, [])
            self.assertIn(text, refused.exception.message)

    def test_a_request_with_a_member_of_the_wrong_type_is_a_400_that_changes_nothing(self):
        """A member whose JSON type is not the model's is a client error (400 SerializationException),
        never a server error (found by an independent test: moto's parser answered 500)."""
        app = StrategyService("BLUE_GREEN")
        before = app.describe()["deploymentConfiguration"]
        request = urllib.request.Request(
            shared.URL + "/", method="POST",
            data=json.dumps({"cluster": app.cluster, "service": app.name,
                             "deploymentConfiguration": {"strategy": "CANARY", "canaryConfiguration": "10%"}}).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.UpdateService",
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20261201/{shared.REGION}/ecs/aws4_request, "
                                 "SignedHeaders=host, Signature=x",
            },
        )
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        self.assertEqual(refused.exception.code, 400)
        answer = json.loads(refused.exception.read())
        self.assertEqual(answer["__type"], "SerializationException")
        self.assertIn("deploymentConfiguration.canaryConfiguration", answer["message"])
        self.assertEqual(app.describe()["deploymentConfiguration"], before)

    def test_canary_and_linear_fields_are_checked_against_their_ranges(self):
        """API reference, CanaryConfiguration (canaryPercent: multiples of 0.1 from 0.1 to 100.0) and
        LinearConfiguration (stepPercent: 3.0 to 100.0)."""
        app = StrategyService("BLUE_GREEN")
        for config, field in (
            ({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0.05}}, "canaryPercent"),
            ({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.0}}, "stepPercent"),
            ({"strategy": "SIDEWAYS"}, "strategy"),
        ):
            with self.assertRaises(ClientError) as refused:
                app.ecs.update_service(cluster=app.cluster, service=app.name, deploymentConfiguration=config)
            self.assertIn(field, str(refused.exception))
        self.assertEqual(app.describe()["deploymentConfiguration"]["strategy"], "BLUE_GREEN")

    def test_a_rolling_service_has_no_stages_to_walk(self):
        """The controls say what a rolling service takes instead."""
        vpc, ecs = Vpc(), client("ecs")
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=fargate_definition(unique("web")),
                           desiredCount=1, launchType="FARGATE",
                           networkConfiguration=vpc.network())
        status, error = shared.control_error("/_ops/ecs/advance-deployment", {"cluster": cluster, "service": "web"})
        self.assertEqual(status, 400)
        self.assertIn("ROLLING deployments, which have no lifecycle stages", error)


PAUSE = {"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
         "timeoutConfiguration": {"timeoutInMinutes": 10, "action": "ROLLBACK"}}


class PauseHookTest(unittest.TestCase):
    """Developer guide, "Pause hooks for Amazon ECS service deployments", its hook state change
    events ("Amazon ECS service deployment hook state change events") and the API reference,
    ContinueServiceDeployment and StopServiceDeployment."""

    def paused(self) -> tuple[StrategyService, dict]:
        app = StrategyService("BLUE_GREEN", lifecycle_hooks=[PAUSE])
        app.deploy("web:2")
        return app, app.advance(to="POST_TEST_TRAFFIC_SHIFT")

    def test_a_pause_hook_waits_announcing_itself_until_continued(self):
        app, answer = self.paused()
        [event] = answer["hookEvents"]
        self.assertEqual((event["detail-type"], event["detail"]["eventName"], event["detail"]["hookType"]),
                         ("ECS Hook State Change", "HOOK_AWAITING_ACTION", "PAUSE"))
        self.assertEqual(event["detail"]["lifecycleStage"], "POST_TEST_TRAFFIC_SHIFT")
        deployment = app.service_deployments()[0]
        self.assertEqual(event["resources"], [deployment["serviceDeploymentArn"]])
        [hook] = deployment["lifecycleHookDetails"]
        self.assertEqual((hook["hookId"], hook["targetType"], hook["status"], hook["timeoutAction"]),
                         (event["detail"]["hookId"], "PAUSE", "AWAITING_ACTION", "ROLLBACK"))
        self.assertRegex(hook["hookId"], r"^ecs-pause-[A-Za-z0-9_]+$")
        status, error = shared.control_error("/_ops/ecs/advance-deployment",
                                             {"cluster": app.cluster, "service": app.name})
        self.assertEqual(status, 400)
        self.assertIn("paused at POST_TEST_TRAFFIC_SHIFT", error)
        app.ecs.continue_service_deployment(serviceDeploymentArn=deployment["serviceDeploymentArn"],
                                            hookId=hook["hookId"], action="CONTINUE")
        [hook] = app.service_deployments()[0]["lifecycleHookDetails"]
        self.assertEqual(hook["status"], "SUCCEEDED")
        done = app.advance(to="CLEAN_UP")
        self.assertEqual([e["detail"]["eventName"] for e in done["hookEvents"]], ["HOOK_SUCCEEDED"])
        self.assertEqual(done["status"], "SUCCESSFUL")

    def test_continue_with_rollback_rolls_back_and_bad_calls_change_nothing(self):
        app, _ = self.paused()
        deployment = app.service_deployments()[0]
        arn, hook = deployment["serviceDeploymentArn"], deployment["lifecycleHookDetails"][0]["hookId"]
        for kwargs, code, text in [
            ({"serviceDeploymentArn": arn, "hookId": "pause-1"}, "InvalidParameterException",
             "hookId must follow the format"),
            ({"serviceDeploymentArn": arn, "hookId": "ecs-pause-other"}, "InvalidParameterException",
             "either completed, unavailable, or not associated"),
            ({"serviceDeploymentArn": arn + "x", "hookId": hook}, "ServiceDeploymentNotFoundException",
             "does not exist"),
            ({"serviceDeploymentArn": arn, "hookId": hook, "action": "SKIP"}, "InvalidParameterException",
             "CONTINUE or ROLLBACK"),
        ]:
            with self.assertRaises(ClientError) as caught:
                app.ecs.continue_service_deployment(**kwargs)
            self.assertEqual(caught.exception.response["Error"]["Code"], code)
            self.assertIn(text, caught.exception.response["Error"]["Message"])
        self.assertEqual(app.service_deployments()[0]["lifecycleHookDetails"][0]["status"], "AWAITING_ACTION")
        app.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook, action="ROLLBACK")
        rolling = app.service_deployments()[0]
        self.assertEqual((rolling["status"], rolling["lifecycleHookDetails"][0]["status"]),
                         ("ROLLBACK_IN_PROGRESS", "FAILED"))
        self.assertEqual(app.weights()[app.blue], 100)
        ended = app.finish(state="FAILED")
        self.assertEqual(ended["status"], "ROLLBACK_SUCCESSFUL")
        self.assertEqual(ended["event"]["detail"]["eventName"], "SERVICE_DEPLOYMENT_FAILED")
        with self.assertRaises(ClientError) as caught:
            app.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook)
        self.assertIn("terminal states", caught.exception.response["Error"]["Message"])

    def test_a_walk_past_a_pause_is_refused_before_it_moves(self):
        app = StrategyService("BLUE_GREEN", lifecycle_hooks=[PAUSE])
        app.deploy("web:2")
        status, error = shared.control_error("/_ops/ecs/advance-deployment",
                                             {"cluster": app.cluster, "service": app.name, "to": "CLEAN_UP"})
        self.assertEqual(status, 400)
        self.assertIn("a pause hook at POST_TEST_TRAFFIC_SHIFT stops the deployment there", error)
        self.assertEqual(app.service_deployments()[0]["lifecycleStage"], "PRE_SCALE_UP")

    def test_a_pause_before_each_canary_step_holds_the_traffic_where_it_is(self):
        """Developer guide, "Pause hooks": "For linear and canary deployments, pause hooks configured at
        PRE_PRODUCTION_TRAFFIC_SHIFT are invoked at each traffic shift step. Each invocation generates
        a unique hookId, and you must call ContinueServiceDeployment for each one." """
        app = StrategyService("CANARY", canary={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
                              lifecycle_hooks=[{"targetType": "PAUSE", "lifecycleStages": ["PRE_PRODUCTION_TRAFFIC_SHIFT"]}])
        app.deploy("web:2")
        before = app.weights()
        first = app.advance(to="PRE_PRODUCTION_TRAFFIC_SHIFT")
        self.assertEqual(app.weights(), before, "nothing shifts while ECS waits before the step")
        self.assertEqual(sorted(before.values()), [100], "the first deployment took all the traffic")
        arn = first["serviceDeploymentArn"]
        app.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=first["awaiting"][0]["hookId"])
        canary = app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        self.assertEqual(sorted(app.weights().values()), [10, 90])
        second = app.advance(to="PRE_PRODUCTION_TRAFFIC_SHIFT")
        self.assertNotEqual(second["awaiting"][0]["hookId"], first["awaiting"][0]["hookId"])
        self.assertEqual(sorted(app.weights().values()), [10, 90])
        self.assertEqual(canary["serviceDeploymentArn"], arn)

    def test_stop_with_rollback_requests_a_rollback_of_a_running_deployment(self):
        app = StrategyService("CANARY", canary={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5})
        app.deploy("web:2")
        app.advance(to="PRODUCTION_TRAFFIC_SHIFT")
        arn = app.service_deployments()[0]["serviceDeploymentArn"]
        with self.assertRaises(ClientError) as caught:
            app.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ABORT")
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidParameterException")
        self.assertEqual(app.service_deployments()[0]["status"], "IN_PROGRESS")
        app.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
        stopped = app.service_deployments()[0]
        self.assertEqual(stopped["status"], "ROLLBACK_REQUESTED")
        self.assertIn("stopped by a user", stopped["rollback"]["reason"])
        self.assertEqual(app.weights()[app.blue], 100)
        self.assertEqual(app.finish(state="FAILED")["status"], "ROLLBACK_SUCCESSFUL")
        with self.assertRaises(ClientError) as caught:
            app.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
        self.assertIn("terminal states", caught.exception.response["Error"]["Message"])


if __name__ == "__main__":
    unittest.main()
