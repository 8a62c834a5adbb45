//! cpu-alarm-scaler's configuration, read once at start.

use ops_core::config::{CommonConfig, ConfigError, Env};

use crate::contract::TargetRef;
use crate::decide::Coexistence;

/// Everything the function is told by its environment.
#[derive(Debug, Clone)]
pub struct ScalerConfig {
    /// Function name and alert topic.
    pub common: CommonConfig,
    /// Auto Scaling groups it may scale (`AUTOSCALING_GROUPS`, comma-separated).
    pub groups: Vec<String>,
    /// ECS clusters whose services it may scale (`ECS_CLUSTERS`, comma-separated).
    pub clusters: Vec<String>,
    /// What to do when a target has native scaling too (`COEXISTENCE`: `refuse`, the default, or `warn`).
    pub coexistence: Coexistence,
}

impl ScalerConfig {
    /// Read the configuration; every problem names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let groups = env.list("AUTOSCALING_GROUPS");
        let clusters = env.list("ECS_CLUSTERS");
        if groups.is_empty() && clusters.is_empty() {
            return Err(ConfigError::Missing {
                name: "AUTOSCALING_GROUPS or ECS_CLUSTERS".into(),
            });
        }
        let coexistence = match env
            .optional("COEXISTENCE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("refuse") => Coexistence::Refuse,
            Some("warn") => Coexistence::Warn,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "COEXISTENCE",
                    other,
                    "must be refuse or warn",
                ))
            }
        };
        Ok(ScalerConfig {
            common: CommonConfig::from_env(env, "cpu-alarm-scaler")?,
            groups,
            clusters,
            coexistence,
        })
    }

    /// Whether the function may scale `target`.
    pub fn allows(&self, target: &TargetRef) -> bool {
        match target {
            TargetRef::Group { name } => self.groups.iter().any(|g| g == name),
            TargetRef::Service { cluster, .. } => self.clusters.iter().any(|c| c == cluster),
        }
    }
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
    fn it_needs_something_to_scale_and_a_known_coexistence_mode() {
        assert!(ScalerConfig::from_env(&env(&[]))
            .unwrap_err()
            .to_string()
            .contains("AUTOSCALING_GROUPS or ECS_CLUSTERS"));
        let error = ScalerConfig::from_env(&env(&[
            ("AUTOSCALING_GROUPS", "workers"),
            ("COEXISTENCE", "fight"),
        ]))
        .unwrap_err();
        assert_eq!(error.to_string(), "invalid configuration: environment variable `COEXISTENCE` = `fight`: must be refuse or warn");
    }

    #[test]
    fn only_listed_groups_and_clusters_are_allowed() {
        let config = ScalerConfig::from_env(&env(&[
            ("AUTOSCALING_GROUPS", "workers"),
            ("ECS_CLUSTERS", "prod"),
        ]))
        .unwrap();
        assert!(config.allows(&TargetRef::Group {
            name: "workers".into()
        }));
        assert!(!config.allows(&TargetRef::Group {
            name: "bastion".into()
        }));
        assert!(config.allows(&TargetRef::Service {
            cluster: "prod".into(),
            service: "web".into()
        }));
        assert!(!config.allows(&TargetRef::Service {
            cluster: "staging".into(),
            service: "web".into()
        }));
    }
}
