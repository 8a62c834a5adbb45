//! `doctor` on all six functions (the five, and blue-green-swapper's hook function) against the seeded demo account, each through its real binary
//! and running as a role made from sam/template.yaml's own grants (see
//! [`crate::fixtures::template_roles`]): what `make doctor LOCAL=1` shows and what the test of the
//! template's grants asserts.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::blue_green::App;
use crate::fixtures::{self, Deployment, TemplateRole, ACCOUNT, STACK};
use crate::lambda::built_binary;
use crate::{Emulator, LocalLambda};

/// The state table the health monitor keeps in the demo account.
pub const HEALTH_TABLE: &str = "ops-health-state";

/// A function to start: its name in the stack (after `<stack>-`), its binary, its logical id in
/// the template, and its own settings.
type FunctionSetup = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, String)>,
);

/// One function's doctor, run.
pub struct Examined {
    /// The function's name as the stack deploys it (`opsstack-deploy-trigger`).
    pub name: String,
    /// Its doctor answer.
    pub answer: Value,
    /// The running function, to ask again.
    pub function: LocalLambda,
}

/// Doctor on all six, in the order of the README: their answers and the roles they ran as.
pub async fn doctor_all(
    emulator: &Emulator,
    topic: &str,
    shop: &Value,
) -> (Vec<Examined>, BTreeMap<String, TemplateRole>) {
    let live_route = App(shop.clone()).live_route();
    if aws_sdk_dynamodb::Client::new(&emulator.sdk_config().await)
        .describe_table()
        .table_name(HEALTH_TABLE)
        .send()
        .await
        .is_err()
    {
        crate::health::create_state_table(emulator, HEALTH_TABLE).await;
    }
    // The health monitor's targets, as its demo chapter writes them, if that chapter did not run:
    // doctor does not probe them, it only reads them.
    let ssm = aws_sdk_ssm::Client::new(&emulator.sdk_config().await);
    let documents = ssm
        .get_parameters_by_path()
        .path("/ops/health/")
        .recursive(true)
        .send()
        .await
        .expect("read the health targets path");
    if documents.parameters().is_empty() {
        ssm.put_parameter()
            .name("/ops/health/legacy")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .value(json!({"targets": [{"name": "ldap", "tcp": "127.0.0.1:636"}]}).to_string())
            .send()
            .await
            .expect("put a targets document");
    }
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    let deployment = Deployment {
        parameters: BTreeMap::from([
            ("EcsClusterNames".into(), "prod".into()),
            ("BlueGreenRouteArns".into(), live_route.clone()),
            ("ScalableAutoScalingGroupNames".into(), "workers".into()),
            ("BastionAutoScalingGroupNames".into(), "bastion".into()),
        ]),
        refs: BTreeMap::from([
            ("AlertTopic".into(), topic.to_string()),
            ("HealthStateTable".into(), HEALTH_TABLE.into()),
        ]),
        arns: BTreeMap::from([(
            "HealthStateTable.Arn".into(),
            format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{HEALTH_TABLE}"),
        )]),
    };
    let roles = fixtures::template_roles(&iam, &deployment).await;
    // A service that ECS deploys itself, with the hook function as its hook: what the hook
    // function's doctor checks, and what the swapper's person's gate does.
    let checkout = aws_sdk_ecs::Client::new(&emulator.sdk_config().await)
        .describe_services()
        .cluster("prod")
        .services(fixtures::CHECKOUT)
        .send()
        .await
        .expect("describe prod/checkout");
    if checkout.services().is_empty() {
        fixtures::checkout_canary(emulator).await;
    }
    let functions: [FunctionSetup; 6] = [
        (
            "deploy-trigger",
            "deploy-trigger",
            "DeployTriggerFunction",
            vec![("ECS_CLUSTERS", "prod".into())],
        ),
        (
            "blue-green-swapper",
            "blue-green-swapper",
            "BlueGreenSwapperFunction",
            vec![
                ("ECS_CLUSTERS", "prod".into()),
                ("SWAP_ROUTES", live_route.clone()),
            ],
        ),
        (
            "blue-green-swapper-hook",
            "blue-green-swapper",
            "BlueGreenSwapperHookFunction",
            vec![
                ("ECS_CLUSTERS", "prod".into()),
                ("SWAP_ROUTES", live_route),
                ("SWAPPER_SERVES", "lifecycle-hooks".into()),
                (
                    "SWAPPER_FUNCTION_NAME",
                    format!("{STACK}-blue-green-swapper"),
                ),
            ],
        ),
        (
            "cpu-alarm-scaler",
            "cpu-alarm-scaler",
            "CpuAlarmScalerFunction",
            vec![
                ("AUTOSCALING_GROUPS", "workers".into()),
                ("ECS_CLUSTERS", "prod".into()),
            ],
        ),
        (
            "legacy-health-monitor",
            "legacy-health-monitor",
            "LegacyHealthMonitorFunction",
            vec![
                ("HEALTH_STATE_TABLE", HEALTH_TABLE.into()),
                ("HEALTH_CONFIG_PATH", "/ops/health/".into()),
            ],
        ),
        (
            "bastion-eip-associator",
            "bastion-eip-associator",
            "BastionEipAssociatorFunction",
            vec![("BASTION_GROUPS", "bastion".into())],
        ),
    ];
    let mut examined = Vec::new();
    for (deployed, binary, logical, extra) in functions {
        let name = format!("{STACK}-{deployed}");
        let mut env = emulator.function_env();
        env.push(("ALERT_TOPIC_ARN".into(), topic.to_string()));
        env.push(("OPS_ROLE_ARN".into(), roles[logical].arn.clone()));
        env.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        let function = LocalLambda::start(&built_binary(binary), &name, &env);
        let answer = function.invoke(doctor_command()).expect("doctor answers");
        examined.push(Examined {
            name,
            answer,
            function,
        });
    }
    (examined, roles)
}

/// The chat command `make doctor` sends.
pub fn doctor_command() -> Value {
    json!({"command": "doctor", "requested_by": "make doctor"})
}

/// The rows of a doctor answer, each with the function's deployed name.
pub fn named_rows(name: &str, answer: &Value) -> Vec<(String, String)> {
    fixtures::doctor_table(answer)
        .into_iter()
        .map(|row| (name.to_string(), row))
        .collect()
}
