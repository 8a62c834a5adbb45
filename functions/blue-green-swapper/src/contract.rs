//! The tag contract: how an app is described on its ALB listener (or rule), and the swap the
//! function keeps there.
//!
//! AWS tag values allow only letters, digits, spaces and `_ . : / = + - @`, so lists are
//! space-separated.
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
//! | `ops:swap-state` | live route | the swapper | where the swap is: phase, step, since when, why, what was alerted |
//! | `ops:swap-in-flight` | both services | the swapper | `<app>:<swap id>` while a swap is in flight (cpu-alarm-scaler holds scale-in) |

use std::collections::BTreeMap;
use std::fmt;

use ops_core::tags::{clip, fields, tag_word, MAX_TAG_VALUE};
use ops_core::time::{duration_text, parse_duration};
use serde::Serialize;

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
    /// Why the swap entered this phase, for people.
    pub why: String,
}

impl SwapState {
    /// The tag value; `why` is cut to fit.
    pub fn encode(&self) -> String {
        let head = format!(
            "id={} v={} r={} phase={} step={} at={} why=",
            self.id, self.version, self.reported, self.phase, self.step, self.since
        );
        let room = MAX_TAG_VALUE.saturating_sub(head.chars().count());
        format!("{head}{}", clip(&tag_text(&self.why), room))
    }

    /// Read the tag value back; `None` if it is not one this function wrote.
    pub fn decode(value: &str) -> Option<SwapState> {
        let (head, why) = value.split_once(" why=").unwrap_or((value, ""));
        let fields = fields(head);
        Some(SwapState {
            id: fields.get("id")?.to_string(),
            version: fields.get("v")?.parse().ok()?,
            reported: fields.get("r")?.parse().ok()?,
            phase: Phase::parse(fields.get("phase")?)?,
            step: fields.get("step")?.parse().ok()?,
            since: fields.get("at")?.parse().ok()?,
            why: why.to_string(),
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
            why: why.into(),
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
        let state = SwapState::decode(state_raw)
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
        Ok(Swap { plan, state, image })
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

/// Free text as a tag allows it: characters AWS refuses in tag values become `_`.
fn tag_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric()
                || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
            {
                c
            } else {
                '_'
            }
        })
        .collect()
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
            why: "alarm shop-5xx is in ALARM (Threshold Crossed: 1 datapoint [12.0])".into(),
        };
        let encoded = state.encode();
        assert!(encoded.len() <= MAX_TAG_VALUE);
        let back = SwapState::decode(&encoded).unwrap();
        assert_eq!(
            back.why,
            "alarm shop-5xx is in ALARM _Threshold Crossed: 1 datapoint _12.0__"
        );
        assert_eq!(
            (back.version, back.reported, back.phase, back.step),
            (3, 2, Phase::RollingBack, 1)
        );
        let long = SwapState {
            why: "x".repeat(1000),
            ..state
        };
        assert_eq!(long.encode().chars().count(), MAX_TAG_VALUE);
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
