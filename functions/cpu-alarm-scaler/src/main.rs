//! The Lambda entry point: logging, configuration and clients once, then the runtime loop.

use cpu_alarm_scaler::config::ScalerConfig;
use cpu_alarm_scaler::handler::{function_handler, Deps, Invocation};
use cpu_alarm_scaler::observe::Clients;
use ops_core::aws::appscaling::ScalableTargets;
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::metrics::{MeteredAlerts, Stdout};
use ops_core::{runtime, telemetry, Error};

/// Configuration and clients, once per cold start.
async fn build_deps(env: &Env) -> Result<Deps<MeteredAlerts<SnsAlerts, Stdout>>, Error> {
    let config = ScalerConfig::from_env(env)?;
    let sdk = sdk_config(&AwsSettings::from_env(env)?).await;
    Ok(Deps {
        clients: Clients {
            alarms: CloudWatchAlarms::new(&sdk),
            groups: AutoScalingGroups::new(&sdk),
            ecs: EcsServices::new(&sdk),
            scalable: ScalableTargets::new(&sdk),
        },
        iam: IamSimulator::new(&sdk),
        alerts: MeteredAlerts::new(
            SnsAlerts::new(&sdk, &config.common.alert_topic_arn),
            Stdout,
            &config.common.function_name,
        ),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::from_process();
    telemetry::init(&env);
    runtime::serve("cpu-alarm-scaler", build_deps(&env).await, |event, deps| {
        // Events carry their own time; chat commands use the clock.
        let now = ops_core::time::now_epoch();
        Box::pin(async move { function_handler(event.payload, &Invocation { now }, deps).await })
    })
    .await
}
