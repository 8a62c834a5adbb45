//! Every function fed the sample events AWS publishes for its triggers, not only ours: the
//! fixtures of the `aws_lambda_events` crate (read where cargo unpacked the crate, never copied
//! here) and the samples printed in AWS's guides (below, as printed, each under its page).
//!
//! One table: sample, function, what the emulator holds first, and the specific outcome (handled,
//! with what was done; ignored, with the reason; or the exact error). Which function gets a
//! sample follows sam/template.yaml: each function's EventBridge rules and schedule, plus the
//! alarm action that invokes cpu-alarm-scaler directly. Fixtures that no rule routes to any
//! function are listed in [`NOT_ROUTED`] with the reason, and a test checks that every fixture of
//! the families the functions take is in one list or the other, so a new fixture in a crate
//! upgrade is not silently skipped.
//!
//! Samples of the guides that no rule routes, and so are not rows: ECR `DELETE` and the
//! pull-through-cache and scan events (deploy-trigger's rule takes `ECR Image Action` with
//! `PUSH` and `SUCCESS`), ECS `SERVICE_DEPLOYMENT_IN_PROGRESS` (its rule takes COMPLETED and
//! FAILED), CloudWatch `Alarm Configuration Change` (the scaler's rule takes `Alarm State Change`
//! into ALARM).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricDataQuery, StateValue, Statistic, Tag};
use lambda_runtime::Diagnostic;
use ops_core::alert::MemoryAlerts;
use ops_core::aws::iam::IamSimulator;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_core::Error;
use ops_e2e::emulator::workspace_root;
use ops_e2e::fixtures::{self, ACCOUNT, REGISTRY};
use ops_e2e::servers::OpenPort;
use ops_e2e::Emulator;
use serde_json::{json, Value};

/// The clock of chat-style invocations; events decide on their own `time`.
const NOW: u64 = 1_795_000_000;

/// Where a sample comes from.
#[derive(Debug, Clone, Copy)]
enum Sample {
    /// A fixture of the `aws_lambda_events` crate, by file name.
    Fixture(&'static str),
    /// A sample printed in an AWS guide: its title there and the JSON.
    Doc(&'static str, &'static str),
}

impl Sample {
    fn name(&self) -> &'static str {
        match self {
            Sample::Fixture(file) => file,
            Sample::Doc(title, _) => title,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    DeployTrigger,
    BlueGreenSwapper,
    CpuAlarmScaler,
    LegacyHealthMonitor,
    BastionEipAssociator,
}

/// What the emulator holds before a row runs (besides what each function's world starts with).
#[derive(Debug, Clone, Copy)]
enum Given {
    /// A metric alarm on CPU: name, threshold (greater than), tags, and the datapoint that put it
    /// in ALARM.
    Cpu(
        &'static str,
        f64,
        &'static [(&'static str, &'static str)],
        f64,
    ),
    /// A metric alarm on an anomaly-detection band (no static threshold), in ALARM, with tags.
    AnomalyBand(&'static str, &'static [(&'static str, &'static str)]),
    /// A composite alarm: name, rule, tags.
    Composite(
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    ),
    /// deploy-trigger recorded starting this deployment on default/servicetest (its
    /// `ops:deploy-in-flight` tag), so the guide's events are about one of the service's deployments.
    Started(&'static str),
}

/// The outcome a row asserts.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// The handler answered `status`; each (JSON pointer, JSON text) holds in the answer, and the
    /// alerts of these event types were sent, in this order.
    Handled {
        status: &'static str,
        fields: &'static [(&'static str, &'static str)],
        alerts: &'static [&'static str],
    },
    /// The handler answered `ignored` with exactly this reason, and sent no alert.
    Ignored(&'static str),
    /// The handler failed: Lambda's `errorType` and `errorMessage`, exactly; no alert.
    Failed(&'static str, &'static str),
}

struct Row {
    sample: Sample,
    function: Function,
    given: &'static [Given],
    outcome: Outcome,
}

const SCALE_WORKERS: &[(&str, &str)] = &[("ops:scale-target", "asg:workers")];
const SCALE_BATCH: &[(&str, &str)] = &[("ops:scale-target", "asg:batch")];
const NO_TAGS: &[(&str, &str)] = &[];

/// The table. Within one function the rows run in this order against one emulator and touch
/// different resources; the scaler's schedule row comes before any alarm exists, and the
/// bastion's lifecycle row before its schedule row, which then finds the address still free.
const ROWS: &[Row] = &[
    // cpu-alarm-scaler: rule `Reevaluate` (rate 1 minute), rule `AlarmInAlarm` (every alarm of
    // the account entering ALARM) and the alarm's own Lambda action.
    Row {
        sample: Sample::Fixture("example-eventbridge-schedule.json"),
        function: Function::CpuAlarmScaler,
        given: &[],
        outcome: Outcome::Handled {
            status: "reevaluated",
            fields: &[("/alarms", "[]"), ("/overrides_ended", "[]"), ("/problems", "[]")],
            alerts: &[],
        },
    },
    Row {
        sample: Sample::Fixture("example-cloudwatch-alarm-metric.json"),
        function: Function::CpuAlarmScaler,
        given: &[Given::Cpu("lambda-demo-metric-alarm", 5.0, SCALE_WORKERS, 7.5)],
        outcome: Outcome::Handled {
            status: "scaled",
            fields: &[
                ("/alarm", r#""lambda-demo-metric-alarm""#),
                ("/target", r#""asg:workers""#),
                ("/scaling/from", "2"),
                ("/scaling/to", "3"),
            ],
            alerts: &["scaling.out"],
        },
    },
    Row {
        sample: Sample::Doc("State change for a single-metric alarm", CW_SINGLE_METRIC),
        function: Function::CpuAlarmScaler,
        given: &[Given::Cpu("ServerCpuTooHigh", 50.0, SCALE_BATCH, 99.5)],
        outcome: Outcome::Handled {
            status: "scaled",
            fields: &[
                ("/alarm", r#""ServerCpuTooHigh""#),
                ("/target", r#""asg:batch""#),
                ("/scaling/from", "2"),
                ("/scaling/to", "3"),
            ],
            alerts: &["scaling.out"],
        },
    },
    Row {
        sample: Sample::Doc("State change for a metric math alarm", CW_METRIC_MATH),
        function: Function::CpuAlarmScaler,
        given: &[Given::Cpu(
            "TotalNetworkTrafficTooHigh",
            10_000.0,
            NO_TAGS,
            45_628.0,
        )],
        outcome: Outcome::Ignored("alarm TotalNetworkTrafficTooHigh has no `ops:scale-target` tag"),
    },
    Row {
        sample: Sample::Doc("State change for an anomaly detection alarm", CW_ANOMALY),
        function: Function::CpuAlarmScaler,
        given: &[Given::AnomalyBand("EC2 CPU Utilization Anomaly", SCALE_WORKERS)],
        outcome: Outcome::Failed(
            "NonRetryable.Refused",
            "refused: alarm EC2 CPU Utilization Anomaly has no static threshold (anomaly-detection alarms are not supported)",
        ),
    },
    Row {
        sample: Sample::Doc(
            "State change for a composite alarm with a suppressor alarm",
            CW_COMPOSITE_WITH_SUPPRESSOR,
        ),
        function: Function::CpuAlarmScaler,
        given: &[Given::Composite(
            "ServiceAggregatedAlarm",
            "ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)",
            NO_TAGS,
        )],
        outcome: Outcome::Ignored(
            "alarm ServiceAggregatedAlarm is a composite alarm and has no `ops:scale-target` tag",
        ),
    },
    Row {
        // The guide's sample of the row above with `detail` renamed `alarmData` (the scaler reads
        // either), for the same composite alarm.
        sample: Sample::Fixture("example-cloudwatch-alarm-composite-with-suppressor-alarm.json"),
        function: Function::CpuAlarmScaler,
        given: &[],
        outcome: Outcome::Ignored(
            "alarm ServiceAggregatedAlarm is a composite alarm and has no `ops:scale-target` tag",
        ),
    },
    Row {
        sample: Sample::Fixture("example-cloudwatch-alarm-composite.json"),
        function: Function::CpuAlarmScaler,
        given: &[Given::Composite(
            "CompositeDemo.Main",
            "ALARM(CompositeDemo.FirstChild) OR ALARM(CompositeDemo.SecondChild)",
            SCALE_WORKERS,
        )],
        outcome: Outcome::Failed(
            "NonRetryable.Refused",
            "refused: alarm CompositeDemo.Main is a composite alarm (rule `ALARM(CompositeDemo.FirstChild) \
             OR ALARM(CompositeDemo.SecondChild)`): it has no metric, threshold or datapoint to choose a \
             step from, so its `ops:scale-target` = `asg:workers` is not acted on; put the scaling tags \
             on the metric alarm it combines instead",
        ),
    },
    // deploy-trigger: rule `ImagePushed` (ECR Image Action, PUSH, SUCCESS) and rule
    // `DeploymentFinished` (ECS Deployment State Change, COMPLETED or FAILED). Its world manages
    // cluster `default` with service `servicetest` opted in for `my-repository-name`.
    Row {
        sample: Sample::Doc("Event for a completed image push", ECR_PUSH),
        function: Function::DeployTrigger,
        given: &[],
        // The guide's digest is a placeholder of 60 hex digits; a sha256 digest has 64.
        outcome: Outcome::Failed(
            "NonRetryable.ImageReferenceError",
            "sha256 digest has 60 hex digits; it must have 64",
        ),
    },
    // Before deploy-trigger knows the guide's deployment ecs-svc/123 as one of the service's, an
    // event about it is ignored, never alerted (issue "Event order", item 3).
    Row {
        sample: Sample::Doc("Example service deployment failed event", ECS_FAILED),
        function: Function::DeployTrigger,
        given: &[],
        outcome: Outcome::Ignored("deployment ecs-svc/123 is not one of default/servicetest's"),
    },
    // Once it recorded starting it, the guide's events are judged against ECS's own state.
    Row {
        sample: Sample::Doc("Example service deployment completed event", ECS_COMPLETED),
        function: Function::DeployTrigger,
        given: &[Given::Started("ecs-svc/123")],
        outcome: Outcome::Handled {
            status: "no_change",
            fields: &[(
                "/notes",
                r#"["default/servicetest: the event says deployment ecs-svc/123 completed, but the service does not show it COMPLETED; not reported"]"#,
            )],
            alerts: &[],
        },
    },
    Row {
        sample: Sample::Doc("Example service deployment failed event", ECS_FAILED),
        function: Function::DeployTrigger,
        given: &[Given::Started("ecs-svc/123")],
        // ECS lists no deployment ecs-svc/123 any more: the service's PRIMARY is what it rolled
        // back to.
        outcome: Outcome::Handled {
            status: "recorded",
            fields: &[
                ("/outcome/service", r#""default/servicetest""#),
                ("/outcome/deployment_id", r#""ecs-svc/123""#),
                ("/outcome/succeeded", "false"),
                (
                    "/outcome/reason",
                    r#""ECS deployment circuit breaker: task failed to start.""#,
                ),
                (
                    "/outcome/rolled_back_to",
                    r#""arn:aws:ecs:us-east-1:123456789012:task-definition/servicetest:1""#,
                ),
            ],
            alerts: &["deployment.failed"],
        },
    },
    // blue-green-swapper: rule `Advance` (rate 1 minute). Its world has app `shop`, no swap.
    Row {
        sample: Sample::Fixture("example-eventbridge-schedule.json"),
        function: Function::BlueGreenSwapper,
        given: &[],
        outcome: Outcome::Handled {
            status: "advanced",
            fields: &[("/apps", "[]")],
            alerts: &[],
        },
    },
    // legacy-health-monitor: rule `Check` (rate 1 minute). Its world has one TCP target that
    // accepts connections.
    Row {
        sample: Sample::Fixture("example-eventbridge-schedule.json"),
        function: Function::LegacyHealthMonitor,
        given: &[],
        outcome: Outcome::Handled {
            status: "checked",
            fields: &[
                ("/checked", "1"),
                ("/healthy_now", "1"),
                ("/down", "[]"),
                ("/changes", "[]"),
            ],
            alerts: &[],
        },
    },
    // bastion-eip-associator: rule `BastionLaunching` (EC2 Instance-launch Lifecycle Action of the
    // listed groups), rule `StandaloneBastionRunning` (EC2 state `running`), rule `Reconcile`
    // (rate 5 minutes). Its world lists group `my-asg` (pool `bastion`, one free address, hook
    // `my-lifecycle-hook`) with one running instance that has no address yet.
    Row {
        sample: Sample::Fixture("example-autoscaling-event-lifecycle-action.json"),
        function: Function::BastionEipAssociator,
        given: &[],
        // The sample's placeholder instance is in no group and unknown to EC2: a launch that is
        // no longer held anywhere is not touched (no address moves), and the next row finds the
        // address still free.
        outcome: Outcome::Handled {
            status: "already_completed",
            fields: &[(
                "/reason",
                r#""i-1234567890abcdef0 is not in group my-asg and is unknown to EC2""#,
            )],
            alerts: &[],
        },
    },
    Row {
        sample: Sample::Fixture("example-eventbridge-schedule.json"),
        function: Function::BastionEipAssociator,
        given: &[],
        outcome: Outcome::Handled {
            status: "reconciled",
            fields: &[
                ("/bastions", "1"),
                ("/repaired/0/secured/outcome", r#""associated""#),
            ],
            alerts: &["eip.drift-repaired"],
        },
    },
];

/// Fixtures of the families above that no function's rule routes, with the reason.
const NOT_ROUTED: &[(&str, &str)] = &[
    (
        "example-cloudwatch-alarm-sns-payload-single-metric.json",
        "an SNS notification: no function subscribes to SNS (cpu-alarm-scaler takes EventBridge and the alarm's Lambda action)",
    ),
    (
        "example-cloudwatch-alarm-sns-payload-multiple-metrics.json",
        "an SNS notification: no function subscribes to SNS (cpu-alarm-scaler takes EventBridge and the alarm's Lambda action)",
    ),
    (
        "example-autoscaling-event-launch-successful.json",
        "`EC2 Instance Launch Successful`: bastion-eip-associator's rule takes `EC2 Instance-launch Lifecycle Action` only",
    ),
    (
        "example-autoscaling-event-launch-unsuccessful.json",
        "`EC2 Instance Launch Unsuccessful`: bastion-eip-associator's rule takes `EC2 Instance-launch Lifecycle Action` only",
    ),
    (
        "example-autoscaling-event-terminate-action.json",
        "`EC2 Instance-terminate Lifecycle Action`: bastion-eip-associator's rule takes `EC2 Instance-launch Lifecycle Action` only",
    ),
    (
        "example-autoscaling-event-terminate-successful.json",
        "`EC2 Instance Terminate Successful`: bastion-eip-associator's rule takes `EC2 Instance-launch Lifecycle Action` only",
    ),
    (
        "example-autoscaling-event-terminate-unsuccessful.json",
        "`EC2 Instance Terminate Unsuccessful`: bastion-eip-associator's rule takes `EC2 Instance-launch Lifecycle Action` only",
    ),
    (
        "example-eventbridge-event-obj.json",
        "`EC2 Instance State-change Notification` to `pending`: bastion-eip-associator's rule takes state `running` only",
    ),
    (
        "example-ecr-image-scan-event.json",
        "`ECR Image Scan`: deploy-trigger's rule takes `ECR Image Action` (PUSH, SUCCESS) only",
    ),
    (
        "example-ecr-image-scan-event-with-missing-severities.json",
        "`ECR Image Scan`: deploy-trigger's rule takes `ECR Image Action` (PUSH, SUCCESS) only",
    ),
];

/// The fixture families of the triggers the functions have (EventBridge schedules, CloudWatch
/// alarms, Auto Scaling, EC2 and ECR events).
const FAMILIES: &[&str] = &[
    "example-cloudwatch-alarm-",
    "example-autoscaling-event-",
    "example-eventbridge-",
    "example-ecr-",
];

// ---- Samples from AWS's guides, as printed there ----

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
// "State change for a single-metric alarm"
const CW_SINGLE_METRIC: &str = r#"{
    "version": "0",
    "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
    "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch",
    "account": "123456789012",
    "time": "2019-10-02T17:04:40Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"
    ],
    "detail": {
        "alarmName": "ServerCpuTooHigh",
        "configuration": {
            "description": "Goes into alarm when server CPU utilization is too high!",
            "metrics": [
                {
                    "id": "30b6c6b2-a864-43a2-4877-c09a1afc3b87",
                    "metricStat": {
                        "metric": {
                            "dimensions": {
                                "InstanceId": "i-12345678901234567"
                            },
                            "name": "CPUUtilization",
                            "namespace": "AWS/EC2"
                        },
                        "period": 300,
                        "stat": "Average"
                    },
                    "returnData": true
                }
            ]
        },
        "previousState": {
            "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.0666851903306472 (01/10/19 13:46:00)] was not greater than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition).",
            "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-01T13:56:40.985+0000\",\"startDate\":\"2019-10-01T13:46:00.000+0000\",\"statistic\":\"Average\",\"period\":300,\"recentDatapoints\":[0.0666851903306472],\"threshold\":50.0}",
            "timestamp": "2019-10-01T13:56:40.987+0000",
            "value": "OK"
        },
        "state": {
            "reason": "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).",
            "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-02T17:04:40.985+0000\",\"startDate\":\"2019-10-02T16:59:00.000+0000\",\"statistic\":\"Average\",\"period\":300,\"recentDatapoints\":[99.50160229693434],\"threshold\":50.0}",
            "timestamp": "2019-10-02T17:04:40.989+0000",
            "value": "ALARM"
        }
    }
}"#;

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
// "State change for a metric math alarm"
const CW_METRIC_MATH: &str = r#"{
    "version": "0",
    "id": "2dde0eb1-528b-d2d5-9ca6-6d590caf2329",
    "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch",
    "account": "123456789012",
    "time": "2019-10-02T17:20:48Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TotalNetworkTrafficTooHigh"
    ],
    "detail": {
        "alarmName": "TotalNetworkTrafficTooHigh",
        "configuration": {
            "description": "Goes into alarm if total network traffic exceeds 10Kb",
            "metrics": [
                {
                    "expression": "SUM(METRICS())",
                    "id": "e1",
                    "label": "Total Network Traffic",
                    "returnData": true
                },
                {
                    "id": "m1",
                    "metricStat": {
                        "metric": {
                            "dimensions": {
                                "InstanceId": "i-12345678901234567"
                            },
                            "name": "NetworkIn",
                            "namespace": "AWS/EC2"
                        },
                        "period": 300,
                        "stat": "Maximum"
                    },
                    "returnData": false
                },
                {
                    "id": "m2",
                    "metricStat": {
                        "metric": {
                            "dimensions": {
                                "InstanceId": "i-12345678901234567"
                            },
                            "name": "NetworkOut",
                            "namespace": "AWS/EC2"
                        },
                        "period": 300,
                        "stat": "Maximum"
                    },
                    "returnData": false
                }
            ]
        },
        "previousState": {
            "reason": "Unchecked: Initial alarm creation",
            "timestamp": "2019-10-02T17:20:03.642+0000",
            "value": "INSUFFICIENT_DATA"
        },
        "state": {
            "reason": "Threshold Crossed: 1 out of the last 1 datapoints [45628.0 (02/10/19 17:10:00)] was greater than the threshold (10000.0) (minimum 1 datapoint for OK -> ALARM transition).",
            "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-02T17:20:48.551+0000\",\"startDate\":\"2019-10-02T17:10:00.000+0000\",\"period\":300,\"recentDatapoints\":[45628.0],\"threshold\":10000.0}",
            "timestamp": "2019-10-02T17:20:48.554+0000",
            "value": "ALARM"
        }
    }
}"#;

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
// "State change for an anomaly detection alarm"
const CW_ANOMALY: &str = r#"{
    "version": "0",
    "id": "daafc9f1-bddd-c6c9-83af-74971fcfc4ef",
    "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch",
    "account": "123456789012",
    "time": "2019-10-03T16:00:04Z",
    "region": "us-east-1",
    "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:EC2 CPU Utilization Anomaly"],
    "detail": {
        "alarmName": "EC2 CPU Utilization Anomaly",
        "state": {
            "value": "ALARM",
            "reason": "Thresholds Crossed: 1 out of the last 1 datapoints [0.0 (03/10/19 15:58:00)] was less than the lower thresholds [0.020599444741798756] or greater than the upper thresholds [0.3006915352732461] (minimum 1 datapoint for OK -> ALARM transition).",
            "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-03T16:00:04.650+0000\",\"startDate\":\"2019-10-03T15:58:00.000+0000\",\"period\":60,\"recentDatapoints\":[0.0],\"recentLowerThresholds\":[0.020599444741798756],\"recentUpperThresholds\":[0.3006915352732461]}",
            "timestamp": "2019-10-03T16:00:04.653+0000"
        },
        "previousState": {
            "value": "OK",
            "reason": "Thresholds Crossed: 1 out of the last 1 datapoints [0.166666666664241 (03/10/19 15:57:00)] was not less than the lower thresholds [0.0206719426210418] or not greater than the upper thresholds [0.30076870222143803] (minimum 1 datapoint for ALARM -> OK transition).",
            "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2019-10-03T15:59:04.670+0000\",\"startDate\":\"2019-10-03T15:57:00.000+0000\",\"period\":60,\"recentDatapoints\":[0.166666666664241],\"recentLowerThresholds\":[0.0206719426210418],\"recentUpperThresholds\":[0.30076870222143803]}",
            "timestamp": "2019-10-03T15:59:04.672+0000"
        },
        "configuration": {
            "description": "Goes into alarm if CPU Utilization is out of band",
            "metrics": [{
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": "AWS/EC2",
                        "name": "CPUUtilization",
                        "dimensions": {
                            "InstanceId": "i-12345678901234567"
                        }
                    },
                    "period": 60,
                    "stat": "Average"
                },
                "returnData": true
            }, {
                "id": "ad1",
                "expression": "ANOMALY_DETECTION_BAND(m1, 0.8)",
                "label": "CPUUtilization (expected)",
                "returnData": true
            }]
        }
    }
}"#;

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html
// "State change for a composite alarm with a suppressor alarm"
const CW_COMPOSITE_WITH_SUPPRESSOR: &str = r#"{
    "version": "0",
    "id": "d3dfc86d-384d-24c8-0345-9f7986db0b80",
    "detail-type": "CloudWatch Alarm State Change",
    "source": "aws.cloudwatch",
    "account": "123456789012",
    "time": "2022-07-22T15:57:45Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServiceAggregatedAlarm"
    ],
    "detail": {
        "alarmName": "ServiceAggregatedAlarm",
        "state": {
            "actionsSuppressedBy": "WaitPeriod",
            "actionsSuppressedReason": "Actions suppressed by WaitPeriod",
            "value": "ALARM",
            "reason": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:SuppressionDemo.EventBridge.FirstChild transitioned to ALARM at Friday 22 July, 2022 15:57:45 UTC",
            "reasonData": "{\"triggeringAlarms\":[{\"arn\":\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh\",\"state\":{\"value\":\"ALARM\",\"timestamp\":\"2022-07-22T15:57:45.394+0000\"}}]}",
            "timestamp": "2022-07-22T15:57:45.394+0000"
        },
        "previousState": {
            "value": "OK",
            "reason": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:SuppressionDemo.EventBridge.Main was created and its alarm rule evaluates to OK",
            "reasonData": "{\"triggeringAlarms\":[{\"arn\":\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:TotalNetworkTrafficTooHigh\",\"state\":{\"value\":\"OK\",\"timestamp\":\"2022-07-14T16:28:57.770+0000\"}},{\"arn\":\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh\",\"state\":{\"value\":\"OK\",\"timestamp\":\"2022-07-14T16:28:54.191+0000\"}}]}",
            "timestamp": "2022-07-22T15:56:14.552+0000"
        },
        "configuration": {
            "alarmRule": "ALARM(ServerCpuTooHigh) OR ALARM(TotalNetworkTrafficTooHigh)",
            "actionsSuppressor": "ServiceMaintenanceAlarm",
            "actionsSuppressorWaitPeriod": 120,
            "actionsSuppressorExtensionPeriod": 180
        }
    }
}"#;

// https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html
// "Event for a completed image push"
const ECR_PUSH: &str = r#"{
    "version": "0",
    "id": "13cde686-328b-6117-af20-0e5566167482",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "123456789012",
    "time": "2019-11-16T01:54:34Z",
    "region": "us-west-2",
    "resources": [],
    "detail": {
        "result": "SUCCESS",
        "repository-name": "my-repository-name",
        "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
        "action-type": "PUSH",
        "image-tag": "latest"
    }
}"#;

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html
// "Example service deployment completed event"
const ECS_COMPLETED: &str = r#"{
   "version": "0",
   "id": "ddca6449-b258-46c0-8653-e0e3aEXAMPLE",
   "detail-type": "ECS Deployment State Change",
   "source": "aws.ecs",
   "account": "111122223333",
   "time": "2020-05-23T12:31:14Z",
   "region": "us-west-2",
   "resources": [ 
        "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"
   ],
   "detail": {
        "eventType": "INFO", 
        "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
        "deploymentId": "ecs-svc/123",
        "updatedAt": "2020-05-23T11:11:11Z",
        "reason": "ECS deployment deploymentID completed."
   }
}"#;

// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html
// "Example service deployment failed event"
const ECS_FAILED: &str = r#"{
   "version": "0",
   "id": "ddca6449-b258-46c0-8653-e0e3aEXAMPLE",
   "detail-type": "ECS Deployment State Change",
   "source": "aws.ecs",
   "account": "111122223333",
   "time": "2020-05-23T12:31:14Z",
   "region": "us-west-2",
   "resources": [ 
        "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"
   ],
   "detail": {
        "eventType": "ERROR", 
        "eventName": "SERVICE_DEPLOYMENT_FAILED",
        "deploymentId": "ecs-svc/123",
        "updatedAt": "2020-05-23T11:11:11Z",
        "reason": "ECS deployment circuit breaker: task failed to start."
   }
}"#;

// ---- Where cargo put the crate's fixtures ----

/// `aws_lambda_events`' `src/fixtures` folder, found through `cargo metadata` (so any
/// `CARGO_HOME` works). Panics, saying why, if it cannot be found: a missing folder must fail the
/// test, never skip it.
fn fixtures_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(locate_fixtures).clone()
}

fn locate_fixtures() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("could not run `{cargo:?} metadata`: {e}"));
    assert!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value =
        serde_json::from_slice(&output.stdout).expect("`cargo metadata` prints JSON");
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "aws_lambda_events")
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("`cargo metadata` lists no package `aws_lambda_events`"));
    let dir = PathBuf::from(manifest)
        .parent()
        .expect("a manifest path has a folder")
        .join("src/fixtures");
    assert!(
        dir.is_dir(),
        "the fixtures of aws_lambda_events are not at {} (manifest {manifest}): the crate as \
         published ships them in src/fixtures; without them these samples cannot be checked",
        dir.display()
    );
    dir
}

fn read_sample(sample: &Sample) -> Value {
    match sample {
        Sample::Fixture(file) => {
            let path = fixtures_dir().join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
        }
        Sample::Doc(title, text) => {
            serde_json::from_str(text).unwrap_or_else(|e| panic!("sample `{title}`: {e}"))
        }
    }
}

// ---- The functions, each against its own emulator ----

/// One function wired to its own emulator, with a memory alert sink.
struct World {
    /// Stopped when the world is dropped.
    _emulator: Emulator,
    /// The health monitor's target, listening while the world lives.
    _target: Option<OpenPort>,
    deps: FunctionDeps,
}

enum FunctionDeps {
    Scaler(cpu_alarm_scaler::handler::Deps<MemoryAlerts>),
    Deploy(deploy_trigger::handler::Deps<MemoryAlerts>),
    Swapper(blue_green_swapper::handler::Deps<MemoryAlerts>),
    Health(
        legacy_health_monitor::handler::Deps<
            MemoryAlerts,
            legacy_health_monitor::metrics::MemoryMetrics,
        >,
    ),
    Bastion(bastion_eip_associator::handler::Deps<MemoryAlerts>),
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";

impl World {
    fn of(emulator: Emulator, deps: FunctionDeps) -> World {
        World {
            _emulator: emulator,
            _target: None,
            deps,
        }
    }

    async fn new(function: Function) -> World {
        let emulator = Emulator::start();
        let sdk = emulator.sdk_config().await;
        match function {
            Function::CpuAlarmScaler => {
                use cpu_alarm_scaler::observe::Clients;
                use ops_core::aws::{appscaling, autoscaling, cloudwatch, ecs};
                let env = Env::from_pairs([
                    ("ALERT_TOPIC_ARN", TOPIC),
                    ("AUTOSCALING_GROUPS", "workers,batch"),
                ]);
                let deps = cpu_alarm_scaler::handler::Deps {
                    clients: Clients {
                        alarms: cloudwatch::CloudWatchAlarms::new(&sdk),
                        groups: autoscaling::AutoScalingGroups::new(&sdk),
                        ecs: ecs::EcsServices::new(&sdk),
                        scalable: appscaling::ScalableTargets::new(&sdk),
                    },
                    iam: IamSimulator::new(&sdk),
                    alerts: MemoryAlerts::default(),
                    config: cpu_alarm_scaler::config::ScalerConfig::from_env(&env)
                        .expect("scaler config"),
                };
                for group in ["workers", "batch"] {
                    fixtures::group(deps.clients.groups.client(), group, (1, 2, 6), None).await;
                }
                World::of(emulator, FunctionDeps::Scaler(deps))
            }
            Function::DeployTrigger => {
                let env =
                    Env::from_pairs([("ALERT_TOPIC_ARN", TOPIC), ("ECS_CLUSTERS", "default")]);
                let deps = deploy_trigger::handler::Deps {
                    iam: IamSimulator::new(&sdk),
                    ecs: ops_core::aws::ecs::EcsServices::new(&sdk),
                    ecr: ops_core::aws::ecr::EcrImages::new(&sdk),
                    alerts: MemoryAlerts::default(),
                    config: deploy_trigger::config::DeployConfig::from_env(&env)
                        .expect("deploy config"),
                };
                let ecs = deps.ecs.client();
                ecs.create_cluster()
                    .cluster_name("default")
                    .send()
                    .await
                    .expect("cluster");
                deps.ecr
                    .client()
                    .create_repository()
                    .repository_name("my-repository-name")
                    .send()
                    .await
                    .expect("repository");
                let image = format!("{REGISTRY}/my-repository-name:latest");
                // The guides' samples are delivered to a Fargate service, as most services are.
                let launch = fixtures::Launch::Fargate;
                let definition =
                    fixtures::register_for(ecs, "servicetest", &[("app", &image)], launch).await;
                fixtures::service_for(
                    ecs,
                    &aws_sdk_ec2::Client::new(&sdk),
                    "default",
                    "servicetest",
                    &definition,
                    &[("ops:deploy-repository", "my-repository-name")],
                    launch,
                )
                .await;
                World::of(emulator, FunctionDeps::Deploy(deps))
            }
            Function::BlueGreenSwapper => {
                use blue_green_swapper::observe::Clients;
                let app = ops_e2e::blue_green::App::create(&emulator, json!({"app": "shop"}));
                let env = Env::from_pairs([
                    ("ALERT_TOPIC_ARN", TOPIC.to_string()),
                    ("ECS_CLUSTERS", "prod".to_string()),
                    ("SWAP_ROUTES", app.routes().join(",")),
                ]);
                let deps = blue_green_swapper::handler::Deps {
                    iam: IamSimulator::new(&sdk),
                    clients: Clients {
                        lb: ops_core::aws::elbv2::LoadBalancers::new(&sdk),
                        ecs: ops_core::aws::ecs::EcsServices::new(&sdk),
                        ecr: ops_core::aws::ecr::EcrImages::new(&sdk),
                        alarms: ops_core::aws::cloudwatch::CloudWatchAlarms::new(&sdk),
                    },
                    alerts: MemoryAlerts::default(),
                    config: blue_green_swapper::config::SwapperConfig::from_env(&env)
                        .expect("swapper config"),
                };
                World::of(emulator, FunctionDeps::Swapper(deps))
            }
            Function::LegacyHealthMonitor => {
                use legacy_health_monitor::observe::Clients;
                ops_e2e::health::create_state_table(&emulator, "health-state").await;
                let open = OpenPort::start().await;
                let targets = json!({"targets": [
                    {"name": "legacy-db", "tcp": format!("127.0.0.1:{}", open.port)}
                ]})
                .to_string();
                let env = Env::from_pairs([
                    ("ALERT_TOPIC_ARN", TOPIC.to_string()),
                    ("HEALTH_STATE_TABLE", "health-state".to_string()),
                    ("HEALTH_TARGETS", targets),
                ]);
                let deps = legacy_health_monitor::handler::Deps {
                    clients: Clients {
                        parameters: ops_core::aws::ssm::Parameters::new(&sdk),
                        ec2: ops_core::aws::ec2::Ec2::new(&sdk),
                        states: ops_core::aws::dynamodb::VersionedDocuments::new(
                            &sdk,
                            "health-state",
                        ),
                    },
                    iam: IamSimulator::new(&sdk),
                    alerts: MemoryAlerts::default(),
                    metrics: legacy_health_monitor::metrics::MemoryMetrics::default(),
                    tls: std::sync::Arc::new(legacy_health_monitor::probe::tls::TlsConfigs::new(
                        &[],
                    )),
                    config: legacy_health_monitor::config::MonitorConfig::from_env(&env)
                        .expect("monitor config"),
                };
                World {
                    _emulator: emulator,
                    _target: Some(open),
                    deps: FunctionDeps::Health(deps),
                }
            }
            Function::BastionEipAssociator => {
                let env = Env::from_pairs([
                    ("ALERT_TOPIC_ARN", TOPIC),
                    ("BASTION_GROUPS", "my-asg"),
                    ("ASSOCIATE_RETRY_DELAY_MS", "0"),
                ]);
                let deps = bastion_eip_associator::handler::Deps {
                    iam: IamSimulator::new(&sdk),
                    ec2: ops_core::aws::ec2::Ec2::new(&sdk),
                    groups: ops_core::aws::autoscaling::AutoScalingGroups::new(&sdk),
                    alerts: MemoryAlerts::default(),
                    config: bastion_eip_associator::config::AssociatorConfig::from_env(&env)
                        .expect("associator config"),
                };
                fixtures::group(deps.groups.client(), "my-asg", (1, 1, 2), Some("bastion")).await;
                deps.groups
                    .client()
                    .put_lifecycle_hook()
                    .auto_scaling_group_name("my-asg")
                    .lifecycle_hook_name("my-lifecycle-hook")
                    .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                    .default_result("ABANDON")
                    .send()
                    .await
                    .expect("the fixture's lifecycle hook");
                fixtures::pool_addresses(deps.ec2.client(), "bastion", 1).await;
                World::of(emulator, FunctionDeps::Bastion(deps))
            }
        }
    }

    async fn given(&self, given: &Given) {
        if let (Given::Started(id), FunctionDeps::Deploy(deps)) = (given, &self.deps) {
            use deploy_trigger::contract::{InFlight, Trigger, IN_FLIGHT};
            let record = InFlight {
                deployment_id: id.to_string(),
                trigger: Trigger::EcrPush,
                started_at: 0,
                from: "servicetest:1".into(),
                to: "servicetest:1".into(),
            };
            let service = deps
                .ecs
                .describe("default", "servicetest")
                .await
                .expect("the service");
            let tags = std::collections::BTreeMap::from([(IN_FLIGHT.to_string(), record.encode())]);
            deps.ecs
                .tag(&service.arn, &tags)
                .await
                .expect("record the deployment");
            return;
        }
        let FunctionDeps::Scaler(deps) = &self.deps else {
            panic!("only cpu-alarm-scaler rows have alarms given");
        };
        let cloudwatch = deps.clients.alarms.client();
        let tags = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect::<Vec<_>>()
        };
        let alarm_in_alarm = |name: &str, datapoint: f64| {
            cloudwatch
                .set_alarm_state()
                .alarm_name(name)
                .state_value(StateValue::Alarm)
                .state_reason(format!("Threshold Crossed: datapoint {datapoint}"))
                .state_reason_data(
                    json!({"version": "1.0", "recentDatapoints": [datapoint]}).to_string(),
                )
                .send()
        };
        match *given {
            Given::Cpu(name, threshold, pairs, datapoint) => {
                cloudwatch
                    .put_metric_alarm()
                    .alarm_name(name)
                    .namespace("AWS/EC2")
                    .metric_name("CPUUtilization")
                    .statistic(Statistic::Average)
                    .period(60)
                    .evaluation_periods(1)
                    .threshold(threshold)
                    .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                    .set_tags(Some(tags(pairs)))
                    .send()
                    .await
                    .expect("put the metric alarm");
                alarm_in_alarm(name, datapoint)
                    .await
                    .expect("put the alarm in ALARM");
            }
            Given::AnomalyBand(name, pairs) => {
                let metric = aws_sdk_cloudwatch::types::MetricStat::builder()
                    .metric(
                        aws_sdk_cloudwatch::types::Metric::builder()
                            .namespace("AWS/EC2")
                            .metric_name("CPUUtilization")
                            .build(),
                    )
                    .period(60)
                    .stat("Average")
                    .build();
                cloudwatch
                    .put_metric_alarm()
                    .alarm_name(name)
                    .evaluation_periods(1)
                    .comparison_operator(
                        ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold,
                    )
                    .threshold_metric_id("ad1")
                    .metrics(
                        MetricDataQuery::builder()
                            .id("m1")
                            .metric_stat(metric)
                            .return_data(true)
                            .build(),
                    )
                    .metrics(
                        MetricDataQuery::builder()
                            .id("ad1")
                            .expression("ANOMALY_DETECTION_BAND(m1, 0.8)")
                            .return_data(true)
                            .build(),
                    )
                    .set_tags(Some(tags(pairs)))
                    .send()
                    .await
                    .expect("put the anomaly detection alarm");
                alarm_in_alarm(name, 0.0)
                    .await
                    .expect("put the alarm in ALARM");
            }
            Given::Composite(name, rule, pairs) => {
                cloudwatch
                    .put_composite_alarm()
                    .alarm_name(name)
                    .alarm_rule(rule)
                    .set_tags(Some(tags(pairs)))
                    .send()
                    .await
                    .expect("put the composite alarm");
            }
            Given::Started(_) => panic!("only deploy-trigger rows have a deployment given"),
        }
    }

    async fn handle(&self, payload: Value) -> Result<Value, Error> {
        match &self.deps {
            FunctionDeps::Scaler(deps) => {
                let invocation = cpu_alarm_scaler::handler::Invocation { now: NOW };
                cpu_alarm_scaler::handler::function_handler(payload, &invocation, deps).await
            }
            FunctionDeps::Deploy(deps) => {
                let invocation = deploy_trigger::handler::Invocation {
                    caller: Caller {
                        account_id: ACCOUNT.into(),
                        region: "us-east-1".into(),
                    },
                    now: NOW,
                };
                deploy_trigger::handler::function_handler(payload, &invocation, deps).await
            }
            FunctionDeps::Swapper(deps) => {
                let invocation = blue_green_swapper::handler::Invocation {
                    caller: Caller {
                        account_id: ACCOUNT.into(),
                        region: "us-east-1".into(),
                    },
                    now: NOW,
                };
                blue_green_swapper::handler::function_handler(payload, &invocation, deps).await
            }
            FunctionDeps::Health(deps) => {
                let invocation = legacy_health_monitor::handler::Invocation { now: NOW };
                legacy_health_monitor::handler::function_handler(payload, &invocation, deps).await
            }
            FunctionDeps::Bastion(deps) => {
                bastion_eip_associator::handler::function_handler(payload, deps).await
            }
        }
    }

    /// Event types of the alerts sent so far.
    fn alerts(&self) -> Vec<String> {
        let sink = match &self.deps {
            FunctionDeps::Scaler(deps) => &deps.alerts,
            FunctionDeps::Deploy(deps) => &deps.alerts,
            FunctionDeps::Swapper(deps) => &deps.alerts,
            FunctionDeps::Health(deps) => &deps.alerts,
            FunctionDeps::Bastion(deps) => &deps.alerts,
        };
        sink.sent().into_iter().map(|a| a.event_type).collect()
    }
}

/// Run every row of `function` in order against one world; report every mismatch at once.
async fn run_rows(function: Function) {
    let world = World::new(function).await;
    let mut mismatches = Vec::new();
    for row in ROWS.iter().filter(|r| r.function == function) {
        for given in row.given {
            world.given(given).await;
        }
        let sent_before = world.alerts().len();
        let result = world.handle(read_sample(&row.sample)).await;
        let alerts = world.alerts()[sent_before..].to_vec();
        // The table's row as it ran (shown with --nocapture).
        println!(
            "{} -> {function:?}: {}",
            row.sample.name(),
            summary(&result, &alerts)
        );
        if let Err(why) = check(&row.outcome, &result, &alerts) {
            mismatches.push(format!(
                "{} → {function:?}: {why}\n    got: {}\n    alerts: {alerts:?}",
                row.sample.name(),
                match &result {
                    Ok(answer) => answer.to_string(),
                    Err(error) => {
                        let diagnostic = Diagnostic::from(error);
                        format!("{}: {}", diagnostic.error_type, diagnostic.error_message)
                    }
                }
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

/// What a row got, in one line: the answer's status (and reason), or the error, and its alerts.
fn summary(result: &Result<Value, Error>, alerts: &[String]) -> String {
    let got = match result {
        Ok(answer) => match answer["reason"].as_str() {
            Some(reason) => format!("{}: {reason}", answer["status"]),
            None => format!("{}", answer["status"]),
        },
        Err(error) => {
            let diagnostic = Diagnostic::from(error);
            format!("{}: {}", diagnostic.error_type, diagnostic.error_message)
        }
    };
    format!("{got}; alerts {alerts:?}")
}

fn check(
    expected: &Outcome,
    result: &Result<Value, Error>,
    alerts: &[String],
) -> Result<(), String> {
    match (expected, result) {
        (
            Outcome::Handled {
                status,
                fields,
                alerts: want,
            },
            Ok(answer),
        ) => {
            if answer["status"] != *status {
                return Err(format!("expected status `{status}`"));
            }
            for (pointer, text) in *fields {
                let want: Value =
                    serde_json::from_str(text).expect("a field's expectation is JSON");
                if answer.pointer(pointer) != Some(&want) {
                    return Err(format!("expected {pointer} = {want}"));
                }
            }
            if alerts != *want {
                return Err(format!("expected alerts {want:?}"));
            }
            Ok(())
        }
        (Outcome::Ignored(reason), Ok(answer)) => {
            if answer != &json!({"status": "ignored", "reason": reason}) {
                return Err(format!("expected ignored: {reason}"));
            }
            if !alerts.is_empty() {
                return Err("expected no alert".into());
            }
            Ok(())
        }
        (Outcome::Failed(error_type, message), Err(error)) => {
            let diagnostic = Diagnostic::from(error);
            if diagnostic.error_type != *error_type || diagnostic.error_message != *message {
                return Err(format!("expected {error_type}: {message}"));
            }
            if !alerts.is_empty() {
                return Err("expected no alert".into());
            }
            Ok(())
        }
        (expected, _) => Err(format!("expected {expected:?}")),
    }
}

#[tokio::test]
async fn cpu_alarm_scaler_takes_the_alarm_samples_of_aws_and_the_crate() {
    run_rows(Function::CpuAlarmScaler).await;
}

#[tokio::test]
async fn deploy_trigger_takes_the_ecr_push_and_ecs_deployment_samples_of_the_guides() {
    run_rows(Function::DeployTrigger).await;
}

#[tokio::test]
async fn blue_green_swapper_takes_the_crate_schedule_sample() {
    run_rows(Function::BlueGreenSwapper).await;
}

#[tokio::test]
async fn legacy_health_monitor_takes_the_crate_schedule_sample() {
    run_rows(Function::LegacyHealthMonitor).await;
}

#[tokio::test]
async fn bastion_eip_associator_takes_the_crate_lifecycle_and_schedule_samples() {
    run_rows(Function::BastionEipAssociator).await;
}

#[test]
fn every_fixture_of_the_functions_trigger_families_is_either_a_row_or_not_routed_with_a_reason() {
    let dir = fixtures_dir();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| FAMILIES.iter().any(|family| name.starts_with(family)))
        .collect();
    present.sort();
    assert!(
        present.len() >= 15,
        "only {present:?} in {}: is this the fixtures folder?",
        dir.display()
    );
    let rows: Vec<&str> = ROWS
        .iter()
        .filter_map(|row| match row.sample {
            Sample::Fixture(file) => Some(file),
            Sample::Doc(..) => None,
        })
        .collect();
    for name in &present {
        let routed = rows.contains(&name.as_str());
        let not_routed = NOT_ROUTED.iter().any(|(file, _)| file == name);
        assert!(
            routed != not_routed,
            "{name}: must be either a row of the table or in NOT_ROUTED (it is in {})",
            if routed { "both" } else { "neither" }
        );
    }
    for name in rows.iter().chain(NOT_ROUTED.iter().map(|(file, _)| file)) {
        assert!(
            present.iter().any(|p| p == name),
            "{name} is not among the crate's fixtures in {}",
            dir.display()
        );
    }
}
