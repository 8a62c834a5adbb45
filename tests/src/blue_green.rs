//! A blue/green app in the emulator and blue-green-swapper wired to it, for tests and the demo.

use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use blue_green_swapper::config::SwapperConfig;
use blue_green_swapper::handler::{function_handler, Deps, Invocation};
use blue_green_swapper::observe::Clients;
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::{short_task_definition, EcsServices};
use ops_core::aws::elbv2::{LoadBalancers, Route, RouteKind};
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sdk_config;
use ops_core::aws::sns::SnsAlerts;
use ops_core::config::Env;
use ops_core::registry::Caller;
use ops_core::Error;
use serde_json::{json, Value};

use crate::emulator::{Emulator, REGION};
use crate::events::scheduled;
use crate::fixtures::ACCOUNT;
use crate::redeliver::until_settled;

/// One app as the emulator's `/_ops/blue-green/app` control made it.
#[derive(Debug, Clone)]
pub struct App(pub Value);

impl App {
    /// Create an app: `spec` as the control takes it, e.g. `{"app": "shop", "strategy": "canary 10 5m"}`.
    pub fn create(emulator: &Emulator, spec: Value) -> App {
        App(emulator
            .control("POST", "/_ops/blue-green/app", Some(spec))
            .expect("create the blue/green app"))
    }

    fn text(&self, pointer: &str) -> String {
        self.0
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("app inventory has no {pointer}"))
            .to_string()
    }

    /// The app's name.
    pub fn name(&self) -> String {
        self.text("/app")
    }

    /// Its cluster.
    pub fn cluster(&self) -> String {
        self.text("/cluster")
    }

    /// The live listener or rule.
    pub fn live_route(&self) -> String {
        self.text("/live_route")
    }

    /// The routes the swapper is configured with: the live one and the test one, if any.
    pub fn routes(&self) -> Vec<String> {
        let mut routes = vec![self.live_route()];
        if let Some(test) = self.0["test_route"].as_str() {
            routes.push(test.to_string());
        }
        routes
    }

    /// A colour's service name.
    pub fn service(&self, colour: &str) -> String {
        self.text(&format!("/colours/{colour}/service"))
    }

    /// A colour's target group.
    pub fn target_group(&self, colour: &str) -> String {
        self.text(&format!("/colours/{colour}/target_group"))
    }

    /// The revision both colours started from, `family:revision`.
    pub fn first_revision(&self) -> String {
        short_task_definition(&self.text("/task_definition"))
    }
}

/// blue-green-swapper's dependencies against `emulator`, managing cluster `prod` and `routes`,
/// alerting to `topic`, with `max_attempts` per AWS call.
pub async fn deps(
    emulator: &Emulator,
    topic: &str,
    routes: &[String],
    max_attempts: u32,
) -> Deps<SnsAlerts> {
    let settings = ops_core::aws::AwsSettings {
        max_attempts,
        ..emulator.settings()
    };
    let sdk: SdkConfig = sdk_config(&settings).await;
    let env = Env::from_pairs([
        ("ALERT_TOPIC_ARN", topic.to_string()),
        ("ECS_CLUSTERS", "prod".to_string()),
        ("SWAP_ROUTES", routes.join(",")),
    ]);
    Deps {
        clients: Clients {
            lb: LoadBalancers::new(&sdk),
            ecs: EcsServices::new(&sdk),
            ecr: EcrImages::new(&sdk),
            alarms: CloudWatchAlarms::new(&sdk),
        },
        iam: IamSimulator::new(&sdk),
        alerts: SnsAlerts::new(&sdk, topic),
        config: SwapperConfig::from_env(&env).expect("swapper config"),
    }
}

/// Call the handler at `now`.
pub async fn handle(deps: &Deps<SnsAlerts>, payload: Value, now: u64) -> Result<Value, Error> {
    let invocation = Invocation {
        caller: Caller {
            account_id: ACCOUNT.into(),
            region: REGION.into(),
        },
        now,
    };
    function_handler(payload, &invocation, deps).await
}

/// Call the handler as Lambda delivers an event: again while it fails with a retryable error.
pub async fn deliver(deps: &Deps<SnsAlerts>, payload: Value, now: u64) -> Result<Value, Error> {
    until_settled(20, || handle(deps, payload.clone(), now)).await
}

/// A `deploy` chat command.
pub fn deploy_command(app: &str, image: &str, by: &str) -> Value {
    json!({"command": "deploy", "args": {"app": app, "image": image}, "requested_by": by})
}

/// A chat command on an app (`promote`, `abort`, `rollback`, `status`).
pub fn app_command(command: &str, app: &str, by: &str) -> Value {
    json!({"command": command, "args": {"app": app}, "requested_by": by})
}

/// Push `tag` to the app's repository; the pinned image reference.
pub fn push(emulator: &Emulator, app: &App, tag: &str) -> String {
    let pushed = emulator
        .control(
            "POST",
            "/_ops/ecr/push",
            Some(json!({"repository": app.name(), "tag": tag})),
        )
        .expect("push");
    format!(
        "{}@{}",
        pushed["image"].as_str().unwrap(),
        pushed["digest"].as_str().unwrap()
    )
}

/// Let ECS finish a colour's rollout (its tasks run and register healthy).
pub fn finish_rollout(emulator: &Emulator, app: &App, colour: &str, state: &str) {
    emulator
        .control(
            "POST",
            "/_ops/ecs/finish-deployment",
            Some(json!({"cluster": app.cluster(), "service": app.service(colour), "state": state})),
        )
        .expect("finish the rollout");
}

/// Set every target of a colour to `state` (`healthy`, `unhealthy`, ...).
pub fn set_health(emulator: &Emulator, app: &App, colour: &str, state: &str) {
    emulator
        .control(
            "POST",
            "/_ops/elbv2/target-health",
            Some(json!({"target_group_arn": app.target_group(colour), "state": state})),
        )
        .expect("set target health");
}

/// What the test reads back from AWS about an app.
pub struct Observed {
    /// Live traffic percent on blue and on green.
    pub percent: (u32, u32),
    /// Each colour's `family:revision` and desired count.
    pub blue: (String, i32),
    /// Green's.
    pub green: (String, i32),
    /// The `ops:swap-state` tag.
    pub state: Option<String>,
    /// `ops:swap-in-flight` on blue and green.
    pub marks: (Option<String>, Option<String>),
}

impl Observed {
    /// The swap's phase, from its state tag.
    pub fn phase(&self) -> Option<String> {
        let state = self.state.as_deref()?;
        ops_core::tags::fields(state.split(" why=").next()?)
            .get("phase")
            .map(|p| p.to_string())
    }
}

/// Read an app back: weights, services, the swap's state tag.
pub async fn observe(emulator: &Emulator, app: &App) -> Observed {
    let sdk = emulator.sdk_config().await;
    let lb = LoadBalancers::new(&sdk);
    let route: Route = lb
        .route(&app.live_route())
        .await
        .expect("read the live route");
    assert!(RouteKind::of(&route.arn).is_some());
    let ecs = EcsServices::new(&sdk);
    let service = |colour: &'static str| {
        let ecs = ecs.clone();
        let (cluster, name) = (app.cluster(), app.service(colour));
        async move {
            ecs.describe(&cluster, &name)
                .await
                .expect("read the service")
        }
    };
    let (blue, green) = (service("blue").await, service("green").await);
    Observed {
        percent: (
            route.percent_to(&app.target_group("blue")),
            route.percent_to(&app.target_group("green")),
        ),
        blue: (short_task_definition(&blue.task_definition), blue.desired),
        green: (short_task_definition(&green.task_definition), green.desired),
        state: route.tags.get("ops:swap-state").cloned(),
        marks: (
            blue.tag("ops:swap-in-flight").map(String::from),
            green.tag("ops:swap-in-flight").map(String::from),
        ),
    }
}

/// The ELBv2 client of `emulator`, for tests that change routes behind the swapper's back.
pub async fn elb(emulator: &Emulator) -> Elb {
    Elb::new(&emulator.sdk_config().await)
}

/// An alert as SNS accepted it.
#[derive(Debug, Clone)]
pub struct Published {
    /// `event_type` attribute, e.g. `swap.rolled-back`.
    pub event_type: String,
    /// `severity` attribute.
    pub severity: String,
    /// `resource` attribute: the app.
    pub resource: String,
    /// The subject.
    pub subject: String,
    /// The chat body (AWS Chatbot JSON).
    pub chat: Value,
}

/// Every alert published to `topic` so far, oldest first.
pub fn alerts(emulator: &Emulator, topic: &str) -> Vec<Published> {
    let published = emulator
        .control(
            "GET",
            &format!("/_ops/sns/published?topic_arn={topic}"),
            None,
        )
        .expect("read the SNS outbox");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    published["published"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| Published {
            event_type: text(&p["attributes"]["event_type"]),
            severity: text(&p["attributes"]["severity"]),
            resource: text(&p["attributes"]["resource"]),
            subject: text(&p["subject"]),
            chat: serde_json::from_str(p["bodies"]["default"].as_str().unwrap_or("null"))
                .unwrap_or(Value::Null),
        })
        .collect()
}

/// Create an SNS topic for alerts; its ARN.
pub async fn topic(emulator: &Emulator, name: &str) -> String {
    aws_sdk_sns::Client::new(&emulator.sdk_config().await)
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("create the alert topic")
        .topic_arn
        .expect("topic arn")
}

/// A schedule tick at `at`, delivered until settled.
pub async fn tick(deps: &Deps<SnsAlerts>, at: u64) -> Result<Value, Error> {
    deliver(deps, scheduled(at), at).await
}

/// Assert that a colour runs `count` tasks of its service's task definition on `launch` (see
/// [`crate::fixtures::assert_runs_on`]) and that its target group holds those tasks and no other
/// target: on Fargate, each by its network interface's address (target type `ip`).
pub async fn assert_colour_runs_on(
    emulator: &Emulator,
    app: &App,
    colour: &str,
    launch: crate::fixtures::Launch,
    count: usize,
) {
    let sdk = emulator.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let (cluster, service) = (app.cluster(), app.service(colour));
    let task_definition = EcsServices::new(&sdk)
        .describe(&cluster, &service)
        .await
        .expect("read the colour's service")
        .task_definition;
    crate::fixtures::assert_runs_on(
        &ecs,
        &ec2,
        (&cluster, &service),
        launch,
        &task_definition,
        count,
    )
    .await;
    let mut targets: Vec<String> = Elb::new(&sdk)
        .describe_target_health()
        .target_group_arn(app.target_group(colour))
        .send()
        .await
        .expect("read the colour's targets")
        .target_health_descriptions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.target?.id)
        .collect();
    targets.sort();
    assert_eq!(targets.len(), count, "{colour}'s targets: {targets:?}");
    if launch == crate::fixtures::Launch::Fargate {
        let mut addresses: Vec<String> = crate::fixtures::running_tasks(&ecs, &cluster, &service)
            .await
            .into_iter()
            .filter_map(|t| t.interface.map(|(_, address)| address.to_string()))
            .collect();
        addresses.sort();
        assert_eq!(
            targets, addresses,
            "{colour}'s targets are its tasks' addresses"
        );
    }
}
