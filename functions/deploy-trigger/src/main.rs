//! The Lambda entry point: logging, configuration and clients once, then the runtime loop.

use deploy_trigger::config::DeployConfig;
use deploy_trigger::handler::{function_handler, Deps, Invocation};
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::metrics::{MeteredAlerts, Stdout};
use ops_core::registry::Caller;
use ops_core::{runtime, telemetry, Error};

/// Configuration and clients, once per cold start.
async fn build_deps(env: &Env) -> Result<Deps<MeteredAlerts<SnsAlerts, Stdout>>, Error> {
    let config = DeployConfig::from_env(env)?;
    let sdk = sdk_config(&AwsSettings::from_env(env)?).await;
    Ok(Deps {
        ecs: EcsServices::new(&sdk)
            .reading_service_deployments_of(deploy_trigger::contract::REPOSITORY),
        iam: IamSimulator::new(&sdk),
        ecr: EcrImages::new(&sdk),
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
    runtime::serve("deploy-trigger", build_deps(&env).await, |event, deps| {
        let now = ops_core::time::now_epoch();
        Box::pin(async move {
            let arn = &event.context.invoked_function_arn;
            let caller = Caller::of_invocation(arn)?;
            function_handler(event.payload, &Invocation { caller, now }, deps).await
        })
    })
    .await
}
