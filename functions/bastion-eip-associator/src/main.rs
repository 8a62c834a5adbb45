//! The Lambda entry point: logging, configuration and clients once, then the runtime loop.

use bastion_eip_associator::config::AssociatorConfig;
use bastion_eip_associator::handler::{function_handler, Deps};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use ops_core::aws::autoscaling::AutoScalingGroups;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::{telemetry, Error};
use serde_json::Value;

/// Configuration and clients, once per cold start.
async fn build_deps(env: &Env) -> Result<Deps<SnsAlerts>, Error> {
    let config = AssociatorConfig::from_env(env)?;
    let sdk = sdk_config(&AwsSettings::from_env(env)?).await;
    Ok(Deps {
        ec2: Ec2::new(&sdk),
        groups: AutoScalingGroups::new(&sdk),
        alerts: SnsAlerts::new(&sdk, &config.common.alert_topic_arn),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::from_process();
    telemetry::init(&env);
    let deps = build_deps(&env).await.inspect_err(|error| {
        // The runtime prints only the error's Debug form; this line is what on-call reads.
        tracing::error!("bastion-eip-associator cannot start: {error}");
    })?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: the handler's future is deep enough to overflow the compiler's layout depth inline.
        Box::pin(function_handler(event.payload, deps))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
