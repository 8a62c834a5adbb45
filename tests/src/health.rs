//! legacy-health-monitor wired to the emulator (state table, alert topic) for tests and the bench.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use legacy_health_monitor::config::MonitorConfig;
use legacy_health_monitor::handler::{function_handler, function_handler_within, Deps, Invocation};
use legacy_health_monitor::metrics::MemoryMetrics;
use legacy_health_monitor::observe::Clients;
use legacy_health_monitor::probe::tls::TlsConfigs;
use ops_core::aws::dynamodb::VersionedDocuments;
use ops_core::aws::ec2::Ec2;
use ops_core::aws::iam::IamSimulator;
use ops_core::aws::sns::SnsAlerts;
use ops_core::aws::ssm::Parameters;
use ops_core::config::Env;
use ops_core::Error;
use serde_json::Value;

use crate::emulator::Emulator;
use crate::events::scheduled;

/// Create the monitor's state table (partition key `key`) in the emulator.
pub async fn create_state_table(emulator: &Emulator, name: &str) {
    aws_sdk_dynamodb::Client::new(&emulator.sdk_config().await)
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("key")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("key")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the state table");
}

/// The monitor's dependencies against `emulator`: `env` on top of the table and topic given.
pub async fn deps(
    emulator: &Emulator,
    table: &str,
    topic: &str,
    env: &[(&str, &str)],
) -> Deps<SnsAlerts, MemoryMetrics> {
    let sdk = emulator.sdk_config().await;
    let mut pairs = vec![
        ("ALERT_TOPIC_ARN".to_string(), topic.to_string()),
        ("HEALTH_STATE_TABLE".to_string(), table.to_string()),
    ];
    pairs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = MonitorConfig::from_env(&Env::from_pairs(pairs)).expect("monitor config");
    Deps {
        clients: Clients {
            parameters: Parameters::new(&sdk),
            ec2: Ec2::new(&sdk),
            states: VersionedDocuments::new(&sdk, table),
        },
        iam: IamSimulator::new(&sdk),
        alerts: SnsAlerts::new(&sdk, topic),
        metrics: MemoryMetrics::default(),
        tls: Arc::new(TlsConfigs::new(&[])),
        config,
    }
}

/// One scheduled run at `at`.
pub async fn run(deps: &Deps<SnsAlerts, MemoryMetrics>, at: u64) -> Result<Value, Error> {
    function_handler(scheduled(at), &Invocation { now: at }, deps).await
}

/// One scheduled run at `at` that must end by `deadline_ms` (epoch milliseconds, as Lambda's
/// `Context.deadline`).
pub async fn run_within(
    deps: &Deps<SnsAlerts, MemoryMetrics>,
    at: u64,
    deadline_ms: u64,
) -> Result<Value, Error> {
    function_handler_within(
        scheduled(at),
        &Invocation { now: at },
        Some(deadline_ms),
        deps,
    )
    .await
}

/// A chat command.
pub async fn command(
    deps: &Deps<SnsAlerts, MemoryMetrics>,
    payload: Value,
    at: u64,
) -> Result<Value, Error> {
    function_handler(payload, &Invocation { now: at }, deps).await
}
