//! The observe / decide / act / report skeleton every function follows.
//!
//! A function observes AWS into a snapshot, then a pure `decide` turns snapshot, input and policy
//! (and the time, passed in) into a [`Plan`]: the changes it intends, each with the reason a human
//! will read. [`execute`] then acts on the plan through the function's ports, or, in dry-run,
//! does not, and returns an [`Execution`] that says exactly what was applied, what failed and what
//! was not attempted. Changes run in order and stop at the first failure: a function orders its
//! changes so that every prefix is safe, and the next invocation converges from what AWS shows.

use std::future::Future;

use serde::Serialize;

use crate::error::Error;

/// One intended change and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change<A> {
    /// What to do, in the function's own action type.
    pub action: A,
    /// Why, for the alert and the chat reply.
    pub reason: String,
}

/// What a decide step intends to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan<A> {
    /// Changes, in the order they must be applied.
    pub changes: Vec<Change<A>>,
    /// Why something was not planned (already done, cooldown, not opted in, ...).
    pub notes: Vec<String>,
}

impl<A> Default for Plan<A> {
    fn default() -> Self {
        Plan {
            changes: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl<A> Plan<A> {
    /// An empty plan.
    pub fn new() -> Self {
        Plan::default()
    }

    /// Add a change with its reason.
    pub fn change(mut self, action: A, reason: impl Into<String>) -> Self {
        self.changes.push(Change {
            action,
            reason: reason.into(),
        });
        self
    }

    /// Add a note on something not planned.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Whether to act or only to say what would be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply the plan.
    Apply,
    /// Return the plan; change nothing.
    DryRun,
}

impl Mode {
    /// `DryRun` when `dry_run` is true.
    pub fn from_dry_run(dry_run: bool) -> Self {
        if dry_run {
            Mode::DryRun
        } else {
            Mode::Apply
        }
    }
}

/// The overall result of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to do: AWS is already as intended.
    NoChange,
    /// Dry-run: the plan is returned, nothing was changed.
    Planned,
    /// Every change was applied.
    Applied,
    /// A change failed; those before it were applied, those after were not attempted.
    Failed,
}

/// The change that failed and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedChange<A> {
    /// The change.
    pub change: Change<A>,
    /// The error, as the chat user will read it.
    pub error: String,
    /// Whether a later invocation may succeed.
    pub retryable: bool,
}

/// What happened to a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution<A> {
    /// Overall result.
    pub status: Status,
    /// Whether this was a dry-run.
    pub dry_run: bool,
    /// Changes applied, in order (in dry-run: none).
    pub applied: Vec<Change<A>>,
    /// The change that failed, if any.
    pub failed: Option<FailedChange<A>>,
    /// Changes not attempted: after a failure, or all of them in dry-run.
    pub not_attempted: Vec<Change<A>>,
    /// The plan's notes.
    pub notes: Vec<String>,
}

impl<A> Execution<A> {
    /// Whether anything in AWS was changed.
    pub fn changed_anything(&self) -> bool {
        !self.applied.is_empty()
    }

    /// The failure as an [`Error::Incomplete`], for a handler to return (so Lambda retries it when
    /// retrying can help); `None` when nothing failed.
    pub fn error(&self) -> Option<Error> {
        self.failed.as_ref().map(|failed| Error::Incomplete {
            applied: self.applied.len(),
            planned: self.applied.len() + 1 + self.not_attempted.len(),
            message: failed.error.clone(),
            retryable: failed.retryable,
        })
    }
}

/// Apply `plan` in order through `apply`, stopping at the first failure; in dry-run, apply nothing.
pub async fn execute<A, F, Fut>(plan: Plan<A>, mode: Mode, mut apply: F) -> Execution<A>
where
    F: FnMut(&A) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let Plan { changes, notes } = plan;
    if mode == Mode::DryRun || changes.is_empty() {
        let status = if changes.is_empty() {
            Status::NoChange
        } else {
            Status::Planned
        };
        return Execution {
            status,
            dry_run: mode == Mode::DryRun,
            applied: vec![],
            failed: None,
            not_attempted: changes,
            notes,
        };
    }
    let mut applied = Vec::with_capacity(changes.len());
    let mut pending = changes.into_iter();
    for change in pending.by_ref() {
        if let Err(error) = apply(&change.action).await {
            let failed = FailedChange {
                retryable: error.retryable(),
                error: error.to_string(),
                change,
            };
            return Execution {
                status: Status::Failed,
                dry_run: false,
                applied,
                failed: Some(failed),
                not_attempted: pending.collect(),
                notes,
            };
        }
        applied.push(change);
    }
    Execution {
        status: Status::Applied,
        dry_run: false,
        applied,
        failed: None,
        not_attempted: vec![],
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsError;
    use std::cell::RefCell;

    fn plan() -> Plan<&'static str> {
        Plan::new()
            .change("register web:8", "image release-42 was pushed")
            .change("update prod/web", "prod/web runs web:7")
            .change("tag prod/web", "remember the deployment")
            .note("prod/api does not opt in to repository web")
    }

    #[tokio::test]
    async fn dry_run_applies_nothing_and_returns_the_whole_plan() {
        let calls = RefCell::new(0);
        let run = execute(plan(), Mode::DryRun, |_| {
            *calls.borrow_mut() += 1;
            async { Ok(()) }
        })
        .await;
        assert_eq!(*calls.borrow(), 0);
        assert_eq!(run.status, Status::Planned);
        assert_eq!(run.not_attempted.len(), 3);
        assert!(!run.changed_anything());
    }

    #[tokio::test]
    async fn a_failure_stops_the_run_and_says_what_was_and_was_not_done() {
        let run = execute(plan(), Mode::Apply, |action| {
            let fail = *action == "update prod/web";
            async move {
                if fail {
                    Err(Error::Aws(AwsError::classify(
                        "ecs",
                        "UpdateService",
                        Some("ThrottlingException"),
                        Some("slow down"),
                        Some(400),
                    )))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(run.status, Status::Failed);
        assert_eq!(
            run.applied.iter().map(|c| c.action).collect::<Vec<_>>(),
            ["register web:8"]
        );
        let failed = run.failed.as_ref().unwrap();
        assert_eq!(failed.change.action, "update prod/web");
        assert!(failed.retryable);
        assert_eq!(
            failed.error,
            "ecs UpdateService failed: ThrottlingException: slow down"
        );
        assert_eq!(
            run.not_attempted
                .iter()
                .map(|c| c.action)
                .collect::<Vec<_>>(),
            ["tag prod/web"]
        );
    }

    #[tokio::test]
    async fn an_empty_plan_is_no_change_and_keeps_its_notes() {
        let run = execute(
            Plan::<&str>::new().note("already running the digest"),
            Mode::Apply,
            |_| async { Ok(()) },
        )
        .await;
        assert_eq!(run.status, Status::NoChange);
        assert_eq!(run.notes, ["already running the digest"]);
        let json = serde_json::to_value(&run).unwrap();
        assert_eq!(json["status"], "no_change");
    }
}
