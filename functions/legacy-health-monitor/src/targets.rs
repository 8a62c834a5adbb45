//! The targets to check: parsed from config documents (the environment, SSM parameters) and from
//! EC2 instances tagged with a check, each one on its own, so that one bad entry is a named error
//! and every other target still runs.
//!
//! A document:
//!
//! ```json
//! {"defaults": {"timeout": "5s", "down_after": 3, "up_after": 2, "flap_window": 20, "flap_share": 25},
//!  "targets": [
//!    {"name": "billing", "http": "https://billing.internal:8443/health", "expect_status": "200-299",
//!     "body_contains": "ok", "max_latency": "800ms", "cert_warn_days": 14},
//!    {"name": "ldap", "tcp": "10.0.0.5:389",
//!     "maintenance": [{"days": ["sun"], "start_utc": "02:00", "for": "2h", "reason": "patching"}]}]}
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use hyper::Method;
use serde_json::{Map, Value};

use crate::mute::{parse_windows, Window};

pub use ops_core::probe::{parse_url, HttpProbe, Probe, StatusSet};

/// The tag an EC2 instance carries to be checked: a URL with `{ip}` for its private address,
/// e.g. `http://{ip}:8080/health` or `tcp://{ip}:22`.
pub const CHECK_TAG: &str = "ops:health-check";

/// The `User-Agent` of the monitor's HTTP checks.
pub const USER_AGENT: &str = "ops-legacy-health-monitor/1";

/// Longest check timeout: a run must finish well inside the function's own timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read.
pub const MAX_BODY_CAP: usize = 1 << 20;

/// One target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its unique name: the metric dimension, the state key, what alerts call it.
    pub name: String,
    /// How it is checked.
    pub probe: Probe,
    /// The whole check, a retry included, must finish within this.
    pub timeout: Duration,
    /// Consecutive failed runs before it is down.
    pub down_after: u32,
    /// Consecutive good runs before it is up again.
    pub up_after: u32,
    /// Alert again while it stays down, this often (seconds).
    pub reminder: Option<u64>,
    /// Runs looked back over to tell flapping (4 to 64).
    pub flap_window: u32,
    /// Percent of those runs failed that make it flapping (0: never).
    pub flap_share: u32,
    /// Why flapping is off although the document's `defaults` (or the built-in ones) ask for it:
    /// with this target's `down_after` they can never fire.
    pub flap_off: Option<String>,
    /// Maintenance windows: its alerts are held back while one is open (see [`crate::mute`]).
    pub maintenance: Vec<Window>,
    /// Where it was configured: `env`, an SSM parameter name, or an EC2 instance.
    pub source: String,
}

impl Target {
    /// What is checked, for people: the URL, or `tcp host:port`. Never includes headers.
    pub fn describe(&self) -> String {
        self.probe.describe()
    }
}

/// A target entry that cannot be used, named so it can be fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {entry}: {reason}")]
pub struct TargetError {
    /// The document (or instance) it came from.
    pub origin: String,
    /// `targets[3] (billing)`, or `document` for the whole document.
    pub entry: String,
    /// What is wrong, naming the field.
    pub reason: String,
}

/// Defaults a document sets for its targets.
#[derive(Debug, Clone)]
struct Defaults {
    timeout: Duration,
    down_after: u32,
    up_after: u32,
    reminder: Option<u64>,
    flap_window: u32,
    flap_share: u32,
    cert_warn_days: u32,
    max_body: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: Duration::from_secs(5),
            down_after: 3,
            up_after: 2,
            reminder: None,
            flap_window: 20,
            flap_share: 25,
            cert_warn_days: 14,
            max_body: ops_core::probe::DEFAULT_MAX_BODY,
        }
    }
}

const TARGET_FIELDS: &[&str] = &[
    "name",
    "http",
    "tcp",
    "method",
    "headers",
    "body",
    "expect_status",
    "body_contains",
    "body_regex",
    "max_latency",
    "verify_tls",
    "cert_warn_days",
    "max_body_bytes",
    "timeout",
    "down_after",
    "up_after",
    "reminder",
    "flap_window",
    "flap_share",
    "maintenance",
];
const DEFAULT_FIELDS: &[&str] = &[
    "timeout",
    "down_after",
    "up_after",
    "reminder",
    "flap_window",
    "flap_share",
    "cert_warn_days",
    "max_body_bytes",
];

/// Parse a config document from `source`: every valid target, and an error for every bad one.
pub fn parse_document(source: &str, text: &str) -> (Vec<Target>, Vec<TargetError>) {
    let fail = |entry: &str, reason: String| TargetError {
        origin: source.to_string(),
        entry: entry.to_string(),
        reason,
    };
    let document: Value = match serde_json::from_str(text) {
        Ok(document) => document,
        Err(error) => return (vec![], vec![fail("document", format!("not JSON: {error}"))]),
    };
    let Some(object) = document.as_object() else {
        return (
            vec![],
            vec![fail("document", "must be an object with `targets`".into())],
        );
    };
    if let Some(unknown) = object.keys().find(|k| *k != "defaults" && *k != "targets") {
        return (
            vec![],
            vec![fail(
                "document",
                format!("unknown field `{unknown}`; the fields are defaults, targets"),
            )],
        );
    }
    let defaults = match object
        .get("defaults")
        .map(|d| defaults(d, &Defaults::default()))
    {
        None => Defaults::default(),
        Some(Ok(defaults)) => defaults,
        Some(Err(reason)) => return (vec![], vec![fail("defaults", reason)]),
    };
    let Some(entries) = object.get("targets").and_then(Value::as_array) else {
        return (
            vec![],
            vec![fail("document", "field `targets` must be a list".into())],
        );
    };
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
        let label = if name.is_empty() {
            format!("targets[{index}]")
        } else {
            format!("targets[{index}] ({name})")
        };
        match parse_target(entry, &defaults, source) {
            Ok(target) => targets.push(target),
            Err(reason) => errors.push(fail(&label, reason)),
        }
    }
    (targets, errors)
}

/// A target for an EC2 instance tagged [`CHECK_TAG`], its `{ip}` filled in.
pub fn from_instance(
    id: &str,
    label: Option<&str>,
    private_ip: Option<&str>,
    template: &str,
) -> Result<Target, TargetError> {
    let source = format!("ec2 {id}");
    let fail = |reason: String| TargetError {
        origin: source.clone(),
        entry: format!("tag `{CHECK_TAG}`"),
        reason,
    };
    let ip = private_ip.ok_or_else(|| fail("the instance has no private IP".into()))?;
    let filled = template.trim().replace("{ip}", ip);
    let name = match label {
        Some(label) if !label.trim().is_empty() => format!("{}/{id}", label.trim()),
        _ => id.to_string(),
    };
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(name));
    match filled.strip_prefix("tcp://") {
        Some(address) => entry.insert(
            "tcp".into(),
            Value::String(address.trim_end_matches('/').into()),
        ),
        None => entry.insert("http".into(), Value::String(filled)),
    };
    parse_target(&Value::Object(entry), &Defaults::default(), &source).map_err(fail)
}

/// The target named `name` (surrounding spaces ignored), or a not-found error that names it.
pub fn find<'t>(targets: &'t [Target], name: &str) -> ops_core::Result<&'t Target> {
    targets
        .iter()
        .find(|t| t.name == name.trim())
        .ok_or_else(|| ops_core::Error::NotFound {
            kind: "health target",
            name: name.to_string(),
        })
}

/// Names that appear twice keep their first target; the others are errors.
pub fn dedupe(targets: Vec<Target>) -> (Vec<Target>, Vec<TargetError>) {
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    for target in targets {
        if seen.insert(target.name.clone()) {
            kept.push(target);
        } else {
            errors.push(TargetError {
                origin: target.source.clone(),
                entry: format!("target `{}`", target.name),
                reason: "another target already has this name; names must be unique".into(),
            });
        }
    }
    (kept, errors)
}

fn defaults(value: &Value, base: &Defaults) -> Result<Defaults, String> {
    let object = value.as_object().ok_or("must be an object")?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !DEFAULT_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field `{unknown}`; the fields are {}",
            DEFAULT_FIELDS.join(", ")
        ));
    }
    Ok(Defaults {
        timeout: field(object, "timeout", |v| {
            duration_field(v, Duration::from_millis(100), MAX_TIMEOUT)
        })?
        .unwrap_or(base.timeout),
        down_after: field(object, "down_after", count_field)?.unwrap_or(base.down_after),
        up_after: field(object, "up_after", count_field)?.unwrap_or(base.up_after),
        reminder: field(object, "reminder", reminder_field)?.or(base.reminder),
        flap_window: field(object, "flap_window", flap_window_field)?.unwrap_or(base.flap_window),
        flap_share: field(object, "flap_share", flap_share_field)?.unwrap_or(base.flap_share),
        cert_warn_days: field(object, "cert_warn_days", days_field)?.unwrap_or(base.cert_warn_days),
        max_body: field(object, "max_body_bytes", body_cap_field)?.unwrap_or(base.max_body),
    })
}

fn parse_target(entry: &Value, defaults: &Defaults, source: &str) -> Result<Target, String> {
    let object = entry.as_object().ok_or("must be an object")?;
    if let Some(unknown) = object.keys().find(|k| !TARGET_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field `{unknown}`"));
    }
    let name = field(object, "name", string_field)?.ok_or("field `name` is missing")?;
    if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err("field `name`: 1 to 128 printable characters".into());
    }
    let defaults = defaults.clone();
    let probe = match (object.get("http"), object.get("tcp")) {
        (Some(_), Some(_)) => return Err("give `http` or `tcp`, not both".into()),
        (None, None) => return Err("give `http` (a URL) or `tcp` (host:port) to check".into()),
        (None, Some(tcp)) => {
            let only_http = [
                "method",
                "headers",
                "body",
                "expect_status",
                "body_contains",
                "body_regex",
                "max_latency",
                "verify_tls",
                "cert_warn_days",
                "max_body_bytes",
            ];
            if let Some(misplaced) = only_http.iter().find(|f| object.contains_key(**f)) {
                return Err(format!("field `{misplaced}` applies to `http` checks only"));
            }
            let text = tcp
                .as_str()
                .ok_or("field `tcp`: must be a string, host:port")?;
            let (host, port) = host_port(text).map_err(|e| format!("field `tcp`: {e}"))?;
            Probe::Tcp { host, port }
        }
        (Some(http), None) => Probe::Http(Box::new(http_probe(object, http, &defaults)?)),
    };
    let down_after = field(object, "down_after", count_field)?.unwrap_or(defaults.down_after);
    let flap_window =
        field(object, "flap_window", flap_window_field)?.unwrap_or(defaults.flap_window);
    let flap_share = field(object, "flap_share", flap_share_field)?.unwrap_or(defaults.flap_share);
    let own = object.contains_key("flap_window") || object.contains_key("flap_share");
    let (flap_share, flap_off) = match flapping_can_happen(flap_window, flap_share, down_after) {
        Ok(()) => (flap_share, None),
        Err(reason) if own => {
            return Err(format!("fields `flap_share` and `flap_window`: {reason}"))
        }
        // Settings this entry took from the defaults (or the built-in ones) that cannot fire with
        // its own `down_after`: flapping is off for it, and `status` says why.
        Err(reason) => (0, Some(format!("off: the defaults' {reason}"))),
    };
    Ok(Target {
        name: name.trim().to_string(),
        probe,
        timeout: field(object, "timeout", |v| {
            duration_field(v, Duration::from_millis(100), MAX_TIMEOUT)
        })?
        .unwrap_or(defaults.timeout),
        down_after,
        up_after: field(object, "up_after", count_field)?.unwrap_or(defaults.up_after),
        reminder: field(object, "reminder", reminder_field)?.or(defaults.reminder),
        flap_window,
        flap_share,
        flap_off,
        maintenance: field(object, "maintenance", parse_windows)?.unwrap_or_default(),
        source: source.to_string(),
    })
}

/// How many failed runs of a `window` make `share` percent of it, rounded up.
pub fn flap_failures(window: u32, share: u32) -> u32 {
    (window * share).div_ceil(100)
}

/// Whether `share` percent of `window` runs failed (rounded up) can make a target flapping: at
/// least 2 failures, and no more than fit in the window without `down_after` in a row (a target
/// that fails that many in a row is down, not flapping). Share 0 (off) always can. The reason says
/// what would work.
fn flapping_can_happen(window: u32, share: u32, down_after: u32) -> Result<(), String> {
    if share == 0 {
        return Ok(());
    }
    let needed = flap_failures(window, share);
    let possible = window - window / down_after;
    if possible < 2 {
        return Err(format!(
            "{share}% of {window} runs can never be flapping with `down_after` {down_after}: a target that fails is down before it can fail twice without {down_after} in a row (raise `down_after`, or 0 in `flap_share` turns it off)"
        ));
    }
    if needed < 2 {
        return Err(format!(
            "{share}% of {window} runs is {needed} failed run, and flapping takes at least 2 (use {}% or more, or 0 to turn it off)",
            100 / window + 1
        ));
    }
    if needed > possible {
        return Err(format!(
            "{share}% of {window} runs is {needed} failed runs, but at most {possible} of {window} can fail without {down_after} in a row (`down_after`), which is down, not flapping (use {}% or less, or raise `down_after`)",
            possible * 100 / window
        ));
    }
    Ok(())
}

fn http_probe(
    object: &Map<String, Value>,
    http: &Value,
    defaults: &Defaults,
) -> Result<HttpProbe, String> {
    let text = http.as_str().ok_or("field `http`: must be a URL string")?;
    let url = parse_url(text).map_err(|e| {
        if e.contains("credentials") {
            // Credentials belong in `headers`, which are never shown.
            format!("field `http`: {e}; send them in `headers`")
        } else {
            format!("field `http`: {e}")
        }
    })?;
    let method = match field(object, "method", string_field)? {
        None => Method::GET,
        Some(m) => match m.to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "HEAD" => Method::HEAD,
            "POST" => Method::POST,
            "OPTIONS" => Method::OPTIONS,
            _ => {
                return Err(format!(
                    "field `method`: `{m}` is not one of GET, HEAD, POST, OPTIONS"
                ))
            }
        },
    };
    let headers = match object.get("headers") {
        None => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let value = v
                    .as_str()
                    .ok_or_else(|| format!("field `headers`: `{k}` must be a string"))?;
                let valid_name = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !valid_name
                    || k.eq_ignore_ascii_case("host")
                    || k.eq_ignore_ascii_case("content-length")
                {
                    return Err(format!(
                        "field `headers`: `{k}` is not a header this check may set"
                    ));
                }
                if value.chars().any(|c| c.is_control()) {
                    return Err(format!(
                        "field `headers`: the value of `{k}` has control characters"
                    ));
                }
                Ok((k.clone(), value.to_string()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("field `headers`: must be an object of name: value".into()),
    };
    let body_regex = match field(object, "body_regex", string_field)? {
        None => None,
        Some(pattern) => Some(
            regex_lite::Regex::new(&pattern)
                .map_err(|e| format!("field `body_regex`: `{pattern}` is not a pattern: {e}"))?,
        ),
    };
    let verify_tls = match object.get("verify_tls") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("field `verify_tls`: must be true or false".into()),
    };
    Ok(HttpProbe {
        url,
        user_agent: USER_AGENT,
        method,
        headers,
        body: field(object, "body", string_field)?,
        expect_status: match object.get("expect_status") {
            None => StatusSet(vec![(200, 299)]),
            Some(value) => {
                StatusSet::parse(value).map_err(|e| format!("field `expect_status`: {e}"))?
            }
        },
        body_contains: field(object, "body_contains", string_field)?,
        body_regex,
        max_latency: field(object, "max_latency", |v| {
            duration_field(v, Duration::from_millis(1), MAX_TIMEOUT)
        })?,
        verify_tls,
        cert_warn_days: field(object, "cert_warn_days", days_field)?
            .unwrap_or(defaults.cert_warn_days),
        max_body: field(object, "max_body_bytes", body_cap_field)?.unwrap_or(defaults.max_body),
    })
}

/// Read an optional field with `parse`, naming the field in its error.
fn field<T>(
    object: &Map<String, Value>,
    name: &str,
    parse: impl Fn(&Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    object
        .get(name)
        .map(|value| parse(value).map_err(|e| format!("field `{name}`: {e}")))
        .transpose()
}

fn string_field(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("`{value}` must be a string"))
}

fn count_field(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .filter(|n| (1..=100).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| format!("`{value}` must be a whole number from 1 to 100"))
}

fn days_field(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .filter(|n| *n <= 365)
        .map(|n| n as u32)
        .ok_or_else(|| format!("`{value}` must be a whole number of days from 0 to 365"))
}

fn body_cap_field(value: &Value) -> Result<usize, String> {
    value
        .as_u64()
        .filter(|n| (1..=MAX_BODY_CAP as u64).contains(n))
        .map(|n| n as usize)
        .ok_or_else(|| format!("`{value}` must be from 1 to {MAX_BODY_CAP} bytes"))
}

fn flap_window_field(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .filter(|n| (4..=64).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| format!("`{value}` must be a whole number of runs from 4 to 64"))
}

fn flap_share_field(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .filter(|n| *n <= 100)
        .map(|n| n as u32)
        .ok_or_else(|| {
            format!("`{value}` must be a whole percent of the window's runs from 0 (never) to 100")
        })
}

fn reminder_field(value: &Value) -> Result<u64, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("`{value}` must be a duration like 1h"))?;
    ops_core::time::parse_duration(text, 300, 7 * 86_400)
}

fn duration_field(value: &Value, min: Duration, max: Duration) -> Result<Duration, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("`{value}` must be a duration like 5s or 800ms"))?;
    let parsed = match text.trim().strip_suffix("ms") {
        Some(ms) => ms.parse::<u64>().ok().map(Duration::from_millis),
        None => ops_core::time::parse_duration(text, 0, max.as_secs())
            .ok()
            .map(Duration::from_secs),
    };
    parsed.filter(|d| *d >= min && *d <= max).ok_or_else(|| {
        format!(
            "`{text}` is not a duration from {} ms to {} s, like 5s or 800ms",
            min.as_millis(),
            max.as_secs()
        )
    })
}

fn host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` has no port; write host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`{port}` is not a port from 1 to 65535"))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("`{text}` names no host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_with_defaults_gives_http_and_tcp_targets() {
        let (targets, errors) = parse_document(
            "env",
            r#"{"defaults": {"timeout": "2s", "down_after": 2},
                "targets": [
                  {"name": "billing", "http": "https://billing.internal:8443/health?deep=1", "expect_status": "200-299 301",
                   "body_contains": "ok", "max_latency": "800ms", "headers": {"Authorization": "Bearer s3cret"}},
                  {"name": "ldap", "tcp": "10.0.0.5:389", "up_after": 4}]}"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let billing = &targets[0];
        assert_eq!(
            (billing.timeout, billing.down_after, billing.up_after),
            (Duration::from_secs(2), 2, 2)
        );
        let Probe::Http(http) = &billing.probe else {
            panic!()
        };
        assert!(http.expect_status.contains(301) && !http.expect_status.contains(302));
        assert_eq!(http.max_latency, Some(Duration::from_millis(800)));
        assert!(http.verify_tls);
        assert_eq!(
            billing.describe(),
            "GET https://billing.internal:8443/health?deep=1"
        );
        assert!(!billing.describe().contains("s3cret"));
        assert!(matches!(&targets[1].probe, Probe::Tcp { host, port: 389 } if host == "10.0.0.5"));
        assert_eq!(targets[1].up_after, 4);
    }

    #[test]
    fn each_bad_entry_is_named_and_the_good_ones_still_run() {
        let (targets, errors) = parse_document(
            "/ops/health/web",
            r#"{"targets": [
                {"name": "ok", "tcp": "db:5432"},
                {"name": "no-port", "tcp": "db"},
                {"name": "bad-status", "http": "http://a/", "expect_status": "2xx"},
                {"http": "http://a/"},
                {"name": "both", "http": "http://a/", "tcp": "a:1"},
                {"name": "ftp", "http": "ftp://a/"},
                {"name": "slow", "http": "http://a/", "timeout": "2m"},
                {"name": "typo", "http": "http://a/", "body_contain": "ok"},
                {"name": "regex", "http": "http://a/", "body_regex": "(unclosed"},
                {"name": "tcp-method", "tcp": "a:1", "method": "GET"},
                {"name": "userinfo", "http": "https://ops:hunter2@a/"}]}"#,
        );
        assert_eq!(
            targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["ok"]
        );
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages[0],
            "/ops/health/web: targets[1] (no-port): field `tcp`: `db` has no port; write host:port"
        );
        assert_eq!(messages[1], "/ops/health/web: targets[2] (bad-status): field `expect_status`: `2xx` is not an HTTP status code (100 to 599)");
        assert_eq!(
            messages[2],
            "/ops/health/web: targets[3]: field `name` is missing"
        );
        assert!(messages[3].ends_with("give `http` or `tcp`, not both"));
        assert!(messages[4].ends_with("`ftp://a/` must start with http:// or https://"));
        assert!(messages[5].contains("field `timeout`: `2m` is not a duration from 100 ms to 30 s"));
        assert!(messages[6].ends_with("unknown field `body_contain`"));
        assert!(messages[7].contains("field `body_regex`: `(unclosed` is not a pattern"));
        assert!(messages[8].ends_with("field `method` applies to `http` checks only"));
        assert!(messages[9].ends_with(
            "a URL must not carry credentials (user:password@); send them in `headers`"
        ));
        assert!(!messages[9].contains("hunter2"));
    }

    #[test]
    fn a_document_that_is_not_one_is_one_error() {
        let (_, errors) = parse_document("env", "{\"targets\": 3}");
        assert_eq!(
            errors[0].to_string(),
            "env: document: field `targets` must be a list"
        );
        let (_, errors) = parse_document("env", "not json");
        assert!(errors[0].to_string().starts_with("env: document: not JSON"));
    }

    #[test]
    fn an_instance_tag_becomes_a_check_of_its_private_address() {
        let target = from_instance(
            "i-0abc",
            Some("billing-01"),
            Some("10.1.2.3"),
            "http://{ip}:8080/health",
        )
        .unwrap();
        assert_eq!(target.name, "billing-01/i-0abc");
        assert_eq!(target.describe(), "GET http://10.1.2.3:8080/health");
        let tcp = from_instance("i-0def", None, Some("10.1.2.4"), "tcp://{ip}:22").unwrap();
        assert_eq!(
            (tcp.name.as_str(), tcp.describe().as_str()),
            ("i-0def", "tcp 10.1.2.4:22")
        );
        let error = from_instance("i-0xyz", None, Some("10.1.2.5"), "tcp://{ip}").unwrap_err();
        assert_eq!(error.to_string(), "ec2 i-0xyz: tag `ops:health-check`: field `tcp`: `10.1.2.5` has no port; write host:port");
    }

    #[test]
    fn duplicate_names_keep_the_first() {
        let (targets, _) = parse_document(
            "env",
            r#"{"targets": [{"name": "a", "tcp": "x:1"}, {"name": "a", "tcp": "y:1"}]}"#,
        );
        let (kept, errors) = dedupe(targets);
        assert_eq!(kept.len(), 1);
        assert!(errors[0]
            .to_string()
            .contains("another target already has this name"));
    }

    #[test]
    fn flapping_settings_that_can_never_fire_are_named_and_defaults_that_cannot_are_off() {
        let (targets, errors) = parse_document(
            "env",
            r#"{"targets": [
                {"name": "all", "tcp": "a:1", "flap_window": 4, "flap_share": 100},
                {"name": "one", "tcp": "a:1", "flap_window": 4, "flap_share": 1},
                {"name": "fine", "tcp": "a:1", "flap_window": 4, "flap_share": 75},
                {"name": "instant", "tcp": "a:1", "down_after": 1}]}"#,
        );
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("targets[0] (all): fields `flap_share` and `flap_window`: 100% of 4 runs is 4 failed runs, but at most 3 of 4 can fail without 3 in a row (`down_after`), which is down, not flapping (use 75% or less, or raise `down_after`)"), "{}", errors[0]);
        assert!(errors[1].contains("targets[1] (one): fields `flap_share` and `flap_window`: 1% of 4 runs is 1 failed run, and flapping takes at least 2 (use 26% or more, or 0 to turn it off)"), "{}", errors[1]);
        let target = |name: &str| targets.iter().find(|t| t.name == name).unwrap();
        assert_eq!(
            (target("fine").flap_share, target("instant").flap_share),
            (75, 0)
        );
        assert_eq!(
            target("instant").flap_off.as_deref(),
            Some("off: the defaults' 25% of 20 runs can never be flapping with `down_after` 1: a target that fails is down before it can fail twice without 1 in a row (raise `down_after`, or 0 in `flap_share` turns it off)")
        );
    }
}
