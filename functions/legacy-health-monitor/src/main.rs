//! The Lambda entry point: logging, configuration, clients and TLS setups once, then the runtime loop.

use legacy_health_monitor::config::MonitorConfig;
use legacy_health_monitor::handler::{function_handler_within, Deps, Invocation};
use legacy_health_monitor::metrics::Stdout;
use legacy_health_monitor::observe::Clients;
use legacy_health_monitor::probe::tls::TlsConfigs;
use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::ssm::Parameters;
use ops_core::aws::{sdk_config, AwsSettings};
use ops_core::config::Env;
use ops_core::{runtime, telemetry, Error};
use std::sync::Arc;

/// Configuration, clients and TLS setups, once per cold start.
async fn build_deps(env: &Env) -> Result<Deps<SnsAlerts, Stdout>, Error> {
    let config = MonitorConfig::from_env(env)?;
    let sdk = sdk_config(&AwsSettings::from_env(env)?).await;
    Ok(Deps {
        clients: Clients {
            parameters: Parameters::new(&sdk),
            ec2: Ec2::new(&sdk),
            states: VersionedDocuments::new(&sdk, &config.state_table),
        },
        iam: IamSimulator::new(&sdk),
        alerts: SnsAlerts::new(&sdk, &config.common.alert_topic_arn),
        metrics: Stdout,
        tls: Arc::new(TlsConfigs::new(&[])),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = Env::from_process();
    telemetry::init(&env);
    runtime::serve(
        "legacy-health-monitor",
        build_deps(&env).await,
        |event, deps| {
            let now = ops_core::time::now_epoch();
            let deadline = Some(event.context.deadline);
            Box::pin(async move {
                function_handler_within(event.payload, &Invocation { now }, deadline, deps).await
            })
        },
    )
    .await
}
