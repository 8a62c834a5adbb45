//! Typed configuration from the environment, read once at init.
//!
//! A missing or malformed value is a named [`ConfigError`] (which variable, what was wrong), never a
//! panic. Functions read through an [`Env`] rather than `std::env` so tests can hand each function
//! its own variables without touching the process environment, which parallel tests share.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A configuration value that is missing or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("missing configuration: environment variable `{name}` is not set")]
    Missing {
        /// The variable's name.
        name: String,
    },
    /// A variable is set but its value is unusable.
    #[error("invalid configuration: environment variable `{name}` = `{value}`: {reason}")]
    Invalid {
        /// The variable's name.
        name: String,
        /// The value as found, shortened.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// An invalid-value error; the value is shortened so a stray blob cannot flood a log.
    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        let shown: String = value.chars().take(80).collect();
        ConfigError::Invalid {
            name: name.into(),
            value: shown,
            reason: reason.into(),
        }
    }
}

/// A snapshot of environment variables. Empty values count as unset.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    // Names only: the process environment holds credentials (AWS_SECRET_ACCESS_KEY, session tokens).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Env {
    /// The process environment, read once.
    pub fn from_process() -> Self {
        Env::from_pairs(std::env::vars())
    }

    /// An environment made of the given pairs, for tests and tools.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        Env { vars }
    }

    /// The value of `name`, if set and not empty.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim())
    }

    /// The value of `name`, or [`ConfigError::Missing`].
    pub fn required(&self, name: &str) -> Result<&str, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::Missing { name: name.into() })
    }

    /// The value of `name` parsed as `T`, or `default` when unset.
    pub fn parsed_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| ConfigError::invalid(name, raw, e.to_string())),
        }
    }

    /// A required ARN of the given service (e.g. `sns`), checked for shape.
    pub fn required_arn(&self, name: &str, service: &str) -> Result<String, ConfigError> {
        let raw = self.required(name)?;
        check_arn(raw, service).map_err(|reason| ConfigError::invalid(name, raw, reason))?;
        Ok(raw.to_string())
    }

    /// A comma-separated list that must name at least one item, or [`ConfigError::Missing`].
    pub fn required_list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        let items = self.list(name);
        if items.is_empty() {
            return Err(ConfigError::Missing { name: name.into() });
        }
        Ok(items)
    }

    /// A comma-separated list; unset gives an empty list, blank items are dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Check that `arn` looks like `arn:<partition>:<service>:<region>:<account>:<resource>`.
pub fn check_arn(arn: &str, service: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        return Err("not an ARN (expected arn:partition:service:region:account:resource)".into());
    }
    if parts[2] != service {
        return Err(format!(
            "an ARN of service `{}`, expected `{service}`",
            parts[2]
        ));
    }
    if parts[5].is_empty() {
        return Err("the ARN names no resource".into());
    }
    Ok(())
}

/// What every function needs: who it is and where alerts go.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// The function's name as Lambda knows it, used in alerts and logs.
    pub function_name: String,
    /// The SNS topic that ops subscribe to.
    pub alert_topic_arn: String,
    /// The function's own execution role (`OPS_ROLE_ARN`, set by the template), which `doctor`
    /// asks IAM about; `None` where it is not set, and `doctor` then says IAM was not asked.
    pub role_arn: Option<String>,
    /// How far ahead of the invocation's clock an event's own time may be, in seconds
    /// (`SCHEDULE_LEAD_SECONDS`, default [`crate::events::DEFAULT_SCHEDULE_LEAD`]: clock skew). The
    /// template never sets it; the demo plays the schedule hours ahead and does.
    pub schedule_lead: u64,
}

impl CommonConfig {
    /// Read `ALERT_TOPIC_ARN` (required) and `AWS_LAMBDA_FUNCTION_NAME` (default: `fallback_name`).
    pub fn from_env(env: &Env, fallback_name: &str) -> Result<Self, ConfigError> {
        Ok(CommonConfig {
            function_name: env
                .optional("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or(fallback_name)
                .to_string(),
            alert_topic_arn: env.required_arn("ALERT_TOPIC_ARN", "sns")?,
            role_arn: env
                .optional("OPS_ROLE_ARN")
                .map(|_| env.required_arn("OPS_ROLE_ARN", "iam"))
                .transpose()?,
            schedule_lead: env.parsed_or(
                "SCHEDULE_LEAD_SECONDS",
                crate::events::DEFAULT_SCHEDULE_LEAD,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_variable_is_named() {
        let env = Env::from_pairs([("OTHER", "x"), ("BLANK", "  ")]);
        assert_eq!(
            env.required("BLANK").unwrap_err().to_string(),
            "missing configuration: environment variable `BLANK` is not set"
        );
    }

    #[test]
    fn malformed_number_names_variable_value_and_reason() {
        let env = Env::from_pairs([("AWS_MAX_ATTEMPTS", "three")]);
        let err = env.parsed_or("AWS_MAX_ATTEMPTS", 3u32).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: environment variable `AWS_MAX_ATTEMPTS` = `three`: invalid digit found in string"
        );
    }

    #[test]
    fn alert_topic_must_be_an_sns_arn() {
        let env = Env::from_pairs([("ALERT_TOPIC_ARN", "arn:aws:sqs:us-east-1:123456789012:q")]);
        let err = CommonConfig::from_env(&env, "f").unwrap_err();
        assert!(
            err.to_string()
                .contains("an ARN of service `sqs`, expected `sns`"),
            "{err}"
        );
        let env = Env::from_pairs([("ALERT_TOPIC_ARN", "ops-alerts")]);
        let err = CommonConfig::from_env(&env, "f").unwrap_err();
        assert!(err.to_string().contains("not an ARN"), "{err}");
    }

    #[test]
    fn common_config_reads_function_name_and_topic() {
        let env = Env::from_pairs([
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:ops-alerts",
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", "deploy-trigger-prod"),
        ]);
        let config = CommonConfig::from_env(&env, "deploy-trigger").unwrap();
        assert_eq!(config.function_name, "deploy-trigger-prod");
        assert_eq!(
            config.alert_topic_arn,
            "arn:aws:sns:us-east-1:123456789012:ops-alerts"
        );
    }

    #[test]
    fn debug_output_shows_names_but_never_values() {
        let env = Env::from_pairs([("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    }

    #[test]
    fn lists_drop_blank_items() {
        let env = Env::from_pairs([("CLUSTERS", "prod, ,staging,")]);
        assert_eq!(env.list("CLUSTERS"), vec!["prod", "staging"]);
        assert!(env.list("UNSET").is_empty());
    }
}
