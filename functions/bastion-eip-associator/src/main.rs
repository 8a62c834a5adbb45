//! The Lambda entry point: logging, configuration and clients once, then the runtime loop.

use bastion_eip_associator::config::AssociatorConfig;
use bastion_eip_associator::handler::{function_handler, Deps};
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::{runtime, telemetry, Error};

/// Configuration and clients, once per cold start.
async fn build_deps(env: &Env) -> Result<Deps<SnsAlerts>, Error> {
    let config = AssociatorConfig::from_env(env)?;
    let sdk = sdk_config(&AwsSettings::from_env(env)?).await;
    Ok(Deps {
        ec2: Ec2::new(&sdk),
        groups: AutoScalingGroups::new(&sdk),
        iam: IamSimulator::new(&sdk),
        alerts: SnsAlerts::new(&sdk, &config.common.alert_topic_arn),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::from_process();
    telemetry::init(&env);
    runtime::serve(
        "bastion-eip-associator",
        build_deps(&env).await,
        |event, deps| Box::pin(function_handler(event.payload, deps)),
    )
    .await
}
