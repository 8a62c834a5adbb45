//! The Lambda entry point: logging, configuration and clients once, then the runtime loop.

use blue_green_swapper::config::SwapperConfig;
use blue_green_swapper::handler::{function_handler, Deps, Invocation};
use blue_green_swapper::observe::Clients;
use ops_core::aws::cloudwatch::CloudWatchAlarms;
use ops_core::aws::ecr::EcrImages;
use ops_core::aws::ecs::EcsServices;
use ops_core::aws::elbv2::LoadBalancers;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::metrics::{MeteredAlerts, Stdout};
use ops_core::registry::Caller;
use ops_core::{runtime, telemetry, Error};

/// Configuration and clients, once per cold start.
async fn build_deps(env: &Env) -> Result<Deps<MeteredAlerts<SnsAlerts, Stdout>>, Error> {
    let config = SwapperConfig::from_env(env)?;
    let sdk = sdk_config(&AwsSettings::from_env(env)?).await;
    Ok(Deps {
        clients: Clients {
            lb: LoadBalancers::new(&sdk),
            ecs: EcsServices::new(&sdk),
            ecr: EcrImages::new(&sdk),
            alarms: CloudWatchAlarms::new(&sdk),
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
    runtime::serve(
        "blue-green-swapper",
        build_deps(&env).await,
        |event, deps| {
            // Schedules carry their own time (the handler never takes one earlier than this
            // clock); chat commands use the clock.
            let now = ops_core::time::now_epoch();
            Box::pin(async move {
                let arn = &event.context.invoked_function_arn;
                let caller = Caller::of_invocation(arn)?;
                function_handler(event.payload, &Invocation { caller, now }, deps).await
            })
        },
    )
    .await
}
