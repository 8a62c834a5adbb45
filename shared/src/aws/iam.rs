//! IAM adapter: ask IAM whether the function's own role may do each of its duties
//! (`iam:SimulatePrincipalPolicy`, IAM API Reference), for `doctor`.
//!
//! One call per duty: the duty's action on its resource ARN, with the context keys the real call
//! carries. IAM's `EvalDecision` decides the verdict: `allowed` is ok; `explicitDeny` names the
//! denying statement; `implicitDeny` with `MissingContextValues` is undetermined (IAM needed a key
//! it was not given), otherwise denied. The local emulator marks a condition it cannot evaluate as
//! a missing context value prefixed `emulator-cannot-evaluate:` (tests/emulator/README.md); that is
//! shown as such, never as allowed.

use aws_config::SdkConfig;
use aws_sdk_iam::types::{
    ContextEntry, ContextKeyTypeEnum, EvaluationResult, PolicyEvaluationDecisionType,
};
use tracing::instrument;

use super::aws_error;
use crate::doctor::{Area, Duty, Finding, PermissionCheck, Verdict};

/// The prefix the emulator gives a condition key it cannot evaluate; any missing context value
/// makes the verdict undetermined, whatever IAM decided without it.
const EMULATOR_CANNOT_EVALUATE: &str = "emulator-cannot-evaluate:";

/// Asks IAM about a role's permissions.
#[derive(Debug, Clone)]
pub struct IamSimulator {
    client: aws_sdk_iam::Client,
}

impl IamSimulator {
    /// Build the client from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        IamSimulator {
            client: aws_sdk_iam::Client::new(config),
        }
    }

    #[instrument(skip(self, duty), fields(action = %duty.action, resource = %duty.resource))]
    async fn simulate(&self, role_arn: &str, duty: &Duty) -> Finding {
        let mut request = self
            .client
            .simulate_principal_policy()
            .policy_source_arn(role_arn)
            .action_names(&duty.action)
            .resource_arns(&duty.resource);
        for entry in &duty.context {
            request = request.context_entries(
                ContextEntry::builder()
                    .context_key_name(&entry.key)
                    .set_context_key_values(Some(entry.values.clone()))
                    .context_key_type(if entry.values.len() == 1 {
                        ContextKeyTypeEnum::String
                    } else {
                        ContextKeyTypeEnum::StringList
                    })
                    .build(),
            );
        }
        let subject = duty.subject();
        match request.send().await {
            Ok(answer) => match answer.evaluation_results().first() {
                Some(result) => judge(subject, &duty.why, result),
                None => Finding::new(
                    Area::Permission,
                    subject,
                    Verdict::Undetermined,
                    "IAM returned no evaluation result",
                ),
            },
            Err(error) => Finding::new(
                Area::Permission,
                subject,
                Verdict::Undetermined,
                format!(
                    "IAM could not be asked: {}",
                    aws_error("iam", "SimulatePrincipalPolicy", error)
                ),
            ),
        }
    }
}

impl PermissionCheck for IamSimulator {
    async fn check(&self, role_arn: &str, duties: &[Duty]) -> Vec<Finding> {
        let mut findings = Vec::with_capacity(duties.len());
        for duty in duties {
            let finding = self.simulate(role_arn, duty).await;
            if finding.detail.contains(NO_SUCH_ROLE) {
                // Every other duty would say the same: one row that names the cause.
                return vec![Finding::new(
                    Area::Config,
                    "OPS_ROLE_ARN",
                    Verdict::Problem,
                    format!("IAM knows no role {role_arn}: {}", finding.detail),
                )];
            }
            findings.push(finding);
        }
        findings
    }
}

/// IAM's error code for a principal that does not exist.
const NO_SUCH_ROLE: &str = "NoSuchEntity";

/// The finding for one evaluation result.
fn judge(subject: String, why: &str, result: &EvaluationResult) -> Finding {
    let (decision, statements, missing) = match result.resource_specific_results().first() {
        Some(specific) => (
            specific.eval_resource_decision(),
            specific.matched_statements(),
            specific.missing_context_values(),
        ),
        None => (
            result.eval_decision(),
            result.matched_statements(),
            result.missing_context_values(),
        ),
    };
    let deciding: Vec<&str> = statements
        .iter()
        .filter_map(|s| s.source_policy_id())
        .collect();
    let (cannot_evaluate, not_given): (Vec<&str>, Vec<&str>) = missing
        .iter()
        .map(String::as_str)
        .partition(|key| key.starts_with(EMULATOR_CANNOT_EVALUATE));
    let (verdict, detail) = match decision {
        PolicyEvaluationDecisionType::ExplicitDeny => (
            Verdict::Denied,
            format!(
                "explicitly denied by {} ({why})",
                if deciding.is_empty() {
                    "a Deny statement".to_string()
                } else {
                    deciding.join(", ")
                }
            ),
        ),
        // An allow is only proved when IAM evaluated every condition: a key it had no value for,
        // or one the emulator cannot evaluate, may sit in a Deny that would apply to the real call.
        _ if !cannot_evaluate.is_empty() => (
            Verdict::Undetermined,
            format!(
                "the local emulator cannot evaluate the condition on {}, so it does not claim this is allowed or denied ({why})",
                cannot_evaluate
                    .iter()
                    .map(|k| k.trim_start_matches(EMULATOR_CANNOT_EVALUATE))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        _ if !not_given.is_empty() => (
            Verdict::Undetermined,
            format!(
                "IAM needs context keys the check did not give: {} ({why})",
                not_given.join(", ")
            ),
        ),
        PolicyEvaluationDecisionType::Allowed => (
            Verdict::Ok,
            format!("allowed by {} ({why})", deciding.join(", ")),
        ),
        _ => (
            Verdict::Denied,
            format!("no statement of the role allows it: implicitly denied ({why})"),
        ),
    };
    Finding::new(Area::Permission, subject, verdict, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::Statement;

    fn result(decision: PolicyEvaluationDecisionType, missing: &[&str]) -> EvaluationResult {
        EvaluationResult::builder()
            .eval_action_name("ecs:UpdateService")
            .eval_decision(decision)
            .matched_statements(
                Statement::builder()
                    .source_policy_id("role_r_function")
                    .build(),
            )
            .set_missing_context_values(Some(missing.iter().map(|k| k.to_string()).collect()))
            .build()
            .expect("action and decision are set")
    }

    fn verdict(decision: PolicyEvaluationDecisionType, missing: &[&str]) -> (Verdict, String) {
        let finding = judge(
            "ecs:UpdateService on arn".into(),
            "deploys",
            &result(decision, missing),
        );
        (finding.verdict, finding.detail)
    }

    #[test]
    fn an_allow_with_every_condition_evaluated_is_ok_and_names_the_policy() {
        assert_eq!(
            verdict(PolicyEvaluationDecisionType::Allowed, &[]),
            (Verdict::Ok, "allowed by role_r_function (deploys)".into())
        );
    }

    #[test]
    fn an_allow_beside_a_condition_that_was_not_evaluated_is_never_ok() {
        // A Deny on aws:CurrentTime or one the emulator cannot evaluate may apply to the real call.
        let (unevaluated, detail) = verdict(
            PolicyEvaluationDecisionType::Allowed,
            &["emulator-cannot-evaluate:aws:SourceIp"],
        );
        assert_eq!(unevaluated, Verdict::Undetermined);
        assert!(
            detail.contains("cannot evaluate the condition on aws:SourceIp"),
            "{detail}"
        );
        let (missing, detail) =
            verdict(PolicyEvaluationDecisionType::Allowed, &["aws:CurrentTime"]);
        assert_eq!(missing, Verdict::Undetermined);
        assert!(detail.contains("aws:CurrentTime"), "{detail}");
    }

    #[test]
    fn an_explicit_deny_stands_and_an_implicit_one_is_denied_unless_context_was_missing() {
        assert_eq!(
            verdict(
                PolicyEvaluationDecisionType::ExplicitDeny,
                &["aws:CurrentTime"]
            )
            .0,
            Verdict::Denied
        );
        assert_eq!(
            verdict(PolicyEvaluationDecisionType::ImplicitDeny, &[]).0,
            Verdict::Denied
        );
        assert_eq!(
            verdict(PolicyEvaluationDecisionType::ImplicitDeny, &["ecs:cluster"]).0,
            Verdict::Undetermined
        );
    }
}
