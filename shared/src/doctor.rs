//! `doctor`: can this deployment do its job? Answered before the first incident, changing nothing.
//!
//! Each function lists what it found: its configuration as parsed, every resource it is configured
//! to touch (found or not), and its duties: each AWS action it will take on each of those resources,
//! with the context keys the call will carry. IAM is then asked, for the function's own role,
//! whether each duty is allowed (`iam:SimulatePrincipalPolicy`, through a [`PermissionCheck`]), and
//! one `doctor` alert goes to the alert topic, which proves the alert path. The answer is one table:
//! a row per finding, with a verdict, and `ok` only when every row is.
//!
//! A verdict is never better than what was proved: a permission IAM could not decide (a condition
//! key it had no value for, or one our emulator cannot evaluate) is `undetermined`, not `ok`.

use std::future::Future;

use serde::Serialize;
use serde_json::{json, Value};

use crate::alert::{Alert, AlertSink, Severity};
use crate::config::CommonConfig;

/// What part of the deployment a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// The function's configuration, as parsed at start.
    Config,
    /// A resource the configuration names, or one found through it.
    Resource,
    /// IAM's answer for one action on one resource.
    Permission,
    /// The alert topic, proved by publishing the doctor alert.
    AlertPath,
}

impl Area {
    /// The word in the table, as the answer's JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Config => "config",
            Area::Resource => "resource",
            Area::Permission => "permission",
            Area::AlertPath => "alert-path",
        }
    }
}

/// How a finding came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Proved to work.
    Ok,
    /// Could not be decided; the detail says what is missing.
    Undetermined,
    /// Something named is missing or wrong.
    Problem,
    /// IAM denies the action.
    Denied,
}

impl Verdict {
    /// The word in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Undetermined => "undetermined",
            Verdict::Problem => "PROBLEM",
            Verdict::Denied => "DENIED",
        }
    }
}

/// One row of the doctor's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Which part.
    pub area: Area,
    /// What it is about: a setting, a resource, or `action on resource`.
    pub subject: String,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found, or what is wrong and why it matters.
    pub detail: String,
}

impl Finding {
    /// A finding.
    pub fn new(
        area: Area,
        subject: impl Into<String>,
        verdict: Verdict,
        detail: impl Into<String>,
    ) -> Self {
        Finding {
            area,
            subject: subject.into(),
            verdict,
            detail: detail.into(),
        }
    }
}

/// A context key and its values, as the real call will carry them (IAM's `ContextEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextValue {
    /// The key, e.g. `ecs:cluster` or `aws:ResourceTag/ops:swap-app`.
    pub key: String,
    /// Its values (one for a string key).
    pub values: Vec<String>,
}

/// One AWS action the function will take on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duty {
    /// `service:Action`, as IAM names it.
    pub action: String,
    /// The resource ARN the call names, or `*` for an action without a resource type.
    pub resource: String,
    /// The context keys the call carries that a policy may test.
    pub context: Vec<ContextValue>,
    /// Why the function calls it, for the table.
    pub why: String,
}

impl Duty {
    /// A duty without context keys.
    pub fn new(action: &str, resource: impl Into<String>, why: impl Into<String>) -> Self {
        Duty {
            action: action.to_string(),
            resource: resource.into(),
            context: Vec::new(),
            why: why.into(),
        }
    }

    /// Add a context key the call will carry.
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.push(ContextValue {
            key: key.into(),
            values: vec![value.into()],
        });
        self
    }

    /// Add a list-valued context key the call will carry (e.g. `aws:TagKeys`).
    pub fn with_context_list(mut self, key: impl Into<String>, values: &[&str]) -> Self {
        self.context.push(ContextValue {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        });
        self
    }

    /// Add `aws:ResourceTag/<key>` for each of the resource's tags: IAM reads them from the
    /// resource in a real call, and the simulator needs them given.
    pub fn with_resource_tags<'a>(
        mut self,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        for (key, value) in tags {
            self = self.with_context(format!("aws:ResourceTag/{key}"), value.clone());
        }
        self
    }

    /// `action on resource`, the subject of its finding.
    pub fn subject(&self) -> String {
        format!("{} on {}", self.action, self.resource)
    }
}

/// The port that asks IAM about the function's own role.
pub trait PermissionCheck: Send + Sync {
    /// One finding per duty: allowed, denied (naming the deciding statement where IAM does), or
    /// undetermined (naming what IAM could not evaluate).
    fn check(&self, role_arn: &str, duties: &[Duty]) -> impl Future<Output = Vec<Finding>> + Send;
}

/// What a function's `doctor` gathered before IAM and the alert path are asked.
#[derive(Debug, Default)]
pub struct Examination {
    /// Configuration and resource findings.
    pub findings: Vec<Finding>,
    /// The duties to check with IAM.
    pub duties: Vec<Duty>,
}

/// What `SCHEDULE_LEAD_SECONDS` allows, for people: above the default (clock skew), what a forged
/// event time could then do.
fn schedule_lead_text(lead: u64) -> String {
    let default = crate::events::DEFAULT_SCHEDULE_LEAD;
    if lead <= default {
        return format!(
            "{lead} s: an event's own time may be at most this far ahead of the function's clock (clock skew; default {default} s)"
        );
    }
    format!(
        "{lead} s, above the default {default} s: an event's own time may run {} ahead of the function's clock, so a forged time could end waits, bakes, cooldowns and holds that much early (the template never sets it; the demo does, to play the schedule ahead)",
        crate::time::duration_text(lead)
    )
}

impl Examination {
    /// An examination that starts with what every function has: its alert topic and its role
    /// (settings), and publishing to the topic (a duty), `alerting` saying what it alerts.
    pub fn of(common: &CommonConfig, alerting: &str) -> Self {
        let mut exam = Examination::default();
        exam.setting("ALERT_TOPIC_ARN", common.alert_topic_arn.clone());
        exam.setting(
            "SCHEDULE_LEAD_SECONDS",
            schedule_lead_text(common.schedule_lead),
        );
        match &common.role_arn {
            Some(role) => exam.setting("OPS_ROLE_ARN", role.clone()),
            None => exam.config_problem(
                "OPS_ROLE_ARN",
                "not set: the function does not know its role, so IAM cannot be asked about it",
            ),
        }
        exam.duty(Duty::new(
            "sns:Publish",
            common.alert_topic_arn.clone(),
            alerting,
        ));
        exam
    }

    /// A configuration setting as parsed.
    pub fn setting(&mut self, name: &str, value: impl Into<String>) {
        self.findings
            .push(Finding::new(Area::Config, name, Verdict::Ok, value));
    }

    /// A configuration problem.
    pub fn config_problem(&mut self, name: &str, problem: impl Into<String>) {
        self.findings
            .push(Finding::new(Area::Config, name, Verdict::Problem, problem));
    }

    /// A resource that exists and answered.
    pub fn found(&mut self, resource: impl Into<String>, detail: impl Into<String>) {
        self.findings
            .push(Finding::new(Area::Resource, resource, Verdict::Ok, detail));
    }

    /// A resource that is missing, unreachable or not as the function needs it.
    pub fn missing(&mut self, resource: impl Into<String>, problem: impl Into<String>) {
        self.findings.push(Finding::new(
            Area::Resource,
            resource,
            Verdict::Problem,
            problem,
        ));
    }

    /// Something that could not be decided, with what is missing.
    pub fn undetermined(&mut self, area: Area, subject: impl Into<String>, why: impl Into<String>) {
        self.findings
            .push(Finding::new(area, subject, Verdict::Undetermined, why));
    }

    /// A duty to check with IAM.
    pub fn duty(&mut self, duty: Duty) {
        if !self.duties.contains(&duty) {
            self.duties.push(duty);
        }
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` in the partition, region and account
/// of `known` (any ARN of the deployment, such as the alert topic's): how `doctor` names resources
/// that it knows only by name.
pub fn arn_beside(known: &str, service: &str, resource: &str) -> String {
    let parts: Vec<&str> = known.splitn(6, ':').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    // IAM is global: its ARNs name no region.
    let region = if service == "iam" { "" } else { part(3) };
    format!("arn:{}:{service}:{region}:{}:{resource}", part(1), part(4))
}

/// Finish an examination: ask IAM about every duty for the function's own role (when it knows
/// it), publish the doctor alert, and return the answer with the whole table.
pub async fn conclude<P: PermissionCheck, A: AlertSink>(
    common: &CommonConfig,
    examination: Examination,
    permissions: &P,
    alerts: &A,
) -> Value {
    let function = common.function_name.as_str();
    let Examination {
        mut findings,
        duties,
    } = examination;
    match common.role_arn.as_deref() {
        Some(role) => findings.extend(permissions.check(role, &duties).await),
        None => findings.push(Finding::new(
            Area::Permission,
            format!("{} duties", duties.len()),
            Verdict::Undetermined,
            "OPS_ROLE_ARN is not set, so the function does not know its role and IAM was not asked",
        )),
    }
    let alert = doctor_alert(function, &findings);
    findings.push(match alerts.publish(&alert).await {
        Ok(()) => Finding::new(
            Area::AlertPath,
            "alert topic",
            Verdict::Ok,
            "the doctor alert (info) was published",
        ),
        Err(error) => Finding::new(
            Area::AlertPath,
            "alert topic",
            Verdict::Problem,
            format!("the doctor alert could not be published: {error}"),
        ),
    });
    answer(function, &findings)
}

/// The answer: `ok`, counts per verdict, and the table.
pub fn answer(function: &str, findings: &[Finding]) -> Value {
    let count = |verdict: Verdict| findings.iter().filter(|f| f.verdict == verdict).count();
    json!({
        "status": "doctor",
        "function": function,
        "ok": findings.iter().all(|f| f.verdict == Verdict::Ok),
        "summary": {
            "ok": count(Verdict::Ok),
            "undetermined": count(Verdict::Undetermined),
            "problem": count(Verdict::Problem),
            "denied": count(Verdict::Denied),
        },
        "findings": findings,
        "table": table(findings),
    })
}

/// The findings as aligned text lines, worst first, for a terminal or a chat code block.
pub fn table(findings: &[Finding]) -> Vec<String> {
    let mut rows: Vec<&Finding> = findings.iter().collect();
    rows.sort_by_key(|f| (std::cmp::Reverse(f.verdict), f.area));
    rows.iter()
        .map(|f| {
            format!(
                "{:<12} {:<11} {} - {}",
                f.verdict.as_str(),
                f.area.as_str(),
                f.subject,
                f.detail
            )
        })
        .collect()
}

/// The info alert that proves the alert path, with what the doctor found so far.
fn doctor_alert(function: &str, findings: &[Finding]) -> Alert {
    let bad: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.verdict != Verdict::Ok)
        .collect();
    let title = if bad.is_empty() {
        format!("{function}: doctor found everything in order")
    } else {
        format!("{function}: doctor found {} thing(s) to look at", bad.len())
    };
    let mut alert = Alert::new(Severity::Info, function, "doctor", function, title)
        .what(format!(
            "`doctor` checked {} thing(s): configuration, resources and IAM permissions; it changed nothing. This alert proves the alert path.",
            findings.len()
        ))
        .why("Someone asked for `doctor` (make doctor, or the chat command).");
    for finding in bad.iter().take(10) {
        alert = alert.next_step(format!(
            "{}: {} - {}",
            finding.verdict.as_str(),
            finding.subject,
            finding.detail
        ));
    }
    alert
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_lead_is_shown_and_a_lead_above_clock_skew_says_what_it_allows() {
        assert_eq!(
            schedule_lead_text(30),
            "30 s: an event's own time may be at most this far ahead of the function's clock (clock skew; default 30 s)"
        );
        let wide = schedule_lead_text(3600);
        assert!(
            wide.starts_with(
                "3600 s, above the default 30 s: an event's own time may run 1 hour ahead"
            ),
            "{wide}"
        );
    }
    use crate::alert::MemoryAlerts;

    struct Allow(Verdict);

    impl PermissionCheck for Allow {
        async fn check(&self, _role: &str, duties: &[Duty]) -> Vec<Finding> {
            duties
                .iter()
                .map(|d| Finding::new(Area::Permission, d.subject(), self.0, "simulated"))
                .collect()
        }
    }

    fn common(function: &str, role_arn: Option<&str>) -> CommonConfig {
        CommonConfig {
            function_name: function.into(),
            alert_topic_arn: "arn:aws:sns:us-east-1:123456789012:ops-alerts".into(),
            role_arn: role_arn.map(String::from),
            schedule_lead: crate::events::DEFAULT_SCHEDULE_LEAD,
        }
    }

    fn examination() -> Examination {
        let mut exam = Examination::default();
        exam.setting("ECS_CLUSTERS", "prod");
        exam.found("ecs cluster prod", "ACTIVE");
        exam.duty(Duty::new(
            "ecs:UpdateService",
            "arn:aws:ecs:us-east-1:123456789012:service/prod/web",
            "deploys",
        ));
        exam
    }

    #[tokio::test]
    async fn everything_proved_is_ok_and_the_alert_path_is_proved_by_the_doctor_alert() {
        let alerts = MemoryAlerts::default();
        let answer = conclude(
            &common(
                "opsstack-deploy-trigger",
                Some("arn:aws:iam::123456789012:role/r"),
            ),
            examination(),
            &Allow(Verdict::Ok),
            &alerts,
        )
        .await;
        assert_eq!(answer["ok"], true);
        assert_eq!(answer["summary"]["ok"], 4);
        assert_eq!(alerts.sent().len(), 1);
        assert_eq!(alerts.sent()[0].event_type, "doctor");
        assert_eq!(alerts.sent()[0].severity, Severity::Info);
    }

    #[tokio::test]
    async fn a_denied_duty_makes_the_answer_not_ok_and_leads_the_table() {
        let alerts = MemoryAlerts::default();
        let answer = conclude(
            &common("f", Some("arn:aws:iam::123456789012:role/r")),
            examination(),
            &Allow(Verdict::Denied),
            &alerts,
        )
        .await;
        assert_eq!(answer["ok"], false);
        assert_eq!(answer["summary"]["denied"], 1);
        assert_eq!(
            answer["table"][0],
            "DENIED       permission  ecs:UpdateService on arn:aws:ecs:us-east-1:123456789012:service/prod/web - simulated"
        );
        assert!(alerts.sent()[0].next_steps[0].starts_with("DENIED: ecs:UpdateService"));
    }

    #[tokio::test]
    async fn without_its_role_the_function_says_iam_was_not_asked_instead_of_claiming_ok() {
        let alerts = MemoryAlerts::default();
        let answer = conclude(
            &common("f", None),
            examination(),
            &Allow(Verdict::Ok),
            &alerts,
        )
        .await;
        assert_eq!(answer["ok"], false);
        assert_eq!(answer["summary"]["undetermined"], 1);
        assert!(answer["table"][0]
            .as_str()
            .unwrap()
            .contains("OPS_ROLE_ARN is not set"));
    }

    #[test]
    fn arns_are_named_in_the_deployment_s_partition_region_and_account() {
        assert_eq!(
            arn_beside(
                "arn:aws-cn:sns:cn-north-1:123456789012:ops-alerts",
                "ecs",
                "cluster/prod"
            ),
            "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/prod"
        );
    }

    #[test]
    fn resource_tags_become_the_context_keys_iam_reads_from_the_resource() {
        let tags =
            std::collections::BTreeMap::from([("ops:swap-app".to_string(), "shop".to_string())]);
        let duty = Duty::new("ecs:UpdateService", "arn", "swaps").with_resource_tags(&tags);
        assert_eq!(
            duty.context,
            [ContextValue {
                key: "aws:ResourceTag/ops:swap-app".into(),
                values: vec!["shop".into()]
            }]
        );
    }
}
