//! legacy-health-monitor's configuration, read once at start.

use ops_core::config::{CommonConfig, ConfigError, Env};

/// Everything the function is told by its environment.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Function name and alert topic.
    pub common: CommonConfig,
    /// DynamoDB table of target states (`HEALTH_STATE_TABLE`, required).
    pub state_table: String,
    /// A targets document inline (`HEALTH_TARGETS`), for a small list.
    pub inline: Option<String>,
    /// SSM Parameter Store path whose parameters are targets documents (`HEALTH_CONFIG_PATH`).
    pub parameter_path: Option<String>,
    /// Check running EC2 instances tagged `ops:health-check` (`HEALTH_DISCOVER_EC2`).
    pub discover_ec2: bool,
    /// Checks at once (`HEALTH_CONCURRENCY`, default 256).
    pub concurrency: usize,
    /// More changes than this in one run are one collated alert (`HEALTH_COLLATE_ABOVE`, default 3).
    pub collate_above: usize,
    /// CloudWatch namespace of the metrics (`HEALTH_METRICS_NAMESPACE`, default `Ops/LegacyHealth`;
    /// the stack's dashboard reads the default).
    pub namespace: String,
}

impl MonitorConfig {
    /// Read the configuration; every problem names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let state_table = env.required("HEALTH_STATE_TABLE")?.to_string();
        let parameter_path = env.optional("HEALTH_CONFIG_PATH").map(String::from);
        if let Some(path) = &parameter_path {
            if !path.starts_with('/') {
                return Err(ConfigError::invalid(
                    "HEALTH_CONFIG_PATH",
                    path,
                    "an SSM parameter path starts with /, e.g. /ops/health/",
                ));
            }
        }
        let discover_ec2 = match env.optional("HEALTH_DISCOVER_EC2") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(ConfigError::invalid(
                    "HEALTH_DISCOVER_EC2",
                    v,
                    "must be true or false",
                ))
            }
        };
        let inline = env.optional("HEALTH_TARGETS").map(String::from);
        if inline.is_none() && parameter_path.is_none() && !discover_ec2 {
            return Err(ConfigError::Missing {
                name: "HEALTH_TARGETS, HEALTH_CONFIG_PATH or HEALTH_DISCOVER_EC2".into(),
            });
        }
        let concurrency = env.parsed_or("HEALTH_CONCURRENCY", 256usize)?;
        if !(1..=1000).contains(&concurrency) {
            return Err(ConfigError::invalid(
                "HEALTH_CONCURRENCY",
                &concurrency.to_string(),
                "must be from 1 to 1000",
            ));
        }
        Ok(MonitorConfig {
            common: CommonConfig::from_env(env, "legacy-health-monitor")?,
            state_table,
            inline,
            parameter_path,
            discover_ec2,
            concurrency,
            collate_above: env.parsed_or("HEALTH_COLLATE_ABOVE", 3usize)?,
            namespace: metrics_namespace(
                env.optional("HEALTH_METRICS_NAMESPACE")
                    .unwrap_or(ops_core::metrics::HEALTH_NAMESPACE),
            )?,
        })
    }
}

/// A CloudWatch namespace as CloudWatch takes it: at most 255 characters of `0-9A-Za-z . - _ / # :`
/// and space, not only spaces, and not AWS's own `AWS/` (the CloudWatch concepts page,
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Namespace>).
/// Anything else would make CloudWatch drop every health metric line.
fn metrics_namespace(value: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::invalid("HEALTH_METRICS_NAMESPACE", value, reason);
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if value.len() > 255 || !value.chars().all(allowed) || value.trim().is_empty() {
        return Err(invalid(
            "a CloudWatch namespace is 1 to 255 characters of letters, digits, . - _ / # : and space",
        ));
    }
    if value.starts_with("AWS/") {
        return Err(invalid("namespaces starting with AWS/ are AWS's own"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut all = vec![(
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:ops-alerts",
        )];
        all.extend_from_slice(pairs);
        Env::from_pairs(all.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_table_and_at_least_one_source_are_required() {
        assert_eq!(
            MonitorConfig::from_env(&env(&[("HEALTH_TARGETS", "{}")]))
                .unwrap_err()
                .to_string(),
            "missing configuration: environment variable `HEALTH_STATE_TABLE` is not set"
        );
        assert_eq!(
            MonitorConfig::from_env(&env(&[("HEALTH_STATE_TABLE", "t")])).unwrap_err().to_string(),
            "missing configuration: environment variable `HEALTH_TARGETS, HEALTH_CONFIG_PATH or HEALTH_DISCOVER_EC2` is not set"
        );
        let config = MonitorConfig::from_env(&env(&[
            ("HEALTH_STATE_TABLE", "t"),
            ("HEALTH_CONFIG_PATH", "/ops/health/"),
        ]))
        .unwrap();
        assert_eq!((config.concurrency, config.collate_above), (256, 3));
    }

    #[test]
    fn malformed_values_are_named() {
        let error = MonitorConfig::from_env(&env(&[
            ("HEALTH_STATE_TABLE", "t"),
            ("HEALTH_CONFIG_PATH", "ops/health"),
        ]))
        .unwrap_err();
        assert!(error
            .to_string()
            .contains("`HEALTH_CONFIG_PATH` = `ops/health`: an SSM parameter path starts with /"));
        let error = MonitorConfig::from_env(&env(&[
            ("HEALTH_STATE_TABLE", "t"),
            ("HEALTH_DISCOVER_EC2", "yes"),
        ]))
        .unwrap_err();
        assert!(error.to_string().ends_with("must be true or false"));
    }

    #[test]
    fn the_metrics_namespace_is_one_cloudwatch_takes() {
        let with = |namespace: &str| {
            MonitorConfig::from_env(&env(&[
                ("HEALTH_STATE_TABLE", "t"),
                ("HEALTH_TARGETS", "{}"),
                ("HEALTH_METRICS_NAMESPACE", namespace),
            ]))
        };
        assert_eq!(
            with("Ops/LegacyHealth/opsstack-prod").unwrap().namespace,
            "Ops/LegacyHealth/opsstack-prod"
        );
        for bad in ["AWS/Lambda", "Ops/Santé", "Ops/a\tb", &"n".repeat(256)] {
            let error = with(bad).unwrap_err().to_string();
            assert!(
                error.contains("`HEALTH_METRICS_NAMESPACE`"),
                "{bad}: {error}"
            );
        }
    }
}
