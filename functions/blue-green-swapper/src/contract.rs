//! The tag contract: how an app is described on its ALB listener (or rule), and the swap the
//! function keeps there.
//!
//! ELB tag values are at most 256 characters of letters, digits, separators and `_ . : / = + - @`
//! (pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`), so lists are space-separated and free text (a
//! transition's reason) is stored with [`encode_text`], losslessly, in ASCII only.
//!
//! | tag | on | set by | meaning |
//! |---|---|---|---|
//! | `ops:swap-app` | live route | you | the app's name; the route whose traffic moves |
//! | `ops:swap-app` | both services | you | the same name: the service agrees to be swapped (and IAM checks it) |
//! | `ops:swap-blue`, `ops:swap-green` | live route | you | the colours' ECS services, `cluster/service` |
//! | `ops:swap-strategy` | live route | you | `all-at-once`, `canary <percent> <bake>` or `linear <percent> <every>` (default `canary 10 5m`) |
//! | `ops:swap-alarms` | live route | you | CloudWatch alarms that stop a swap when in ALARM, space-separated |
//! | `ops:swap-health-timeout` | live route | you | how long new tasks may take to become healthy (default `15m`) |
//! | `ops:swap-test-wait` | live route | you | with a test route: how long the new colour serves only test traffic first (default `0m`) |
//! | `ops:swap-termination-wait` | live route | you | how long the old colour stays warm after all traffic moved (default `15m`) |
//! | `ops:swap-containers` | live route | you | containers to update (default: those running an image of the new image's repository) |
//! | `ops:swap-app` + `ops:swap-role=test` | test route | you | a listener or rule that serves the new colour before live traffic does |
//! | `ops:swap-plan` | live route | the swapper | the swap: id, colour, revisions, who, strategy, start |
//! | `ops:swap-image` | live route | the swapper | the image the swap deploys, pinned by digest |
//! | `ops:swap-state` | live route | the swapper | where the swap is: phase, step, since when, the weights before and after the transition, why, what was alerted |
//! | `ops:swap-why-1` .. `-3` | live route | the swapper | the rest of `ops:swap-state`'s reason when it does not fit (`wn=` says how many are current) |
//! | `ops:swap-run` | live route | the swapper | a token of the invocation that last wrote the swap's plan or state: a run re-reads plan, state and token before each change it makes and stops when another run wrote them meanwhile |
//! | `ops:swap-in-flight` | both services | the swapper | `<app>:<swap id>` while a swap is in flight (cpu-alarm-scaler holds scale-in) |

use std::collections::BTreeMap;
use std::fmt;

use ops_core::tags::{clip, fields, tag_word, MAX_TAG_VALUE};
use ops_core::time::{duration_text, parse_duration};
use serde::Serialize;

use crate::traffic::Split;

/// The app's name.
pub const APP: &str = ops_core::tags::SWAP_APP;
/// The blue colour's service.
pub const BLUE: &str = "ops:swap-blue";
/// The green colour's service.
pub const GREEN: &str = "ops:swap-green";
/// `test` on a test route.
pub const ROLE: &str = "ops:swap-role";
/// How traffic moves.
pub const STRATEGY: &str = "ops:swap-strategy";
/// Alarms that gate every step.
pub const ALARMS: &str = "ops:swap-alarms";
/// How long new tasks may take to become healthy.
pub const HEALTH_TIMEOUT: &str = "ops:swap-health-timeout";
/// How long only test traffic reaches the new colour.
pub const TEST_WAIT: &str = "ops:swap-test-wait";
/// How long the old colour stays warm.
pub const TERMINATION_WAIT: &str = "ops:swap-termination-wait";
/// The containers whose image a swap replaces.
pub const CONTAINERS: &str = "ops:swap-containers";
/// The swap's plan (set by the function).
pub const PLAN: &str = "ops:swap-plan";
/// The swap's image (set by the function).
pub const IMAGE: &str = "ops:swap-image";
/// The swap's state (set by the function).
pub const STATE: &str = "ops:swap-state";
/// The invocation that last wrote the swap's plan or state (set by the function).
pub const RUN: &str = "ops:swap-run";
/// When the swap's new colour was first seen not fully healthy in the state it is in (set by the
/// function): `id=<swap> v=<state version> at=<epoch seconds>`, or `... healthy` once it is again.
pub const UNHEALTHY: &str = "ops:swap-unhealthy";
/// The continuation tags of the state's reason: `ops:swap-why-1` and on (set by the function).
pub const WHY_MORE: &str = "ops:swap-why-";
/// How many continuation tags a reason may take.
const WHY_TAGS: usize = 3;
/// The longest encoded reason: it always fits the state tag's tail plus the continuation tags.
const WHY_ROOM: usize = WHY_TAGS * MAX_TAG_VALUE;
/// On both services while a swap is in flight (set by the function).
pub const IN_FLIGHT: &str = ops_core::tags::SWAP_IN_FLIGHT;

/// Longest a wait or timeout may be.
const MAX_WAIT: u64 = 86_400;

/// One of an app's two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Blue.
    Blue,
    /// Green.
    Green,
}

impl Colour {
    /// The other colour.
    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }

    /// `blue` or `green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }

    fn parse(text: &str) -> Option<Colour> {
        match text {
            "blue" => Some(Colour::Blue),
            "green" => Some(Colour::Green),
            _ => None,
        }
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ECS service named `cluster/service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceName {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
}

impl ServiceName {
    fn parse(text: &str) -> Option<ServiceName> {
        let (cluster, service) = text.trim().split_once('/')?;
        let valid = |name: &str| {
            !name.is_empty()
                && name.len() <= 255
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        (valid(cluster) && valid(service)).then(|| ServiceName {
            cluster: cluster.to_string(),
            service: service.to_string(),
        })
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
    }
}

/// How traffic moves from the old colour to the new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Strategy {
    /// Everything at once.
    AllAtOnce,
    /// `percent` first, the rest after `bake` seconds.
    Canary {
        /// Share of traffic on the new colour first.
        percent: u32,
        /// Seconds before the rest moves.
        bake: u64,
    },
    /// `percent` more every `every` seconds.
    Linear {
        /// Share of traffic moved per step.
        percent: u32,
        /// Seconds between steps.
        every: u64,
    },
}

impl Strategy {
    /// The default: a 10% canary for 5 minutes.
    pub const DEFAULT: Strategy = Strategy::Canary {
        percent: 10,
        bake: 300,
    };

    /// Parse `all-at-once`, `canary 10 5m` or `linear 20 2m` (a `%` after the number is allowed).
    pub fn parse(text: &str) -> Result<Strategy, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let usage = "use `all-at-once`, `canary <percent> <bake>` (e.g. `canary 10 5m`) or `linear <percent> <every>` (e.g. `linear 20 2m`)";
        let percent = |word: &str| -> Result<u32, String> {
            word.trim_end_matches('%')
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=99).contains(p))
                .ok_or_else(|| format!("`{word}` is not a percentage from 1 to 99"))
        };
        match words.as_slice() {
            ["all-at-once"] => Ok(Strategy::AllAtOnce),
            ["canary", p, wait] => Ok(Strategy::Canary {
                percent: percent(p)?,
                bake: parse_duration(wait, 60, MAX_WAIT)?,
            }),
            ["linear", p, wait] => Ok(Strategy::Linear {
                percent: percent(p)?,
                every: parse_duration(wait, 60, MAX_WAIT)?,
            }),
            _ => Err(format!("`{text}` is not a strategy; {usage}")),
        }
    }

    /// The new colour's share of traffic at each step, ending at 100.
    pub fn steps(&self) -> Vec<u32> {
        match *self {
            Strategy::AllAtOnce => vec![100],
            Strategy::Canary { percent, .. } => vec![percent, 100],
            Strategy::Linear { percent, .. } => {
                let mut steps: Vec<u32> = (1..)
                    .map(|i| i * percent)
                    .take_while(|p| *p < 100)
                    .collect();
                steps.push(100);
                steps
            }
        }
    }

    /// Seconds to wait at a step before the next.
    pub fn wait(&self) -> u64 {
        match *self {
            Strategy::AllAtOnce => 0,
            Strategy::Canary { bake, .. } => bake,
            Strategy::Linear { every, .. } => every,
        }
    }

    fn encode(&self) -> String {
        match *self {
            Strategy::AllAtOnce => "all-at-once".into(),
            Strategy::Canary { percent, bake } => format!("canary:{percent}:{bake}"),
            Strategy::Linear { percent, every } => format!("linear:{percent}:{every}"),
        }
    }

    fn decode(text: &str) -> Option<Strategy> {
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["all-at-once"] => Some(Strategy::AllAtOnce),
            ["canary", p, s] => Some(Strategy::Canary {
                percent: p.parse().ok()?,
                bake: s.parse().ok()?,
            }),
            ["linear", p, s] => Some(Strategy::Linear {
                percent: p.parse().ok()?,
                every: s.parse().ok()?,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Strategy::AllAtOnce => f.write_str("all-at-once"),
            Strategy::Canary { percent, bake } => {
                write!(f, "canary {percent}% for {}", duration_text(bake))
            }
            Strategy::Linear { percent, every } => {
                write!(f, "linear {percent}% every {}", duration_text(every))
            }
        }
    }
}

/// An app as its live route's tags describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppSpec {
    /// The app's name.
    pub name: String,
    /// The blue service.
    pub blue: ServiceName,
    /// The green service.
    pub green: ServiceName,
    /// How traffic moves.
    pub strategy: Strategy,
    /// Alarms that stop a swap.
    pub alarms: Vec<String>,
    /// Seconds new tasks may take to become healthy.
    pub health_timeout: u64,
    /// Seconds only test traffic reaches the new colour (with a test route).
    pub test_wait: u64,
    /// Seconds the old colour stays warm.
    pub termination_wait: u64,
    /// Containers to update; `None`: those running an image of the new image's repository.
    pub containers: Option<Vec<String>>,
}

impl AppSpec {
    /// The service of a colour.
    pub fn service(&self, colour: Colour) -> &ServiceName {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
        }
    }
}

/// Why an app's tags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A required tag is missing.
    #[error("tag `{0}` is missing")]
    Missing(&'static str),
    /// A tag's value cannot be used.
    #[error("tag `{tag}` = `{value}`: {reason}")]
    Invalid {
        /// The tag.
        tag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// The app a live route describes; `None` when the route carries no `ops:swap-app` (or is a
/// test route).
pub fn app_spec(tags: &BTreeMap<String, String>) -> Option<Result<AppSpec, ContractError>> {
    let name = tags.get(APP)?.trim().to_string();
    if is_test_route(tags) {
        return None;
    }
    Some(parse_app(name, tags))
}

/// Whether a route is an app's test route.
pub fn is_test_route(tags: &BTreeMap<String, String>) -> bool {
    tags.get(ROLE).map(|r| r.trim()) == Some("test")
}

fn parse_app(name: String, tags: &BTreeMap<String, String>) -> Result<AppSpec, ContractError> {
    let invalid = |tag: &'static str, value: &str, reason: String| ContractError::Invalid {
        tag,
        value: value.to_string(),
        reason,
    };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(invalid(
            APP,
            &name,
            "an app name is 1 to 64 letters, digits, `-` or `_`".into(),
        ));
    }
    let service = |tag: &'static str| -> Result<ServiceName, ContractError> {
        let raw = tags.get(tag).ok_or(ContractError::Missing(tag))?;
        ServiceName::parse(raw)
            .ok_or_else(|| invalid(tag, raw, "not an ECS service named cluster/service".into()))
    };
    let (blue, green) = (service(BLUE)?, service(GREEN)?);
    if blue == green {
        return Err(invalid(
            GREEN,
            &green.to_string(),
            "blue and green must be two different services".into(),
        ));
    }
    let strategy = match tags.get(STRATEGY) {
        Some(raw) => Strategy::parse(raw).map_err(|reason| invalid(STRATEGY, raw, reason))?,
        None => Strategy::DEFAULT,
    };
    let wait = |tag: &'static str, default: u64| -> Result<u64, ContractError> {
        match tags.get(tag) {
            Some(raw) => {
                parse_duration(raw, 0, MAX_WAIT).map_err(|reason| invalid(tag, raw, reason))
            }
            None => Ok(default),
        }
    };
    let alarms: Vec<String> = tags
        .get(ALARMS)
        .map(|raw| raw.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    if alarms.len() > 100 {
        return Err(invalid(
            ALARMS,
            &clip(&alarms.join(" "), 80),
            "at most 100 alarms".into(),
        ));
    }
    let containers = match tags.get(CONTAINERS) {
        None => None,
        Some(raw) => {
            let names: Vec<String> = raw.split_whitespace().map(String::from).collect();
            if let Some(bad) = names.iter().find(|n| {
                !n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }) {
                return Err(invalid(
                    CONTAINERS,
                    raw,
                    format!("`{bad}` is not a container name"),
                ));
            }
            (!names.is_empty()).then_some(names)
        }
    };
    let health_timeout = wait(HEALTH_TIMEOUT, 900)?;
    if health_timeout < 60 {
        return Err(invalid(
            HEALTH_TIMEOUT,
            &tags[HEALTH_TIMEOUT],
            "new tasks need at least 1 minute to become healthy".into(),
        ));
    }
    Ok(AppSpec {
        name,
        blue,
        green,
        strategy,
        alarms,
        health_timeout,
        test_wait: wait(TEST_WAIT, 0)?,
        termination_wait: wait(TERMINATION_WAIT, 900)?,
        containers,
    })
}

/// Where a swap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The new colour is being scaled up with the new revision; no traffic on it.
    Deploying,
    /// The new colour serves only the test route.
    Testing,
    /// Live traffic is split between the colours.
    Shifting,
    /// All traffic on the new colour; the old one is kept warm for a rollback.
    Warm,
    /// Traffic goes back to the old colour and the new one is restored.
    RollingBack,
    /// The new colour is restored; traffic never moved.
    Aborting,
    /// Finished: the new colour is live and the old one is scaled to zero.
    Done,
    /// Finished: traffic is back on the old colour.
    RolledBack,
    /// Finished: stopped before any traffic moved.
    Aborted,
}

impl Phase {
    /// Whether the swap is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Done | Phase::RolledBack | Phase::Aborted)
    }

    /// Whether live traffic may be on the new colour.
    pub fn carries_traffic(self) -> bool {
        matches!(self, Phase::Shifting | Phase::Warm)
    }

    /// The name in tags and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Deploying => "deploying",
            Phase::Testing => "testing",
            Phase::Shifting => "shifting",
            Phase::Warm => "warm",
            Phase::RollingBack => "rolling-back",
            Phase::Aborting => "aborting",
            Phase::Done => "done",
            Phase::RolledBack => "rolled-back",
            Phase::Aborted => "aborted",
        }
    }

    fn parse(text: &str) -> Option<Phase> {
        [
            Phase::Deploying,
            Phase::Testing,
            Phase::Shifting,
            Phase::Warm,
            Phase::RollingBack,
            Phase::Aborting,
            Phase::Done,
            Phase::RolledBack,
            Phase::Aborted,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a swap does, fixed when it starts (`ops:swap-plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapPlan {
    /// The swap's id (base 36 of its start time).
    pub id: String,
    /// The colour that becomes live.
    pub to: Colour,
    /// The revision it runs, `family:revision`.
    pub task_definition: String,
    /// The new colour's revision before the swap, `family:revision`, to restore on abort.
    pub was_task_definition: String,
    /// The new colour's desired count before the swap, to restore on abort.
    pub was_desired: i32,
    /// Who asked.
    pub requested_by: String,
    /// How traffic moves.
    pub strategy: Strategy,
    /// When it started, epoch seconds.
    pub started_at: u64,
}

impl SwapPlan {
    /// The colour that is live when the swap starts.
    pub fn from(&self) -> Colour {
        self.to.other()
    }

    /// The tag value.
    pub fn encode(&self) -> String {
        clip(
            &format!(
                "id={} to={} td={} was={}/{} how={} at={} by={}",
                self.id,
                self.to,
                tag_word(&self.task_definition),
                tag_word(&self.was_task_definition),
                self.was_desired,
                self.strategy.encode(),
                self.started_at,
                clip(&tag_word(&self.requested_by), 64),
            ),
            MAX_TAG_VALUE,
        )
    }

    /// Read the tag value back; `None` if it is not one this function wrote.
    pub fn decode(value: &str) -> Option<SwapPlan> {
        let fields = fields(value);
        let (was_td, was_desired) = fields.get("was")?.rsplit_once('/')?;
        Some(SwapPlan {
            id: fields.get("id")?.to_string(),
            to: Colour::parse(fields.get("to")?)?,
            task_definition: fields.get("td")?.to_string(),
            was_task_definition: was_td.to_string(),
            was_desired: was_desired.parse().ok()?,
            requested_by: fields.get("by").unwrap_or(&"unknown").to_string(),
            strategy: Strategy::decode(fields.get("how")?)?,
            started_at: fields.get("at")?.parse().ok()?,
        })
    }
}

/// Where a swap is (`ops:swap-state`): rewritten at every transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapState {
    /// The swap's id, as in its plan.
    pub id: String,
    /// Counts transitions: 1 when the swap starts.
    pub version: u32,
    /// The last version an alert was published for.
    pub reported: u32,
    /// The phase.
    pub phase: Phase,
    /// The step of the strategy (in `shifting`), from 0.
    pub step: usize,
    /// When the phase (or step) began, epoch seconds.
    pub since: u64,
    /// Live traffic when the transition was decided, exact weights (`None`: not recorded).
    pub before: Option<Split>,
    /// Live traffic as the transition leaves it, exact weights (`None`: not recorded).
    pub after: Option<Split>,
    /// Why the swap entered this phase, for people, word for word as alerted.
    pub why: String,
}

impl SwapState {
    /// The `ops:swap-state` tag value: the head, then ` why=` and as much of the encoded reason
    /// as fits; [`SwapState::tags`] gives the continuation tags with the rest.
    pub fn encode(&self) -> String {
        self.tags().remove(STATE).unwrap_or_default()
    }

    /// Every tag the state is written in: `ops:swap-state` and, when the reason does not fit,
    /// `ops:swap-why-1` and on (`wn=` in the head says how many belong to this state; others
    /// left from an earlier, longer reason are ignored).
    pub fn tags(&self) -> BTreeMap<String, String> {
        let why = encode_text(&self.why);
        let split = |s: &Option<Split>| {
            s.map(|s| format!(" b={}/{}/{}", s.blue, s.green, s.total))
                .unwrap_or_default()
        };
        let weights = format!(
            "{}{}",
            split(&self.before),
            split(&self.after).replacen(" b=", " a=", 1)
        );
        let head_for = |more: usize| {
            format!(
                "id={} v={} r={} phase={} step={} at={}{weights} wn={more} why=",
                self.id, self.version, self.reported, self.phase, self.step, self.since
            )
        };
        // The encoded reason is ASCII, so characters are bytes and every cut is on a boundary.
        let room = MAX_TAG_VALUE.saturating_sub(head_for(WHY_TAGS).len());
        let (first, mut rest) = why.split_at(room.min(why.len()));
        let mut more = Vec::new();
        while !rest.is_empty() && more.len() < WHY_TAGS {
            let (chunk, tail) = rest.split_at(MAX_TAG_VALUE.min(rest.len()));
            more.push(chunk.to_string());
            rest = tail;
        }
        let mut tags = BTreeMap::from([(
            STATE.to_string(),
            format!("{}{first}", head_for(more.len())),
        )]);
        for (i, chunk) in more.into_iter().enumerate() {
            tags.insert(format!("{WHY_MORE}{}", i + 1), chunk);
        }
        tags
    }

    /// Read the `ops:swap-state` tag value back alone (no continuation tags); `None` if it is
    /// not one this function wrote.
    pub fn decode(value: &str) -> Option<SwapState> {
        Self::decode_tags(&BTreeMap::from([(STATE.to_string(), value.to_string())]))
    }

    /// Read the state back from a route's tags; `None` if it is not one this function wrote.
    pub fn decode_tags(tags: &BTreeMap<String, String>) -> Option<SwapState> {
        let value = tags.get(STATE)?;
        let (head, why) = value.split_once(" why=").unwrap_or((value, ""));
        let fields = fields(head);
        let split = |key: &str| -> Option<Option<Split>> {
            let Some(text) = fields.get(key) else {
                return Some(None);
            };
            let mut parts = text.split('/').map(str::parse::<u64>);
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(Ok(blue)), Some(Ok(green)), Some(Ok(total)), None) => {
                    Some(Some(Split { blue, green, total }))
                }
                _ => None,
            }
        };
        let more: usize = match fields.get("wn") {
            Some(n) => n.parse().ok()?,
            None => 0,
        };
        let mut encoded = why.to_string();
        for i in 1..=more.min(WHY_TAGS) {
            encoded.push_str(tags.get(&format!("{WHY_MORE}{i}"))?);
        }
        Some(SwapState {
            id: fields.get("id")?.to_string(),
            version: fields.get("v")?.parse().ok()?,
            reported: fields.get("r")?.parse().ok()?,
            phase: Phase::parse(fields.get("phase")?)?,
            step: fields.get("step")?.parse().ok()?,
            since: fields.get("at")?.parse().ok()?,
            before: split("b")?,
            after: split("a")?,
            why: decode_text(&encoded),
        })
    }

    /// The next state: `phase` at `step` from `now`, because `why`; not yet alerted.
    pub fn next(&self, phase: Phase, step: usize, now: u64, why: impl Into<String>) -> SwapState {
        SwapState {
            id: self.id.clone(),
            version: self.version + 1,
            reported: self.reported,
            phase,
            step,
            since: now,
            before: None,
            after: None,
            why: fit_why(&why.into()),
        }
    }

    /// The same state, marked as alerted.
    pub fn alerted(&self) -> SwapState {
        SwapState {
            reported: self.version,
            ..self.clone()
        }
    }
}

/// A swap read from the live route's tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swap {
    /// What it does.
    pub plan: SwapPlan,
    /// Where it is.
    pub state: SwapState,
    /// The image it deploys, pinned by digest.
    pub image: String,
    /// When its new colour was first seen not fully healthy in the current state (epoch
    /// seconds), if it has been since the state began and not seen healthy after.
    pub unhealthy_since: Option<u64>,
}

/// The `ops:swap-unhealthy` value for `state`: the new colour not fully healthy since `since`, or
/// (`None`) healthy again.
pub fn unhealthy_mark(state: &SwapState, since: Option<u64>) -> String {
    let head = format!("id={} v={}", state.id, state.version);
    match since {
        Some(at) => format!("{head} at={at}"),
        None => format!("{head} healthy"),
    }
}

/// The onset an `ops:swap-unhealthy` value records for `state`: only one written for this very
/// state counts (a mark of an earlier state or swap is stale).
pub fn unhealthy_since(value: Option<&str>, state: &SwapState) -> Option<u64> {
    let fields = fields(value?);
    (fields.get("id") == Some(&state.id.as_str())
        && fields.get("v").and_then(|v| v.parse::<u32>().ok()) == Some(state.version))
    .then(|| fields.get("at").and_then(|at| at.parse().ok()))
    .flatten()
}

impl Swap {
    /// Whether the swap still has work to do: not finished, or finished but not yet alerted.
    pub fn needs_work(&self) -> bool {
        !self.state.phase.is_terminal() || self.state.reported < self.state.version
    }

    /// The chat thread of this swap's alerts.
    pub fn thread(&self, function: &str, app: &str) -> String {
        format!("{function}:{app}:{}", self.plan.id)
    }
}

/// The swap recorded on a live route: `None` when none was ever recorded, an error when the tags
/// are not ones this function wrote (or disagree with each other).
pub fn recorded_swap(tags: &BTreeMap<String, String>) -> Option<Result<Swap, String>> {
    let plan = tags.get(PLAN)?;
    let read = || -> Result<Swap, String> {
        let plan = SwapPlan::decode(plan)
            .ok_or_else(|| format!("tag `{PLAN}` = `{plan}` is not a swap plan"))?;
        let state_raw = tags.get(STATE).map(String::as_str).unwrap_or_default();
        let state = SwapState::decode_tags(tags)
            .ok_or_else(|| format!("tag `{STATE}` = `{state_raw}` is not a swap state"))?;
        if state.id != plan.id {
            return Err(format!(
                "tags `{PLAN}` (swap {}) and `{STATE}` (swap {}) disagree",
                plan.id, state.id
            ));
        }
        let image = tags
            .get(IMAGE)
            .cloned()
            .ok_or_else(|| format!("tag `{IMAGE}` is missing"))?;
        let unhealthy_since = unhealthy_since(tags.get(UNHEALTHY).map(String::as_str), &state);
        Ok(Swap {
            plan,
            state,
            image,
            unhealthy_since,
        })
    };
    Some(read())
}

/// A swap id from its start time: base 36, short enough for tags and threads.
pub fn swap_id(now: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = now;
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `text` cut (at a character) so that its encoding fits the state's tags: every reason is
/// stored, and alerted, whole.
pub fn fit_why(text: &str) -> String {
    let mut used = 0;
    text.chars()
        .take_while(|c| {
            used += encoded_len(*c);
            used <= WHY_ROOM
        })
        .collect()
}

fn encoded_len(c: char) -> usize {
    if kept(c) || c == ' ' {
        1
    } else {
        3 * c.len_utf8()
    }
}

/// Characters stored as themselves: ASCII letters, digits and `. : / = - @`. All are in ELB's
/// tag value pattern, and being ASCII each is one character however AWS counts length.
fn kept(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '=' | '-' | '@')
}

/// Free text as an ELB tag value allows it, losslessly: a space becomes `+`, and every other
/// character not [`kept`] (`_` and `+` included) becomes `_XX` for each byte of its UTF-8, in
/// upper-case hex (`(` is `_28`, `%` is `_25`, `é` is `_C3_A9`). The result is ASCII letters,
/// digits and `. : / = + - @ _` only, with no spaces (nothing to trim).
pub fn encode_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if kept(c) {
            out.push(c);
        } else if c == ' ' {
            out.push('+');
        } else {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("_{b:02X}"));
            }
        }
    }
    out
}

/// The text [`encode_text`] encoded. Lenient with values it did not write (an older state's
/// reason): a `_` not followed by two hex digits is kept as it is.
pub fn decode_text(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| (*b as char).to_digit(16))
                .map(|d| d as u8)
        };
        match bytes[i] {
            b'_' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'_'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

    fn shop() -> BTreeMap<String, String> {
        tags(&[
            (APP, "shop"),
            (BLUE, "prod/shop-blue"),
            (GREEN, "prod/shop-green"),
        ])
    }

    #[test]
    fn an_app_needs_only_its_name_and_two_services() {
        let app = app_spec(&shop()).unwrap().unwrap();
        assert_eq!(app.name, "shop");
        assert_eq!(app.green.to_string(), "prod/shop-green");
        assert_eq!(app.strategy, Strategy::DEFAULT);
        assert_eq!(
            (app.health_timeout, app.test_wait, app.termination_wait),
            (900, 0, 900)
        );
        assert!(app.alarms.is_empty() && app.containers.is_none());
        assert!(app_spec(&tags(&[("Name", "x")])).is_none());
        let mut test = shop();
        test.insert(ROLE.into(), "test".into());
        assert!(app_spec(&test).is_none() && is_test_route(&test));
    }

    #[test]
    fn a_bad_tag_is_named_with_its_value_and_the_fix() {
        let mut bad = shop();
        bad.insert(STRATEGY.into(), "canary 150 5m".into());
        assert_eq!(
            app_spec(&bad).unwrap().unwrap_err().to_string(),
            "tag `ops:swap-strategy` = `canary 150 5m`: `150` is not a percentage from 1 to 99"
        );
        let mut bad = shop();
        bad.insert(GREEN.into(), "shop-green".into());
        assert_eq!(
            app_spec(&bad).unwrap().unwrap_err().to_string(),
            "tag `ops:swap-green` = `shop-green`: not an ECS service named cluster/service"
        );
        let mut bad = shop();
        bad.remove(BLUE);
        assert_eq!(
            app_spec(&bad).unwrap().unwrap_err().to_string(),
            "tag `ops:swap-blue` is missing"
        );
        let mut bad = shop();
        bad.insert(TERMINATION_WAIT.into(), "soon".into());
        assert!(app_spec(&bad)
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("`soon` is not a duration"));
    }

    #[test]
    fn strategies_give_their_weight_sequences() {
        assert_eq!(Strategy::parse("all-at-once").unwrap().steps(), [100]);
        let canary = Strategy::parse("canary 10% 5m").unwrap();
        assert_eq!((canary.steps(), canary.wait()), (vec![10, 100], 300));
        assert_eq!(
            Strategy::parse("linear 25 1m").unwrap().steps(),
            [25, 50, 75, 100]
        );
        assert_eq!(
            Strategy::parse("linear 30 1m").unwrap().steps(),
            [30, 60, 90, 100]
        );
        assert_eq!(canary.to_string(), "canary 10% for 5 minutes");
        assert!(Strategy::parse("canary 10")
            .unwrap_err()
            .contains("is not a strategy"));
        assert!(Strategy::parse("linear 20 10s")
            .unwrap_err()
            .contains("1 minute"));
    }

    #[test]
    fn plan_and_state_survive_their_tags() {
        let plan = SwapPlan {
            id: swap_id(1_795_000_000),
            to: Colour::Green,
            task_definition: "shop-blue:8".into(),
            was_task_definition: "shop-green:3".into(),
            was_desired: 0,
            requested_by: "Zoë O'Neil".into(),
            strategy: Strategy::Linear {
                percent: 20,
                every: 120,
            },
            started_at: 1_795_000_000,
        };
        let decoded = SwapPlan::decode(&plan.encode()).unwrap();
        assert_eq!(decoded.requested_by, "Zoë_O_Neil");
        assert_eq!(
            decoded,
            SwapPlan {
                requested_by: "Zoë_O_Neil".into(),
                ..plan.clone()
            }
        );
        let state = SwapState {
            id: plan.id.clone(),
            version: 3,
            reported: 2,
            phase: Phase::RollingBack,
            step: 1,
            since: 1_795_000_600,
            before: Some(Split::at_percent(Colour::Green, 10)),
            after: Some(Split {
                blue: 999,
                green: 0,
                total: 999,
            }),
            why: "alarm shop-5xx is in ALARM (Threshold Crossed: 1 datapoint [12.0])".into(),
        };
        let encoded = state.encode();
        assert!(encoded.len() <= MAX_TAG_VALUE);
        assert!(
            encoded.contains(" b=90/10/100 a=999/0/999 wn=0 why="),
            "{encoded}"
        );
        assert_eq!(SwapState::decode(&encoded).unwrap(), state);
    }

    /// ELB's tag value pattern, `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`, for the ASCII the encoding
    /// emits (it emits nothing else).
    fn elb_allows(value: &str) -> bool {
        value.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        }) && value.chars().count() <= MAX_TAG_VALUE
    }

    #[test]
    fn every_printable_character_survives_the_tag_encoding_word_for_word() {
        let reasons = [
            "green is healthy (green 2/2 healthy) after 5 minutes at 10%".to_string(),
            "alarm shop-5xx, shop-latency in ALARM: 100% (p99 > 2s); _under_ + over = 50/50".into(),
            "déploiement demandé par Zoë O'Neil — 緑 ✅ 🚀, tab\there\nnewline".into(),
            " leading and trailing spaces  ".into(),
            "_28 is not an escape here, nor _ZZ, nor a lone _".into(),
            (' '..='~').collect::<String>(),
            [
                '\u{a0}',
                '\u{2028}',
                '\u{301}',
                '\u{ffff}',
                '\u{10ffff}',
                '\u{7f}',
                '\0',
            ]
            .iter()
            .collect(),
        ];
        for why in reasons {
            let encoded = encode_text(&why);
            assert!(encoded.is_ascii() && !encoded.contains(' '), "{encoded}");
            assert_eq!(decode_text(&encoded), why);
            let state = SwapState {
                id: "sq2xk0".into(),
                version: 12,
                reported: 11,
                phase: Phase::Shifting,
                step: 3,
                since: 1_795_000_600,
                before: Some(Split::at_percent(Colour::Blue, 75)),
                after: Some(Split::at_percent(Colour::Blue, 100)),
                why: why.clone(),
            };
            let tags = state.tags();
            assert!(tags.values().all(|v| elb_allows(v)), "{tags:?}");
            assert_eq!(SwapState::decode_tags(&tags).unwrap(), state);
        }
    }

    #[test]
    fn a_reason_too_long_for_one_tag_continues_in_others_and_comes_back_whole() {
        let why = "alarm (p99 > 2s) é/% ".repeat(40);
        let state = SwapState {
            id: "sq2xk0".into(),
            version: 1,
            reported: 0,
            phase: Phase::Deploying,
            step: 0,
            since: 1,
            before: None,
            after: None,
            why: String::new(),
        }
        .next(Phase::RollingBack, 0, 2, why.clone());
        let mut tags = state.tags();
        assert!(tags.len() > 1 && tags.len() <= 1 + WHY_TAGS, "{tags:?}");
        assert!(tags.values().all(|v| elb_allows(v)));
        let back = SwapState::decode_tags(&tags).unwrap();
        assert_eq!(back, state);
        assert!(why.starts_with(&back.why) && back.why.len() > 300);
        // A later, shorter reason leaves the old continuation tags behind; `wn` ignores them.
        let short = state.next(Phase::RolledBack, 0, 3, "done (100%)");
        tags.extend(short.tags());
        assert_eq!(SwapState::decode_tags(&tags).unwrap().why, "done (100%)");
        let long = fit_why(&"é".repeat(10_000));
        assert_eq!(encode_text(&long).len(), WHY_ROOM);
    }

    #[test]
    fn a_swap_whose_tags_disagree_is_an_error_not_a_guess() {
        let mut recorded = shop();
        recorded.insert(
            PLAN.into(),
            "id=a to=green td=x:1 was=y:1/0 how=all-at-once at=1 by=z".into(),
        );
        recorded.insert(
            STATE.into(),
            "id=b v=1 r=0 phase=deploying step=0 at=1 why=".into(),
        );
        recorded.insert(IMAGE.into(), "r/x:1".into());
        assert!(recorded_swap(&recorded)
            .unwrap()
            .unwrap_err()
            .contains("disagree"));
        recorded.insert(
            STATE.into(),
            "id=a v=1 r=0 phase=deploying step=0 at=1 why=started".into(),
        );
        let swap = recorded_swap(&recorded).unwrap().unwrap();
        assert!(swap.needs_work());
        assert!(recorded_swap(&shop()).is_none());
    }
}
