//! Crash-point convergence of blue-green-swapper: for every k, the k-th AWS call of a whole swap
//! fails (the function gets no answer, as if it died there), Lambda delivers the invocation again,
//! and the swap must end exactly where a clean run ends: all traffic on green, green running the
//! one new revision, blue at zero, nothing left marked, every transition alerted.

use std::collections::BTreeSet;

use ops_e2e::blue_green::{
    alerts, deliver, deploy_command, deps, elb, finish_rollout, observe, push, tick, topic, App,
};
use ops_e2e::fixtures::{revisions, Launch};
use ops_e2e::{on_each_launch, Emulator};
use serde_json::json;

const T0: u64 = 1_795_000_000;

/// What a finished swap looks like, for comparing a faulted run with a clean one.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    percent: (u32, u32),
    green: (String, i32),
    blue_desired: i32,
    phase: Option<String>,
    alerted_everything: bool,
    marks: (Option<String>, Option<String>),
    revisions: usize,
    alert_types: BTreeSet<String>,
    /// Targets registered in (green, blue)'s target groups.
    targets: (usize, usize),
}

/// Run a canary swap of a new app `name` from deploy to done, every invocation delivered until it
/// settles and every AWS call tried once (a failed call is a failed invocation). With `fault_at`,
/// that call of the swap fails. Returns the outcome, the alerts published and the AWS calls made.
async fn swap(
    emulator: &Emulator,
    launch: &str,
    name: &str,
    fault_at: Option<u64>,
) -> (Outcome, usize, u64) {
    let topic = topic(emulator, &format!("{name}-alerts")).await;
    let app = App::create(
        emulator,
        json!({"app": name, "strategy": "canary 10 1m", "termination_wait": "1m", "launch_type": launch}),
    );
    let deps = deps(emulator, &topic, &app.routes(), 1).await;
    let image = push(emulator, &app, "v2");
    emulator.reset_calls();
    if let Some(k) = fault_at {
        emulator
            .add_fault(json!({"service": "*", "kind": "error500", "on_calls": [k], "times": 1}));
    }
    deliver(&deps, deploy_command(name, &image, "alice"), T0)
        .await
        .expect("deploy settles");
    finish_rollout(emulator, &app, "green", "COMPLETED");
    for minute in 1..=5 {
        tick(&deps, T0 + minute * 60).await.expect("tick settles");
    }
    let calls = emulator.total_calls();
    if fault_at.is_some() {
        assert_eq!(
            emulator.faults_fired(),
            1,
            "the fault at call {fault_at:?} fired"
        );
        emulator.control("DELETE", "/_ops/faults", None).unwrap();
    }
    let seen = observe(emulator, &app).await;
    let state = seen.state.clone().unwrap_or_default();
    let fields = ops_core::tags::fields(state.split(" why=").next().unwrap_or_default());
    let published = alerts(emulator, &topic);
    let ecs = aws_sdk_ecs::Client::new(&emulator.sdk_config().await);
    let outcome = Outcome {
        percent: seen.percent,
        green: seen.green.clone(),
        blue_desired: seen.blue.1,
        phase: seen.phase(),
        alerted_everything: fields.get("v") == fields.get("r"),
        marks: seen.marks.clone(),
        revisions: revisions(&ecs, name).await.len(),
        alert_types: published.iter().map(|a| a.event_type.clone()).collect(),
        targets: (
            targets(emulator, &app, "green").await,
            targets(emulator, &app, "blue").await,
        ),
    };
    (outcome, published.len(), calls)
}

/// The matrix on colours of `launch`; each launch type is its own test, on its own emulator.
async fn a_swap_interrupted_at_any_aws_call_converges_to_the_clean_end_state(launch: Launch) {
    let launch_type = match launch {
        Launch::Ec2 => "EC2",
        Launch::Fargate => "FARGATE",
    };
    let emulator = Emulator::start();
    let (clean, clean_alerts, total) = swap(&emulator, launch_type, "clean", None).await;
    let expected_family = |name: &str| (format!("{name}:2"), 2);
    assert_eq!(clean.percent, (0, 100));
    assert_eq!(clean.green, expected_family("clean"));
    assert_eq!(clean.phase.as_deref(), Some("done"));
    assert_eq!(clean.revisions, 2);
    assert_eq!(
        clean.targets,
        (2, 0),
        "green's two tasks serve; blue has none"
    );
    assert!(total > 30, "a whole swap takes {total} AWS calls");

    let mut converged = Vec::new();
    for k in 1..=total {
        let name = format!("crash{k}");
        let (outcome, alert_count, _) = swap(&emulator, launch_type, &name, Some(k)).await;
        let expected = Outcome {
            green: expected_family(&name),
            ..clean_like(&clean)
        };
        assert_eq!(
            outcome, expected,
            "a failure at call {k} of {total} did not converge"
        );
        assert!(
            alert_count <= clean_alerts + 1,
            "a failure at call {k} repeated {} alerts",
            alert_count - clean_alerts
        );
        converged.push(k);
    }
    println!(
        "crash-point matrix: blue-green-swapper on {launch_type}, {total} AWS calls per swap, k = 1..={total}: all {} converged",
        converged.len()
    );
}

on_each_launch!(a_swap_interrupted_at_any_aws_call_converges_to_the_clean_end_state);

fn clean_like(clean: &Outcome) -> Outcome {
    Outcome {
        percent: clean.percent,
        green: clean.green.clone(),
        blue_desired: clean.blue_desired,
        phase: clean.phase.clone(),
        alerted_everything: clean.alerted_everything,
        marks: clean.marks.clone(),
        revisions: clean.revisions,
        alert_types: clean.alert_types.clone(),
        targets: clean.targets,
    }
}

/// How many targets a colour's target group holds.
async fn targets(emulator: &Emulator, app: &App, colour: &str) -> usize {
    elb(emulator)
        .await
        .describe_target_health()
        .target_group_arn(app.target_group(colour))
        .send()
        .await
        .expect("read the colour's targets")
        .target_health_descriptions()
        .len()
}
