//! `doctor` on all six functions (the five, and blue-green-swapper's hook function) against the seeded demo account, each through its real binary and
//! running as a role that holds exactly what sam/template.yaml grants it for that account (resolved
//! from the template by the emulator's `template_grants`). Every row ok proves more than each
//! function's own doctor test: the template grants every action the code calls, on the ARNs and
//! with the context keys the calls carry, and nothing the functions need is missing from it.

use ops_e2e::doctor::{doctor_all, named_rows};
use ops_e2e::Emulator;

#[tokio::test]
async fn the_template_grants_every_function_every_duty_its_doctor_names() {
    let emulator = Emulator::start();
    let inventory = emulator.seed_demo();
    let topic = inventory["alert_topic_arn"]
        .as_str()
        .expect("topic")
        .to_string();

    let (examined, roles) = doctor_all(&emulator, &topic, &inventory["blue_green_apps"][0]).await;

    assert_eq!(examined.len(), 6);
    assert_eq!(
        roles.len(),
        6,
        "the template deploys six functions with BlueGreenRouteArns set"
    );
    // The hook function and the swapper's gate both found prod/checkout, and doctor proved the
    // template grants them what each calls there.
    for (function, action) in [
        (
            "opsstack-blue-green-swapper-hook",
            "ecs:DescribeServiceRevisions",
        ),
        (
            "opsstack-blue-green-swapper",
            "ecs:ContinueServiceDeployment",
        ),
        ("opsstack-blue-green-swapper", "ecs:StopServiceDeployment"),
    ] {
        let examined = examined
            .iter()
            .find(|e| e.name == function)
            .expect(function);
        let rows = named_rows(&examined.name, &examined.answer);
        assert!(
            rows.iter().any(|(_, row)| row.starts_with("ok")
                && row.contains(action)
                && row.contains("service/prod/checkout")),
            "{function}: no ok row for {action} on prod/checkout: {rows:#?}"
        );
    }
    for function in &examined {
        let rows = named_rows(&function.name, &function.answer);
        let not_ok: Vec<_> = rows
            .iter()
            .filter(|(_, row)| !row.starts_with("ok"))
            .collect();
        assert!(not_ok.is_empty(), "{}: {not_ok:#?}", function.name);
        assert_eq!(function.answer["ok"], true, "{}", function.name);
        let permissions = rows
            .iter()
            .filter(|(_, row)| row.contains(" permission  "))
            .count();
        assert!(
            permissions >= 3,
            "{}: only {permissions} permission rows",
            function.name
        );
        assert!(
            rows.iter().any(|(_, row)| row
                .contains(" alert-path  alert topic - the doctor alert (info) was published")),
            "{}",
            function.name
        );
    }
}
