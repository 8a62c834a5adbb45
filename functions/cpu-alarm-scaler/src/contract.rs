//! The tag contract: which alarm scales what, by how much, and what the scaler remembers.
//!
//! An alarm opts in with tags (AWS tag values allow letters, digits, spaces and `_ . : / = + - @`):
//!
//! | alarm tag | default | meaning |
//! |---|---|---|
//! | `ops:scale-target` | required | `asg:<group>` or `ecs:<cluster>/<service>` |
//! | `ops:scale-steps` | `0::+1` (greater-than alarms), `0::-1` (less-than) | space-separated `lower:upper:adjustment`; lower and upper bound how far the metric is past the threshold, upper empty for no bound; the steps start at 0 and leave no gaps |
//! | `ops:scale-adjustment` | `change` | `change` (add the adjustment), `percent` (of current capacity), `exact` (the adjustment is the capacity) |
//! | `ops:scale-min-step` | 1 | for `percent`: the least change in capacity |
//! | `ops:scale-cooldown` | 300 | seconds after a change in this direction before the next (60 to 86400) |
//!
//! Only a metric alarm can opt in. A composite alarm has no metric, threshold or datapoint, so there
//! is no breach to pick a step from (nor a comparison to pick the step's sign): one that carries
//! `ops:scale-target` is refused with a non-retryable error that says to tag the metric alarm it
//! combines instead, and one without the tag is ignored like any alarm that did not opt in (the
//! EventBridge rule delivers every alarm of the account that enters ALARM, and an error for each of
//! those would page on-call for alarms that are not the scaler's business). See [`composite`].
//!
//! An ECS service states its bounds with `ops:scale-min` and `ops:scale-max` (a group has its own).
//! On the target the scaler keeps `ops:scale-out-at` and `ops:scale-in-at` (when it last scaled each
//! way: separate cooldowns, kept in AWS), `ops:scale-last` (the last trigger it acted on, the
//! capacity it set, the claim of the invocation acting on it and whether it was alerted: duplicates
//! act once, two invocations at once do not both act, a retried run converges; overrides record
//! `override-set@<until>` and `override-end@<until>` there too), `ops:scale-override` (a manual
//! override from chat, when it ends, and `pending` until its alert is out) and `ops:scale-at-bound`
//! (an episode of the target held at its max or min while an alarm in ALARM asks past it: alerted
//! once when it begins and once when it ends, see [`AtBound`]), with `ops:scale-at-bound-said`
//! (the last of those alerts sent, see [`Said`]).

use std::collections::BTreeMap;

use ops_core::tags::tag_word;
use serde::Serialize;

/// Alarm: what it scales.
pub const TARGET: &str = "ops:scale-target";
/// Alarm: the step adjustments.
pub const STEPS: &str = "ops:scale-steps";
/// Alarm: the adjustment type.
pub const ADJUSTMENT: &str = "ops:scale-adjustment";
/// Alarm: minimum change for percent adjustments.
pub const MIN_STEP: &str = "ops:scale-min-step";
/// Alarm: cooldown seconds.
pub const COOLDOWN: &str = "ops:scale-cooldown";
/// ECS service: lower bound.
pub const SERVICE_MIN: &str = "ops:scale-min";
/// ECS service: upper bound.
pub const SERVICE_MAX: &str = "ops:scale-max";
/// Target state: last scale-out, epoch seconds.
pub const OUT_AT: &str = "ops:scale-out-at";
/// Target state: last scale-in, epoch seconds.
pub const IN_AT: &str = "ops:scale-in-at";
/// Target state: the last trigger acted on.
pub const LAST: &str = "ops:scale-last";
/// Target state: the manual override.
pub const OVERRIDE: &str = "ops:scale-override";
/// Target state: an episode of the target held at its max (or min) while an alarm asks past it.
pub const AT_BOUND: &str = "ops:scale-at-bound";
/// Target state: the last at-bound alert sent (a start or an end, and of which episode).
pub const AT_BOUND_SAID: &str = "ops:scale-at-bound-said";

const DEFAULT_COOLDOWN: u64 = 300;

/// Why an alarm's or a target's tags cannot be used; each names the tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// `ops:scale-target` is not `asg:<group>` or `ecs:<cluster>/<service>`.
    #[error("tag `ops:scale-target` = `{0}` must be asg:<group> or ecs:<cluster>/<service>")]
    Target(String),
    /// A step that does not parse, or steps with gaps.
    #[error("tag `ops:scale-steps` = `{value}`: {reason}")]
    Steps {
        /// The tag value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Any other tag with a bad value.
    #[error("tag `{tag}` = `{value}`: {reason}")]
    Value {
        /// The tag.
        tag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// What an alarm scales.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetRef {
    /// An Auto Scaling group.
    Group {
        /// Group name.
        name: String,
    },
    /// An ECS service's desired count.
    Service {
        /// Cluster name.
        cluster: String,
        /// Service name.
        service: String,
    },
}

impl TargetRef {
    /// Parse `asg:<group>` or `ecs:<cluster>/<service>`.
    pub fn parse(value: &str) -> Result<Self, ContractError> {
        let bad = || ContractError::Target(value.to_string());
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match value.trim().split_once(':') {
            Some(("asg", name)) if name_ok(name) => Ok(TargetRef::Group {
                name: name.to_string(),
            }),
            Some(("ecs", path)) => match path.split_once('/') {
                Some((cluster, service)) if name_ok(cluster) && name_ok(service) => {
                    Ok(TargetRef::Service {
                        cluster: cluster.into(),
                        service: service.into(),
                    })
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetRef::Group { name } => write!(f, "asg:{name}"),
            TargetRef::Service { cluster, service } => write!(f, "ecs:{cluster}/{service}"),
        }
    }
}

/// How an adjustment changes capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// Add the adjustment.
    Change,
    /// Add the adjustment as a percentage of current capacity.
    Percent,
    /// Set capacity to the adjustment.
    Exact,
}

/// One step: from `lower` (inclusive) to `upper` (exclusive, `None` = no bound) past the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Lower bound of the breach.
    pub lower: f64,
    /// Upper bound of the breach.
    pub upper: Option<f64>,
    /// The adjustment, read by the policy's kind.
    pub adjustment: i32,
}

/// An alarm's scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// The target.
    pub target: TargetRef,
    /// Steps, by breach size.
    pub steps: Vec<Step>,
    /// How adjustments apply.
    pub kind: AdjustmentKind,
    /// Least change for percent adjustments.
    pub min_step: i32,
    /// Cooldown seconds in the alarm's direction.
    pub cooldown: u64,
}

/// Read an alarm's policy; `None` if the alarm has not opted in. `greater` says whether the alarm
/// fires above its threshold (it picks the default step's sign).
pub fn policy(
    tags: &BTreeMap<String, String>,
    greater: bool,
) -> Option<Result<Policy, ContractError>> {
    let target = tags.get(TARGET)?;
    Some(parse_policy(target, tags, greater))
}

fn parse_policy(
    target: &str,
    tags: &BTreeMap<String, String>,
    greater: bool,
) -> Result<Policy, ContractError> {
    let target = TargetRef::parse(target)?;
    let default_steps = if greater { "0::+1" } else { "0::-1" };
    let steps = parse_steps(tags.get(STEPS).map(String::as_str).unwrap_or(default_steps))?;
    let kind = match tags.get(ADJUSTMENT).map(|s| s.trim()) {
        None | Some("change") => AdjustmentKind::Change,
        Some("percent") => AdjustmentKind::Percent,
        Some("exact") => AdjustmentKind::Exact,
        Some(other) => {
            return Err(ContractError::Value {
                tag: ADJUSTMENT,
                value: other.into(),
                reason: "must be change, percent or exact".into(),
            })
        }
    };
    let min_step = number(tags, MIN_STEP, 1, 1, 10_000)? as i32;
    let cooldown = number(tags, COOLDOWN, DEFAULT_COOLDOWN, 60, 86_400)?;
    Ok(Policy {
        target,
        steps,
        kind,
        min_step,
        cooldown,
    })
}

fn number(
    tags: &BTreeMap<String, String>,
    tag: &'static str,
    default: u64,
    low: u64,
    high: u64,
) -> Result<u64, ContractError> {
    let Some(raw) = tags.get(tag) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(n),
        _ => Err(ContractError::Value {
            tag,
            value: raw.clone(),
            reason: format!("must be a whole number from {low} to {high}"),
        }),
    }
}

/// Parse `lower:upper:adjustment ...`, checking the steps start at 0, leave no gaps and end open.
pub fn parse_steps(value: &str) -> Result<Vec<Step>, ContractError> {
    let bad = |reason: String| ContractError::Steps {
        value: value.to_string(),
        reason,
    };
    let mut steps = Vec::new();
    for raw in value.split_whitespace() {
        let parts: Vec<&str> = raw.split(':').collect();
        let [lower, upper, adjustment] = parts.as_slice() else {
            return Err(bad(format!("step `{raw}` is not lower:upper:adjustment")));
        };
        let lower: f64 = lower
            .parse()
            .map_err(|_| bad(format!("step `{raw}`: lower bound is not a number")))?;
        let upper: Option<f64> = match *upper {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| bad(format!("step `{raw}`: upper bound is not a number")))?,
            ),
        };
        let adjustment: i32 = adjustment
            .trim_start_matches('+')
            .parse()
            .map_err(|_| bad(format!("step `{raw}`: adjustment is not a whole number")))?;
        if !lower.is_finite() || upper.is_some_and(|u| !u.is_finite() || u <= lower) {
            return Err(bad(format!(
                "step `{raw}`: upper bound must be above lower bound"
            )));
        }
        steps.push(Step {
            lower,
            upper,
            adjustment,
        });
    }
    if steps.is_empty() {
        return Err(bad("no steps".into()));
    }
    if steps[0].lower != 0.0 {
        return Err(bad("the first step must start at 0".into()));
    }
    for pair in steps.windows(2) {
        if pair[0].upper != Some(pair[1].lower) {
            return Err(bad(
                "each step must start where the one before it ends".into()
            ));
        }
    }
    if steps.last().is_some_and(|s| s.upper.is_some()) {
        return Err(bad(
            "the last step must have no upper bound (lower::adjustment)".into(),
        ));
    }
    Ok(steps)
}

/// What the scaler does with a composite alarm (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompositeAnswer {
    /// Not opted in: nothing to do, with the reason.
    Ignored(String),
    /// Opted in: refused, saying why and what to do instead.
    Refused(String),
}

/// Decide for composite alarm `name` with rule `rule` and its tags.
pub fn composite(name: &str, rule: &str, tags: &BTreeMap<String, String>) -> CompositeAnswer {
    match tags.get(TARGET) {
        None => CompositeAnswer::Ignored(format!(
            "alarm {name} is a composite alarm and has no `{TARGET}` tag"
        )),
        Some(target) => CompositeAnswer::Refused(format!(
            "alarm {name} is a composite alarm (rule `{rule}`): it has no metric, threshold or \
             datapoint to choose a step from, so its `{TARGET}` = `{target}` is not acted on; \
             put the scaling tags on the metric alarm it combines instead"
        )),
    }
}

/// The last trigger acted on: a key and the capacity change made for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastAction {
    /// `<alarm>@<alarm state change, epoch ms>` or, for re-evaluations, `...+<schedule epoch>`.
    pub key: String,
    /// Capacity before.
    pub from: i32,
    /// Capacity set.
    pub to: i32,
    /// Whether the scaling was alerted (a run that stops before alerting leaves it to the next).
    pub alerted: bool,
    /// The invocation that claimed the target to act on this record. Two invocations that decide
    /// at once (an alarm's event and the schedule, an event delivered twice at once) both write
    /// their record; only the one whose claim is still there when it re-reads acts and alerts.
    pub claim: Option<String>,
}

impl LastAction {
    /// The tag value: `<key> from=<n> to=<n>`, then ` claim=<id>` and ` alerted` once the alert
    /// is out.
    pub fn encode(&self) -> String {
        let claim = self
            .claim
            .as_deref()
            .map(|c| format!(" claim={c}"))
            .unwrap_or_default();
        let alerted = if self.alerted { " alerted" } else { "" };
        format!(
            "{} from={} to={}{claim}{alerted}",
            self.key, self.from, self.to
        )
    }

    /// Read the tag value back.
    pub fn decode(value: &str) -> Option<Self> {
        let value = value.trim();
        let (value, alerted) = match value.strip_suffix(" alerted") {
            Some(rest) => (rest, true),
            None => (value, false),
        };
        let (value, claim) = match value.rsplit_once(" claim=") {
            Some((rest, claim)) if !claim.is_empty() && !claim.contains(char::is_whitespace) => {
                (rest, Some(claim.to_string()))
            }
            _ => (value, None),
        };
        let (rest, to) = value.rsplit_once(" to=")?;
        let (key, from) = rest.rsplit_once(" from=")?;
        Some(LastAction {
            key: key.to_string(),
            from: from.parse().ok()?,
            to: to.parse().ok()?,
            alerted,
            claim,
        })
    }
}

/// A manual override from chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// Capacity held.
    pub count: i32,
    /// Until when, epoch seconds.
    pub until: u64,
    /// Capacity before, restored at expiry.
    pub revert: i32,
    /// Who asked.
    pub by: String,
    /// Set while the command's alert is not out yet: the capacity ops last heard of (the alert's
    /// "before"). A command that stopped after recording the override (before resizing, or before
    /// alerting) leaves it for a later schedule tick to finish; none once the alert is out.
    pub pending: Option<i32>,
    /// When the command recorded it, epoch seconds (0 if not known): a pending override younger
    /// than an invocation can run may be a command still at work, which the schedule leaves alone.
    pub set_at: u64,
}

impl Override {
    /// The tag value: `count=<n> until=<epoch> revert=<n> set=<epoch> by=<who>`, then
    /// ` pending=<n>` until the command's alert is out.
    pub fn encode(&self) -> String {
        let by: String = tag_word(&self.by).chars().take(120).collect();
        let pending = self
            .pending
            .map(|from| format!(" pending={from}"))
            .unwrap_or_default();
        format!(
            "count={} until={} revert={} set={} by={by}{pending}",
            self.count, self.until, self.revert, self.set_at
        )
    }

    /// Read the tag value back.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = ops_core::tags::fields(value);
        Some(Override {
            count: fields.get("count")?.parse().ok()?,
            until: fields.get("until")?.parse().ok()?,
            revert: fields.get("revert")?.parse().ok()?,
            by: fields.get("by").unwrap_or(&"unknown").to_string(),
            pending: match fields.get("pending") {
                Some(from) => Some(from.parse().ok()?),
                None => None,
            },
            set_at: fields.get("set").and_then(|t| t.parse().ok()).unwrap_or(0),
        })
    }
}

/// Which bound holds a target back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Its maximum: an alarm asks for more.
    Max,
    /// Its minimum: an alarm asks for less.
    Min,
}

impl Bound {
    /// `max` or `min`.
    pub fn word(self) -> &'static str {
        match self {
            Bound::Max => "max",
            Bound::Min => "min",
        }
    }

    /// `maximum` or `minimum`.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Max => "maximum",
            Bound::Min => "minimum",
        }
    }
}

/// Where an at-bound episode is: its start not yet alerted, alerted, or its end being alerted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeState {
    /// Recorded, its start alert not out yet (a run that stops here leaves it to the next).
    Open,
    /// Its start was alerted.
    Alerted,
    /// Its end is being alerted; the tag goes once that alert is out.
    Ending,
}

/// An episode of a target held at a bound while an alarm in ALARM asks past it. Alerted once when
/// it begins and once when it ends (the alarm leaves ALARM, its ask fits the bounds again, a
/// person's override takes over, or the alarm no longer scales the target), however many
/// re-evaluations fall in between. What was alerted is kept apart, in [`Said`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtBound {
    /// The alarm's name as a tag can hold it ([`episode_alarm`]), for when the alarm is gone.
    pub alarm: String,
    /// The alarm's full name, hashed ([`alarm_id`]): which alarm it is.
    pub id: String,
    /// Which bound.
    pub bound: Bound,
    /// The capacity held (the bound).
    pub at: i32,
    /// What the alarm asks for.
    pub asked: i32,
    /// When it began, epoch seconds.
    pub since: u64,
    /// Where it is.
    pub state: EpisodeState,
    /// The invocation that last wrote it (of two at once, the one whose claim is still there
    /// alerts).
    pub claim: Option<String>,
}

/// An alarm's name as an episode shows it once the alarm is gone: a tag value allows fewer
/// characters than an alarm name, and the tag leaves room for the other fields.
pub fn episode_alarm(name: &str) -> String {
    ops_core::tags::clip(&tag_word(name), 120)
}

/// Which alarm, from its full name: 64-bit FNV-1a in hex, the same in every process (unlike the
/// standard library's hasher), so names a tag would spell alike, or alike in their first 120
/// characters, stay apart.
pub fn alarm_id(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl AtBound {
    /// Whether `alarm` (its full name) is this episode's alarm.
    pub fn is_of(&self, alarm: &str) -> bool {
        self.id == alarm_id(alarm)
    }

    /// The tag value: `bound=<max|min> at=<n> asked=<n> since=<epoch> state=<open|alerted|ending>
    /// id=<hex>`, then ` claim=<id>`, then ` alarm=<name>`.
    pub fn encode(&self) -> String {
        let state = match self.state {
            EpisodeState::Open => "open",
            EpisodeState::Alerted => "alerted",
            EpisodeState::Ending => "ending",
        };
        let claim = self
            .claim
            .as_deref()
            .map(|c| format!(" claim={c}"))
            .unwrap_or_default();
        format!(
            "bound={} at={} asked={} since={} state={state} id={}{claim} alarm={}",
            self.bound.word(),
            self.at,
            self.asked,
            self.since,
            self.id,
            self.alarm
        )
    }

    /// Read the tag value back.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = ops_core::tags::fields(value);
        Some(AtBound {
            alarm: fields.get("alarm").filter(|a| !a.is_empty())?.to_string(),
            id: fields.get("id").filter(|a| !a.is_empty())?.to_string(),
            bound: match *fields.get("bound")? {
                "max" => Bound::Max,
                "min" => Bound::Min,
                _ => return None,
            },
            at: fields.get("at")?.parse().ok()?,
            asked: fields.get("asked")?.parse().ok()?,
            since: fields.get("since")?.parse().ok()?,
            state: match *fields.get("state")? {
                "open" => EpisodeState::Open,
                "alerted" => EpisodeState::Alerted,
                "ending" => EpisodeState::Ending,
                _ => return None,
            },
            claim: fields.get("claim").map(|c| c.to_string()),
        })
    }

    /// What ops were told when this episode began.
    pub fn started(&self) -> Said {
        Said {
            end: false,
            id: self.id.clone(),
            since: self.since,
        }
    }

    /// What ops are told when this episode ends.
    pub fn ended(&self) -> Said {
        Said {
            end: true,
            ..self.started()
        }
    }
}

/// The last at-bound alert the scaler sent about a target (`ops:scale-at-bound-said`): kept apart
/// from the episode, which an invocation that decided on an older view may still overwrite, so
/// that one finds the start or the end already alerted and does not alert it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Said {
    /// An end (otherwise a start).
    pub end: bool,
    /// The episode's alarm ([`alarm_id`]).
    pub id: String,
    /// When the episode began.
    pub since: u64,
}

impl Said {
    /// The tag value: `said=<start|end> id=<hex> since=<epoch>`.
    pub fn encode(&self) -> String {
        format!(
            "said={} id={} since={}",
            if self.end { "end" } else { "start" },
            self.id,
            self.since
        )
    }

    /// Read the tag value back.
    pub fn decode(value: &str) -> Option<Self> {
        let fields = ops_core::tags::fields(value);
        Some(Said {
            end: match *fields.get("said")? {
                "start" => false,
                "end" => true,
                _ => return None,
            },
            id: fields.get("id")?.to_string(),
            since: fields.get("since")?.parse().ok()?,
        })
    }
}

/// What the scaler remembers on a target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Memory {
    /// Last scale-out.
    pub out_at: Option<u64>,
    /// Last scale-in.
    pub in_at: Option<u64>,
    /// Last trigger acted on.
    pub last: Option<LastAction>,
    /// Manual override.
    pub manual: Option<Override>,
    /// The episode of being held at a bound, if one is open.
    pub at_bound: Option<AtBound>,
    /// The last at-bound alert sent.
    pub said: Option<Said>,
}

impl Memory {
    /// Read the target's tags (unreadable values count as absent; the scaler rewrites them).
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Self {
        Memory {
            out_at: tags.get(OUT_AT).and_then(|v| v.trim().parse().ok()),
            in_at: tags.get(IN_AT).and_then(|v| v.trim().parse().ok()),
            last: tags.get(LAST).and_then(|v| LastAction::decode(v)),
            manual: tags.get(OVERRIDE).and_then(|v| Override::decode(v)),
            at_bound: tags.get(AT_BOUND).and_then(|v| AtBound::decode(v)),
            said: tags.get(AT_BOUND_SAID).and_then(|v| Said::decode(v)),
        }
    }
}

/// Parse a manual override's length, `30m`, `2h` or `1h30m`: 1 minute to 24 hours.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    ops_core::time::parse_duration(text, 60, 86_400)
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
    fn defaults_follow_the_alarm_direction() {
        let up = policy(&tags(&[(TARGET, "asg:workers")]), true)
            .unwrap()
            .unwrap();
        assert_eq!(
            up.steps,
            vec![Step {
                lower: 0.0,
                upper: None,
                adjustment: 1
            }]
        );
        assert_eq!(
            (up.kind, up.cooldown, up.min_step),
            (AdjustmentKind::Change, 300, 1)
        );
        let down = policy(&tags(&[(TARGET, "ecs:prod/web")]), false)
            .unwrap()
            .unwrap();
        assert_eq!(down.steps[0].adjustment, -1);
        assert_eq!(
            down.target,
            TargetRef::Service {
                cluster: "prod".into(),
                service: "web".into()
            }
        );
        assert!(policy(&tags(&[("team", "x")]), true).is_none());
    }

    #[test]
    fn steps_must_start_at_zero_leave_no_gaps_and_end_open() {
        assert_eq!(parse_steps("0:10:+1 10:20:+2 20::+3").unwrap().len(), 3);
        let cases = [
            ("", "no steps"),
            ("5::+1", "the first step must start at 0"),
            (
                "0:10:+1 12::+2",
                "each step must start where the one before it ends",
            ),
            ("0:10:+1", "the last step must have no upper bound"),
            ("0:10", "step `0:10` is not lower:upper:adjustment"),
            ("0:x:+1 x::+2", "upper bound is not a number"),
            ("0:5:one 5::+2", "adjustment is not a whole number"),
            ("0:0:+1 0::+2", "upper bound must be above lower bound"),
        ];
        for (value, expected) in cases {
            let error = parse_steps(value).unwrap_err().to_string();
            assert!(error.contains(expected), "`{value}`: {error}");
        }
    }

    #[test]
    fn bad_tags_are_named() {
        let error = policy(&tags(&[(TARGET, "workers")]), true)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag `ops:scale-target` = `workers` must be asg:<group> or ecs:<cluster>/<service>"
        );
        let error = policy(&tags(&[(TARGET, "asg:w"), (COOLDOWN, "10")]), true)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag `ops:scale-cooldown` = `10`: must be a whole number from 60 to 86400"
        );
        let error = policy(&tags(&[(TARGET, "asg:w"), (ADJUSTMENT, "double")]), true)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag `ops:scale-adjustment` = `double`: must be change, percent or exact"
        );
    }

    #[test]
    fn a_composite_alarm_is_refused_if_it_opted_in_and_ignored_if_not() {
        let rule = "ALARM(CompositeDemo.FirstChild) OR ALARM(CompositeDemo.SecondChild)";
        assert_eq!(
            composite("CompositeDemo.Main", rule, &tags(&[(TARGET, "asg:workers")])),
            CompositeAnswer::Refused(
                "alarm CompositeDemo.Main is a composite alarm (rule `ALARM(CompositeDemo.FirstChild) \
                 OR ALARM(CompositeDemo.SecondChild)`): it has no metric, threshold or datapoint to \
                 choose a step from, so its `ops:scale-target` = `asg:workers` is not acted on; put \
                 the scaling tags on the metric alarm it combines instead"
                    .into()
            )
        );
        // A malformed target changes nothing: the alarm's kind is the problem, not the tag.
        assert!(matches!(
            composite("c", rule, &tags(&[(TARGET, "workers"), (STEPS, "0::+2")])),
            CompositeAnswer::Refused(reason) if reason.contains("`ops:scale-target` = `workers`")
        ));
        assert_eq!(
            composite("ServiceAggregatedAlarm", rule, &tags(&[("team", "payments")])),
            CompositeAnswer::Ignored(
                "alarm ServiceAggregatedAlarm is a composite alarm and has no `ops:scale-target` tag"
                    .into()
            )
        );
    }

    #[test]
    fn memory_round_trips_through_tags() {
        let last = LastAction {
            key: "workers-cpu-high@1795000000123".into(),
            from: 2,
            to: 3,
            alerted: true,
            claim: Some("00ff".into()),
        };
        let manual = Override {
            count: 6,
            until: 1_795_003_600,
            revert: 3,
            by: "alice smith".into(),
            pending: Some(2),
            set_at: 1_795_000_000,
        };
        let memory = Memory::from_tags(&tags(&[
            (OUT_AT, "1795000000"),
            (LAST, &last.encode()),
            (OVERRIDE, &manual.encode()),
        ]));
        assert_eq!(memory.out_at, Some(1_795_000_000));
        assert_eq!(memory.in_at, None);
        assert_eq!(memory.last, Some(last.clone()));
        let unclaimed = LastAction {
            claim: None,
            alerted: false,
            key: "cpu claim=high@1".into(),
            ..last
        };
        assert_eq!(
            LastAction::decode(&unclaimed.encode()),
            Some(unclaimed),
            "a record written before claims existed, even with an odd alarm name"
        );
        let read = memory.manual.unwrap();
        assert_eq!((read.by.as_str(), read.pending), ("alice_smith", Some(2)));
        let settled = Override {
            pending: None,
            ..read
        };
        assert_eq!(
            Override::decode(&settled.encode()),
            Some(settled.clone()),
            "an override written before `pending` existed reads as alerted"
        );
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("10s")
            .unwrap_err()
            .contains("1 minute to 24 hours"));
        assert!(parse_duration("25h").is_err());
        assert!(parse_duration("-5m").is_err());
    }
}
