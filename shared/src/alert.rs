//! The alert model: what ops read in chat and email after a function acted.
//!
//! Every alert says what happened, to what, why, the state before and after, who asked, and the
//! exact chat command that undoes it where one exists. It renders three ways: the custom-notification
//! JSON of Amazon Q Developer in chat applications (the default SNS body), a plain-text body for email subscribers, and a
//! short ASCII subject. [`AlertSink`] is the port that sends it; `aws::sns` has the SNS adapter.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use crate::echo::truncate;
use crate::error::Result;

/// Longest free-text field kept in an alert; longer text is cut and marked, so one runaway body
/// snippet cannot push a message past SNS's 256 KB limit.
pub const MAX_FIELD_CHARS: usize = 2_000;
/// SNS subjects must be under 100 characters.
const MAX_SUBJECT_CHARS: usize = 99;

/// How urgently a human should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A change went as planned.
    Info,
    /// Something was skipped or degraded; no action needed yet.
    Warning,
    /// A change failed or something is down; act now.
    Critical,
}

impl Severity {
    /// Upper-case label used in subjects and email.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }

    fn emoji(self) -> &'static str {
        match self {
            Severity::Info => ":large_green_circle:",
            Severity::Warning => ":large_yellow_circle:",
            Severity::Critical => ":red_circle:",
        }
    }

    /// The lower-case value of the `severity` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert, built by a function's report step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// How urgent.
    pub severity: Severity,
    /// The function that acted, e.g. `deploy-trigger`.
    pub function: String,
    /// A dotted outcome name, e.g. `deployment.failed`, for filtering.
    pub event_type: String,
    /// What it acted on, human-readable, e.g. `prod/web`.
    pub resource: String,
    /// One line: what happened to the resource.
    pub title: String,
    /// What happened, in a sentence or two.
    pub what: String,
    /// Why: the trigger and the reason for the decision.
    pub why: String,
    /// The state before, if the alert is about a change.
    pub before: Option<String>,
    /// The state after.
    pub after: Option<String>,
    /// Who asked (chat user), or the trigger that started it.
    pub requested_by: Option<String>,
    /// The exact chat command that undoes this, if one exists.
    pub undo: Option<String>,
    /// What a human should do next.
    pub next_steps: Vec<String>,
    /// ARNs of the resources involved.
    pub related_resources: Vec<String>,
    /// Groups alerts about one piece of work into one chat thread.
    pub thread_id: Option<String>,
    /// Further facts (ids, counts, values) as name/value pairs.
    pub context: BTreeMap<String, String>,
}

impl Alert {
    /// A new alert; fill the rest with the builder methods.
    pub fn new(
        severity: Severity,
        function: impl Into<String>,
        event_type: impl Into<String>,
        resource: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        Alert {
            severity,
            function: function.into(),
            event_type: event_type.into(),
            resource: resource.into(),
            title: title.into(),
            what: String::new(),
            why: String::new(),
            before: None,
            after: None,
            requested_by: None,
            undo: None,
            next_steps: Vec::new(),
            related_resources: Vec::new(),
            thread_id: None,
            context: BTreeMap::new(),
        }
    }

    /// What happened.
    pub fn what(mut self, text: impl Into<String>) -> Self {
        self.what = text.into();
        self
    }

    /// Why it happened.
    pub fn why(mut self, text: impl Into<String>) -> Self {
        self.why = text.into();
        self
    }

    /// The state before and after the change.
    pub fn change(mut self, before: impl Into<String>, after: impl Into<String>) -> Self {
        self.before = Some(before.into());
        self.after = Some(after.into());
        self
    }

    /// Who asked.
    pub fn requested_by(mut self, who: impl Into<String>) -> Self {
        self.requested_by = Some(who.into());
        self
    }

    /// The chat command that undoes this.
    pub fn undo(mut self, command: impl Into<String>) -> Self {
        self.undo = Some(command.into());
        self
    }

    /// Add a next step.
    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_steps.push(step.into());
        self
    }

    /// Add a related resource ARN.
    pub fn related(mut self, arn: impl Into<String>) -> Self {
        self.related_resources.push(arn.into());
        self
    }

    /// Put the alert in a chat thread.
    pub fn thread(mut self, id: impl Into<String>) -> Self {
        self.thread_id = Some(id.into());
        self
    }

    /// Add a fact.
    pub fn context(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.insert(name.into(), value.into());
        self
    }

    /// The SNS subject: `[SEVERITY] title`, ASCII, one line, under 100 characters.
    pub fn subject(&self) -> String {
        let raw = format!("[{}] {}", self.severity.label(), self.title);
        let ascii: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        truncate(&ascii, MAX_SUBJECT_CHARS)
    }

    /// The custom-notification JSON of Amazon Q Developer in chat applications (formerly AWS Chatbot).
    pub fn chatbot_json(&self) -> Value {
        let mut lines = vec![format!("*What happened:* {}", clip(&self.what))];
        if !self.why.is_empty() {
            lines.push(format!("*Why:* {}", clip(&self.why)));
        }
        if let (Some(before), Some(after)) = (&self.before, &self.after) {
            lines.push(format!("*Before:* `{}`", clip(before)));
            lines.push(format!("*After:* `{}`", clip(after)));
        }
        if let Some(who) = &self.requested_by {
            lines.push(format!("*Requested by:* {}", clip(who)));
        }
        if let Some(undo) = &self.undo {
            lines.push(format!("*To undo:* `{}`", clip(undo)));
        }
        let mut additional: BTreeMap<String, String> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), clip(v)))
            .collect();
        additional.insert("function".into(), self.function.clone());
        additional.insert("resource".into(), self.resource.clone());
        additional.insert("severity".into(), self.severity.as_str().into());
        if let Some(who) = &self.requested_by {
            additional.insert("requested_by".into(), who.clone());
        }
        let thread = self
            .thread_id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.function, self.resource));
        json!({
            "version": "1.0",
            "source": "custom",
            "content": {
                "textType": "client-markdown",
                "title": format!("{} {}", self.severity.emoji(), clip(&self.title)),
                "description": lines.join("\n"),
                "nextSteps": self.next_steps.iter().map(|s| clip(s)).collect::<Vec<_>>(),
                "keywords": [self.severity.as_str(), self.function, self.resource, self.event_type],
            },
            "metadata": {
                "threadId": thread,
                "summary": clip(&self.title),
                "eventType": self.event_type,
                "relatedResources": self.related_resources,
                "additionalContext": additional,
            }
        })
    }

    /// The plain-text body for email subscribers.
    pub fn email_text(&self) -> String {
        let mut text = format!("[{}] {}\n\n", self.severity.label(), clip(&self.title));
        text.push_str(&format!("What happened: {}\n", clip(&self.what)));
        if !self.why.is_empty() {
            text.push_str(&format!("Why: {}\n", clip(&self.why)));
        }
        if let (Some(before), Some(after)) = (&self.before, &self.after) {
            text.push_str(&format!(
                "Before: {}\nAfter: {}\n",
                clip(before),
                clip(after)
            ));
        }
        if let Some(who) = &self.requested_by {
            text.push_str(&format!("Requested by: {}\n", clip(who)));
        }
        if let Some(undo) = &self.undo {
            text.push_str(&format!(
                "\nTo undo, send this in the ops chat channel:\n  {}\n",
                clip(undo)
            ));
        }
        if !self.next_steps.is_empty() {
            text.push_str("\nNext steps:\n");
            for step in &self.next_steps {
                text.push_str(&format!("  - {}\n", clip(step)));
            }
        }
        text.push_str(&format!(
            "\nFunction: {}\nResource: {}\nEvent: {}\n",
            self.function, self.resource, self.event_type
        ));
        for arn in &self.related_resources {
            text.push_str(&format!("  {arn}\n"));
        }
        for (name, value) in &self.context {
            text.push_str(&format!("{name}: {}\n", clip(value)));
        }
        text
    }
}

fn clip(text: &str) -> String {
    truncate(text, MAX_FIELD_CHARS)
}

/// The port through which a function sends its alerts.
pub trait AlertSink: Send + Sync {
    /// Send one alert.
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<()>> + Send;
}

/// An [`AlertSink`] that keeps alerts in memory, for unit tests of handlers.
#[derive(Debug, Default)]
pub struct MemoryAlerts {
    sent: Mutex<Vec<Alert>>,
}

impl MemoryAlerts {
    /// Every alert published so far, oldest first.
    pub fn sent(&self) -> Vec<Alert> {
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl AlertSink for MemoryAlerts {
    async fn publish(&self, alert: &Alert) -> Result<()> {
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(alert.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_deploy() -> Alert {
        Alert::new(Severity::Critical, "deploy-trigger", "deployment.failed", "prod/web", "prod/web deployment failed")
            .what("The deployment of web:release-42 to prod/web failed and ECS rolled back.")
            .why("ECS deployment circuit breaker: tasks failed to start.")
            .change("web:7 (release-41)", "web:7 (release-41), rollout of web:8 failed")
            .requested_by("alice")
            .undo("@Amazon Q lambda invoke --function-name deploy-trigger --payload {\"command\":\"rollback\"}")
            .next_step("Read the stopped tasks' reasons in the ECS console.")
            .related("arn:aws:ecs:us-east-1:123456789012:service/prod/web")
            .context("deployment_id", "ecs-svc/123")
    }

    #[test]
    fn chatbot_json_has_every_field_the_custom_notification_schema_names() {
        let body = failed_deploy().chatbot_json();
        assert_eq!(body["version"], "1.0");
        assert_eq!(body["source"], "custom");
        assert_eq!(body["content"]["textType"], "client-markdown");
        assert_eq!(
            body["content"]["title"],
            ":red_circle: prod/web deployment failed"
        );
        let description = body["content"]["description"].as_str().unwrap();
        assert!(
            description.contains("*Why:* ECS deployment circuit breaker"),
            "{description}"
        );
        assert!(
            description.contains("*Before:* `web:7 (release-41)`"),
            "{description}"
        );
        assert!(
            description.contains("*Requested by:* alice"),
            "{description}"
        );
        assert!(
            description.contains("*To undo:* `@Amazon Q lambda invoke"),
            "{description}"
        );
        assert_eq!(
            body["content"]["nextSteps"][0],
            "Read the stopped tasks' reasons in the ECS console."
        );
        assert_eq!(body["metadata"]["eventType"], "deployment.failed");
        assert_eq!(body["metadata"]["threadId"], "deploy-trigger:prod/web");
        assert_eq!(
            body["metadata"]["relatedResources"][0],
            "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
        );
        assert_eq!(
            body["metadata"]["additionalContext"]["deployment_id"],
            "ecs-svc/123"
        );
        assert_eq!(
            body["metadata"]["additionalContext"]["requested_by"],
            "alice"
        );
    }

    #[test]
    fn email_text_reads_top_to_bottom_without_markup() {
        let text = failed_deploy().email_text();
        assert!(
            text.starts_with(
                "[CRITICAL] prod/web deployment failed\n\nWhat happened: The deployment"
            ),
            "{text}"
        );
        assert!(text.contains(
            "\nBefore: web:7 (release-41)\nAfter: web:7 (release-41), rollout of web:8 failed\n"
        ));
        assert!(
            text.contains("To undo, send this in the ops chat channel:\n  @Amazon Q lambda invoke")
        );
        assert!(text.contains("  - Read the stopped tasks' reasons"));
        assert!(!text.contains('*') && !text.contains('`'), "{text}");
    }

    #[test]
    fn subject_is_short_ascii_on_one_line() {
        let alert = Alert::new(
            Severity::Warning,
            "f",
            "e",
            "r",
            format!("caf\u{e9}\n{}", "x".repeat(300)),
        );
        let subject = alert.subject();
        assert!(subject.chars().count() < 100);
        assert!(subject.starts_with("[WARNING] caf??xxx"), "{subject}");
        assert!(subject.ends_with("... (truncated)"));
    }

    #[test]
    fn runaway_text_is_cut_and_marked() {
        let alert = Alert::new(Severity::Info, "f", "e", "r", "t").what("y".repeat(10_000));
        let what = alert.chatbot_json()["content"]["description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(what.chars().count() < MAX_FIELD_CHARS + 40);
        assert!(what.ends_with("... (truncated)"));
    }
}
