//! The tag contract: how a service opts in, and what deploy-trigger remembers on it.
//!
//! AWS tag values allow only letters, digits, spaces and `_ . : / = + - @`, so lists are
//! space-separated and the tag-pattern wildcard is `+` (one or more characters), not `*`.
//!
//! | tag | set by | meaning |
//! |---|---|---|
//! | `ops:deploy-repository` | you | opt in: the ECR repository whose pushes deploy here |
//! | `ops:deploy-containers` | you | containers to update, space-separated (default: every container running an image of that repository) |
//! | `ops:deploy-tag-pattern` | you | pushed tags that deploy, space-separated alternatives, `+` = any characters (default `latest`) |
//! | `ops:deploy-in-flight` | deploy-trigger | the deployment it started last: id, trigger, who, when, from, to |
//! | `ops:deploy-last-completed` | deploy-trigger | task definition of the last deployment verified COMPLETED |
//! | `ops:deploy-previous-completed` | deploy-trigger | the one before it: where a rollback from the last goes |
//! | `ops:deploy-last-reported` | deploy-trigger | the deployment whose outcome was last alerted (so a duplicate event alerts once) |
//! | `ops:deploy-settlement` | deploy-trigger | the settling of the in-flight deployment: who claimed it and when, then its outcome once alerted (see [`Settlement`]) |
//! | `ops:deploy-newest-pushed` | deploy-trigger | ECR's `imagePushedAt` and digest of the newest image it has deployed here: a push of an older image, or this image's push again once the service moved on, is refused |
//! | `ops:deploy-refused` | deploy-trigger | the pushes refused (and alerted) against that newest image, so a redelivered refusal is quiet (see [`RefusedPushes`]) |
//!
//! A service that also carries `ops:swap-app` is a colour of a blue/green app: its opt-in is an
//! error (alerted on push, refused in chat), since deploying it in place would bypass the swap. So
//! is the opt-in of a service on the `CODE_DEPLOY` or `EXTERNAL` deployment controller, whose task
//! definition UpdateService cannot change.
//!
//! Task definition revisions it registers carry `ops:image-digest` and `ops:derived-from`, so a
//! retried event reuses a revision registered by an interrupted run instead of adding another.

use std::collections::BTreeMap;

use ops_core::aws::ecs::{ServiceState, ECS_CONTROLLER};
use ops_core::tags::{clip, fields, tag_word, MAX_TAG_VALUE};
use serde::Serialize;

/// Opt-in: the repository.
pub const REPOSITORY: &str = "ops:deploy-repository";
/// Opt-in: the containers to update.
pub const CONTAINERS: &str = "ops:deploy-containers";
/// Opt-in: the tag patterns that deploy.
pub const TAG_PATTERN: &str = "ops:deploy-tag-pattern";
/// State: the deployment in flight.
pub const IN_FLIGHT: &str = "ops:deploy-in-flight";
/// State: the last verified-complete task definition.
pub const LAST_COMPLETED: &str = "ops:deploy-last-completed";
/// State: the verified-complete task definition before the last.
pub const PREVIOUS_COMPLETED: &str = "ops:deploy-previous-completed";
/// State: the deployments whose outcomes were last reported, newest first, space-separated (see
/// [`reported_ids`]).
pub const LAST_REPORTED: &str = "ops:deploy-last-reported";
/// How many reported deployments [`LAST_REPORTED`] remembers: enough that a redelivered event of
/// an earlier deployment still listed (a blue/green rollback puts the old deployment back in
/// front) is known as reported.
pub const REPORTED_KEPT: usize = 5;

/// The deployment ids the `ops:deploy-last-reported` value names (one id, as earlier versions
/// wrote, reads as a list of one).
pub fn reported_ids(value: Option<&str>) -> Vec<&str> {
    value.map_or_else(Vec::new, |v| v.split_whitespace().collect())
}

/// The `ops:deploy-last-reported` value once `id` is reported too.
pub fn with_reported(value: Option<&str>, id: &str) -> String {
    let mut ids = vec![id];
    ids.extend(reported_ids(value).into_iter().filter(|i| *i != id));
    ids.truncate(REPORTED_KEPT);
    ids.join(" ")
}
/// State: the newest image (by ECR's push time) deployed to the service, see [`NewestPushed`].
pub const NEWEST_PUSHED: &str = "ops:deploy-newest-pushed";
/// State: the pushes already refused against the newest image, see [`RefusedPushes`].
pub const REFUSED: &str = "ops:deploy-refused";
/// State: the claim on, then the outcome of, the in-flight deployment, see [`Settlement`].
pub const SETTLEMENT: &str = "ops:deploy-settlement";
/// How long a claim on settling a deployment holds before another invocation may take it over, in
/// seconds: twice the function's timeout (60 s in the template), so a live claimer is never
/// overtaken and a dead one (crashed between claim and alert) is, by the next reconcile.
pub const CLAIM_LEASE_SECONDS: u64 = 120;
/// How many refused push digests `ops:deploy-refused` remembers (the oldest drops out).
pub const MAX_REMEMBERED_REFUSALS: usize = 8;
/// The pattern used when a service names none.
pub const DEFAULT_PATTERN: &str = "latest";

/// A service's opt-in, parsed from its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptIn {
    /// The ECR repository name.
    pub repository: String,
    /// Containers to update; `None`: those running an image of the repository.
    pub containers: Option<Vec<String>>,
    /// Tag patterns that deploy on push.
    pub patterns: Vec<TagPattern>,
}

/// Why a service's opt-in tags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The repository tag is not a repository name.
    #[error("tag `ops:deploy-repository` = `{0}` is not an ECR repository name")]
    Repository(String),
    /// A container name with characters ECS does not allow.
    #[error("tag `ops:deploy-containers` names `{0}`, which is not a container name")]
    Container(String),
    /// A pattern that can never match a tag.
    #[error("tag `ops:deploy-tag-pattern` has `{0}`, which can never match an image tag (use letters, digits, `_ . -` and `+` as the wildcard)")]
    Pattern(String),
    /// The service is a colour of a blue/green app: deploying it in place would bypass the swap.
    #[error("it is a colour of blue/green app `{0}` (tag `ops:swap-app`), so it is never deployed in place: deploy the app with blue-green-swapper (`deploy {{app, image}}`), and remove `ops:deploy-repository` from this service")]
    SwapColour(String),
    /// Another controller runs the service's deployments: UpdateService cannot give it a new task
    /// definition (API reference, UpdateService), so a deploy could only be half done.
    #[error("{}", controller_refusal(.0))]
    Controller(String),
}

fn controller_refusal(controller: &str) -> String {
    let (why, instead) = match controller {
        "CODE_DEPLOY" => (
            "ECS takes a new task definition for it only through an AWS CodeDeploy deployment (UpdateService refuses one)",
            "deploy it with CodeDeploy",
        ),
        "EXTERNAL" => (
            "its tasks come from task sets your own deployment tool creates (CreateTaskSet), and UpdateService cannot change its task definition",
            "deploy it with that tool",
        ),
        _ => (
            "deploy-trigger knows how to deploy only services on the ECS controller",
            "deploy it the way that controller expects",
        ),
    };
    format!(
        "it runs on the {controller} deployment controller: {why}, so deploy-trigger never starts a deployment of it and changed nothing; {instead}, or move the service to the ECS controller (rolling, or ECS's own blue/green, canary and linear strategies) for deploys on push"
    )
}

/// Read an opted-in service's opt-in as [`opt_in`] does, and refuse it when another controller
/// runs its deployments; `None` when it has not opted in.
pub fn service_opt_in(service: &ServiceState) -> Option<Result<OptIn, ContractError>> {
    let parsed = opt_in(&service.tags)?;
    if parsed.is_ok() && service.deployment_controller != ECS_CONTROLLER {
        return Some(Err(ContractError::Controller(
            service.deployment_controller.clone(),
        )));
    }
    Some(parsed)
}

/// Read a service's opt-in; `None` when it has not opted in.
pub fn opt_in(tags: &BTreeMap<String, String>) -> Option<Result<OptIn, ContractError>> {
    let repository = tags.get(REPOSITORY)?.trim().to_string();
    if let Some(app) = tags.get(ops_core::tags::SWAP_APP) {
        return Some(Err(ContractError::SwapColour(app.clone())));
    }
    Some(parse_opt_in(repository, tags))
}

fn parse_opt_in(
    repository: String,
    tags: &BTreeMap<String, String>,
) -> Result<OptIn, ContractError> {
    let valid_repository = ops_core::image::ImageRef::parse(&repository)
        .map(|r| r.registry.is_none() && r.tag.is_none() && r.digest.is_none())
        .unwrap_or(false);
    if !valid_repository {
        return Err(ContractError::Repository(repository));
    }
    let containers = match tags
        .get(CONTAINERS)
        .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
    {
        Some(names) if !names.is_empty() => {
            if let Some(bad) = names.iter().find(|n| {
                !n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }) {
                return Err(ContractError::Container(bad.clone()));
            }
            Some(names)
        }
        _ => None,
    };
    let raw_patterns = tags
        .get(TAG_PATTERN)
        .map(String::as_str)
        .unwrap_or(DEFAULT_PATTERN);
    let mut patterns = Vec::new();
    for raw in raw_patterns.split_whitespace() {
        patterns.push(TagPattern::parse(raw)?);
    }
    if patterns.is_empty() {
        patterns.push(TagPattern::parse(DEFAULT_PATTERN)?);
    }
    Ok(OptIn {
        repository,
        containers,
        patterns,
    })
}

/// A pushed-tag pattern: literal characters, with `+` matching one or more of any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TagPattern(String);

impl TagPattern {
    /// Check a pattern.
    pub fn parse(raw: &str) -> Result<Self, ContractError> {
        let valid = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+'));
        if valid {
            Ok(TagPattern(raw.to_string()))
        } else {
            Err(ContractError::Pattern(raw.to_string()))
        }
    }

    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        matches_from(self.0.as_bytes(), tag.as_bytes())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn matches_from(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'+', rest)) => (1..=text.len()).any(|taken| matches_from(rest, &text[taken..])),
        Some((literal, rest)) => text.first() == Some(literal) && matches_from(rest, &text[1..]),
    }
}

/// What started a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// An ECR push event.
    EcrPush,
    /// A chat `deploy`.
    ChatDeploy {
        /// Who asked.
        requested_by: String,
    },
    /// A chat `rollback`.
    ChatRollback {
        /// Who asked.
        requested_by: String,
    },
}

impl Trigger {
    /// How the alert says it: `ECR push`, `chat deploy by alice`.
    pub fn describe(&self) -> String {
        match self {
            Trigger::EcrPush => "ECR push".into(),
            Trigger::ChatDeploy { requested_by } => format!("chat deploy by {requested_by}"),
            Trigger::ChatRollback { requested_by } => format!("chat rollback by {requested_by}"),
        }
    }

    /// Who asked, if a person did.
    pub fn requested_by(&self) -> Option<&str> {
        match self {
            Trigger::EcrPush => None,
            Trigger::ChatDeploy { requested_by } | Trigger::ChatRollback { requested_by } => {
                Some(requested_by)
            }
        }
    }

    fn encode(&self) -> String {
        match self {
            Trigger::EcrPush => "trigger=ecr-push".into(),
            Trigger::ChatDeploy { requested_by } => {
                format!("trigger=chat-deploy by={}", tag_word(requested_by))
            }
            Trigger::ChatRollback { requested_by } => {
                format!("trigger=chat-rollback by={}", tag_word(requested_by))
            }
        }
    }
}

/// The deployment deploy-trigger started last on a service, kept in its `ops:deploy-in-flight` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// ECS deployment id.
    pub deployment_id: String,
    /// What started it.
    pub trigger: Trigger,
    /// When, in epoch seconds.
    pub started_at: u64,
    /// Task definition before (`family:revision`).
    pub from: String,
    /// Task definition deployed (`family:revision`).
    pub to: String,
}

impl InFlight {
    /// The tag value: `deployment=<id> trigger=<kind> [by=<who>] at=<epoch> from=<f:r> to=<f:r>`.
    pub fn encode(&self) -> String {
        let value = format!(
            "deployment={} {} at={} from={} to={}",
            tag_word(&self.deployment_id),
            self.trigger.encode(),
            self.started_at,
            tag_word(&self.from),
            tag_word(&self.to)
        );
        clip(&value, MAX_TAG_VALUE)
    }

    /// Read the tag value back; `None` if it is not one this function wrote.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = fields(value);
        let by = || {
            fields
                .get("by")
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into())
        };
        let trigger = match *fields.get("trigger")? {
            "ecr-push" => Trigger::EcrPush,
            "chat-deploy" => Trigger::ChatDeploy { requested_by: by() },
            "chat-rollback" => Trigger::ChatRollback { requested_by: by() },
            _ => return None,
        };
        Some(InFlight {
            deployment_id: fields.get("deployment")?.to_string(),
            trigger,
            started_at: fields.get("at")?.parse().ok()?,
            from: fields.get("from")?.to_string(),
            to: fields.get("to")?.to_string(),
        })
    }
}

/// The newest image deploy-trigger has deployed to a service, by the time ECR records for its push
/// (`imagePushedAt`, never the event's claim), kept in its `ops:deploy-newest-pushed` tag.
///
/// A push deploys and a chat `deploy` of a newer image raise it; a chat `deploy` of an older image
/// (a person's decision) and a rollback leave it, so a late or redelivered push still cannot undo
/// what the person chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewestPushed {
    /// ECR's `imagePushedAt`, in epoch milliseconds.
    pub pushed_at_ms: i64,
    /// The image's digest.
    pub digest: String,
}

impl NewestPushed {
    /// A record of `digest` pushed at `pushed_at_ms`.
    pub fn new(pushed_at_ms: i64, digest: impl Into<String>) -> Self {
        NewestPushed {
            pushed_at_ms,
            digest: digest.into(),
        }
    }

    /// The tag value: `pushed-at=<epoch ms> digest=sha256:<hex>`.
    pub fn encode(&self) -> String {
        let value = format!(
            "pushed-at={} digest={}",
            self.pushed_at_ms,
            tag_word(&self.digest)
        );
        clip(&value, MAX_TAG_VALUE)
    }

    /// Read the tag value back; `None` if it is not one this function wrote.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = fields(value);
        Some(NewestPushed {
            pushed_at_ms: fields.get("pushed-at")?.parse().ok()?,
            digest: fields.get("digest")?.to_string(),
        })
    }
}

/// The pushes refused (and alerted) against the service's newest image, kept in its
/// `ops:deploy-refused` tag: the first 12 hex digits of that newest image's digest, and of each
/// refused push's (at most [`MAX_REMEMBERED_REFUSALS`], oldest first). A refusal is alerted once;
/// a redelivery of that push is quiet. A list kept against another newest image counts for
/// nothing, since what a push is refused against changed. It is a tag of its own so that writing
/// it never touches `ops:deploy-newest-pushed` (a concurrent deploy may be raising that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedPushes {
    /// Key of the newest image the refusals were judged against.
    pub newest: String,
    /// Keys of the refused pushes' digests, oldest first.
    pub refused: Vec<String>,
}

impl RefusedPushes {
    /// The key a digest is remembered by: its first 12 hex digits.
    pub fn key(digest: &str) -> String {
        digest
            .strip_prefix("sha256:")
            .unwrap_or(digest)
            .chars()
            .take(12)
            .collect()
    }

    /// Whether a push of `digest` was already refused (and alerted) against `newest`.
    pub fn has_refused(&self, newest: &NewestPushed, digest: &str) -> bool {
        self.newest == Self::key(&newest.digest) && self.refused.contains(&Self::key(digest))
    }

    /// `previous` (if it was kept against `newest`) with the refusal of `digest` remembered; the
    /// oldest forgotten past the limit.
    pub fn remember(previous: Option<&Self>, newest: &NewestPushed, digest: &str) -> Self {
        let newest = Self::key(&newest.digest);
        let mut refused = previous
            .filter(|p| p.newest == newest)
            .map(|p| p.refused.clone())
            .unwrap_or_default();
        let key = Self::key(digest);
        if !refused.contains(&key) {
            refused.push(key);
        }
        let excess = refused.len().saturating_sub(MAX_REMEMBERED_REFUSALS);
        refused.drain(..excess);
        RefusedPushes { newest, refused }
    }

    /// The tag value: `newest=<hex12> refused=<hex12>+<hex12>...`.
    pub fn encode(&self) -> String {
        let refused: Vec<String> = self.refused.iter().map(|r| tag_word(r)).collect();
        let value = format!(
            "newest={} refused={}",
            tag_word(&self.newest),
            refused.join("+")
        );
        clip(&value, MAX_TAG_VALUE)
    }

    /// Read the tag value back; `None` if it is not one this function wrote.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = fields(value);
        Some(RefusedPushes {
            newest: fields.get("newest")?.to_string(),
            refused: fields
                .get("refused")?
                .split('+')
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect(),
        })
    }
}

/// How a settled deployment ended, as recorded in [`Settlement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// ECS reported it COMPLETED; alerted as a success.
    Completed,
    /// ECS reported it FAILED (rolled back or not); alerted as a failure.
    Failed,
    /// ECS stopped listing it before its outcome was read; alerted as unverified.
    Unverified,
}

impl Settled {
    fn as_str(self) -> &'static str {
        match self {
            Settled::Completed => "completed",
            Settled::Failed => "failed",
            Settled::Unverified => "unverified",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "completed" => Some(Settled::Completed),
            "failed" => Some(Settled::Failed),
            "unverified" => Some(Settled::Unverified),
            _ => None,
        }
    }
}

/// The settling of the in-flight deployment, kept in the service's `ops:deploy-settlement` tag.
///
/// An invocation that is about to alert the in-flight deployment's outcome first writes a claim
/// (`outcome` `None`) naming itself (`by`, a token unique to the invocation) and the time, then
/// reads the tag back: only the invocation whose claim it reads alerts. After the alert it writes
/// the outcome (with the other records) in one TagResource; a claim without an outcome older than
/// [`CLAIM_LEASE_SECONDS`] was left by an invocation that died, and may be taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    /// The ECS deployment being (or having been) settled.
    pub deployment_id: String,
    /// The invocation that claimed it.
    pub by: String,
    /// When it claimed it, epoch seconds.
    pub at: u64,
    /// Its outcome, once alerted; `None` while the claim is open.
    pub outcome: Option<Settled>,
}

impl Settlement {
    /// The tag value: `deployment=<id> by=<token> at=<epoch> [outcome=completed|failed|unverified]`.
    pub fn encode(&self) -> String {
        let mut value = format!(
            "deployment={} by={} at={}",
            tag_word(&self.deployment_id),
            tag_word(&self.by),
            self.at
        );
        if let Some(outcome) = self.outcome {
            value.push_str(&format!(" outcome={}", outcome.as_str()));
        }
        clip(&value, MAX_TAG_VALUE)
    }

    /// Read the tag value back; `None` if it is not one this function wrote.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = fields(value);
        Some(Settlement {
            deployment_id: fields.get("deployment")?.to_string(),
            by: fields.get("by")?.to_string(),
            at: fields.get("at")?.parse().ok()?,
            outcome: match fields.get("outcome") {
                Some(word) => Some(Settled::parse(word)?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_service_without_the_repository_tag_has_not_opted_in() {
        assert_eq!(opt_in(&tags(&[("team", "web")])), None);
    }

    #[test]
    fn opt_in_defaults_to_latest_and_to_containers_of_the_repository() {
        let parsed = opt_in(&tags(&[(REPOSITORY, "web")])).unwrap().unwrap();
        assert_eq!(parsed.repository, "web");
        assert_eq!(parsed.containers, None);
        assert_eq!(parsed.patterns, vec![TagPattern("latest".into())]);
    }

    #[test]
    fn containers_and_patterns_are_space_separated() {
        let parsed = opt_in(&tags(&[
            (REPOSITORY, "team/web"),
            (CONTAINERS, "app  worker"),
            (TAG_PATTERN, "release-+ latest"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(parsed.containers, Some(vec!["app".into(), "worker".into()]));
        assert_eq!(parsed.patterns.len(), 2);
    }

    #[test]
    fn bad_opt_in_tags_are_named() {
        let error = opt_in(&tags(&[(REPOSITORY, "Web")])).unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag `ops:deploy-repository` = `Web` is not an ECR repository name"
        );
        let error = opt_in(&tags(&[(REPOSITORY, "web"), (TAG_PATTERN, "release-*")]))
            .unwrap()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("tag `ops:deploy-tag-pattern` has `release-*`"),
            "{error}"
        );
        let error = opt_in(&tags(&[(REPOSITORY, "web"), (CONTAINERS, "app,worker")]))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag `ops:deploy-containers` names `app,worker`, which is not a container name"
        );
    }

    #[test]
    fn a_colour_of_a_blue_green_app_is_never_deployed_in_place() {
        let error = opt_in(&tags(&[(REPOSITORY, "shop"), ("ops:swap-app", "shop")]))
            .unwrap()
            .unwrap_err();
        assert_eq!(error, ContractError::SwapColour("shop".into()));
        assert!(
            error
                .to_string()
                .starts_with("it is a colour of blue/green app `shop` (tag `ops:swap-app`), so it is never deployed in place"),
            "{error}"
        );
        assert_eq!(
            opt_in(&tags(&[("ops:swap-app", "shop")])),
            None,
            "a colour that never opted in is simply not deploy-trigger's"
        );
    }

    #[test]
    fn plus_matches_one_or_more_characters() {
        let release = TagPattern::parse("release-+").unwrap();
        assert!(release.matches("release-42"));
        assert!(release.matches("release-2026.11.22"));
        assert!(!release.matches("release-"));
        assert!(!release.matches("prerelease-42"));
        assert!(!release.matches("release"));
        let latest = TagPattern::parse("latest").unwrap();
        assert!(latest.matches("latest") && !latest.matches("latest-1"));
        let middle = TagPattern::parse("v+-stable").unwrap();
        assert!(middle.matches("v1.2-stable") && !middle.matches("v-stable"));
        assert!(TagPattern::parse("+").unwrap().matches("anything"));
    }

    #[test]
    fn in_flight_round_trips_through_a_tag_value() {
        let in_flight = InFlight {
            deployment_id: "ecs-svc/6008233746183924743".into(),
            trigger: Trigger::ChatDeploy {
                requested_by: "Zoë O'Neil, SRE".into(),
            },
            started_at: 1_795_000_000,
            from: "web:7".into(),
            to: "web:8".into(),
        };
        let value = in_flight.encode();
        assert!(
            value
                .chars()
                .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c)),
            "{value}"
        );
        let back = InFlight::decode(&value).unwrap();
        assert_eq!(
            back.trigger,
            Trigger::ChatDeploy {
                requested_by: "Zoë_O_Neil__SRE".into()
            }
        );
        assert_eq!(back.deployment_id, in_flight.deployment_id);
        assert_eq!(
            (back.from.as_str(), back.to.as_str(), back.started_at),
            ("web:7", "web:8", 1_795_000_000)
        );
        assert_eq!(InFlight::decode("written by someone else"), None);
    }

    #[test]
    fn refused_pushes_are_a_bounded_list_kept_against_one_newest_image() {
        let digest = |n: u32| format!("sha256:{n:x}{}", "a".repeat(63));
        let newest = NewestPushed::new(2_000, format!("sha256:{}", "2".repeat(64)));
        let mut remembered: Option<RefusedPushes> = None;
        for n in 0..10 {
            remembered = Some(RefusedPushes::remember(
                remembered.as_ref(),
                &newest,
                &digest(n),
            ));
        }
        let remembered = remembered.unwrap();
        assert_eq!(remembered.refused.len(), MAX_REMEMBERED_REFUSALS);
        assert!(
            !remembered.has_refused(&newest, &digest(0)),
            "the oldest dropped out"
        );
        assert!(remembered.has_refused(&newest, &digest(9)));
        let value = remembered.encode();
        assert!(value.len() <= MAX_TAG_VALUE, "{value}");
        assert!(
            value
                .chars()
                .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c)),
            "{value}"
        );
        assert_eq!(RefusedPushes::decode(&value), Some(remembered.clone()));
        assert_eq!(
            RefusedPushes::remember(Some(&remembered), &newest, &digest(9)),
            remembered,
            "once"
        );
        let raised = NewestPushed::new(3_000, format!("sha256:{}", "3".repeat(64)));
        assert!(
            !remembered.has_refused(&raised, &digest(9)),
            "judged against another newest image: new"
        );
        assert_eq!(
            RefusedPushes::remember(Some(&remembered), &raised, &digest(9)).refused,
            [RefusedPushes::key(&digest(9))],
            "a fresh list"
        );
    }

    #[test]
    fn a_settlement_round_trips_open_and_settled() {
        let claim = Settlement {
            deployment_id: "ecs-svc/6008233746183924743".into(),
            by: "tick-0123456789abcdef".into(),
            at: 1_795_000_000,
            outcome: None,
        };
        assert_eq!(
            claim.encode(),
            "deployment=ecs-svc/6008233746183924743 by=tick-0123456789abcdef at=1795000000"
        );
        assert_eq!(Settlement::decode(&claim.encode()), Some(claim.clone()));
        let settled = Settlement {
            outcome: Some(Settled::Failed),
            ..claim
        };
        assert!(settled.encode().ends_with(" outcome=failed"));
        assert_eq!(Settlement::decode(&settled.encode()), Some(settled));
        assert_eq!(
            Settlement::decode("deployment=x by=y at=1 outcome=maybe"),
            None
        );
    }
}
