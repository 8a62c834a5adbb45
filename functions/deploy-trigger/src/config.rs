//! deploy-trigger's configuration, read once at start.

use ops_core::config::{CommonConfig, ConfigError, Env};
use ops_core::registry::RegistryPolicy;

/// Everything the function is told by its environment.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Function name and alert topic.
    pub common: CommonConfig,
    /// ECS clusters it manages (`ECS_CLUSTERS`, comma-separated, required).
    pub clusters: Vec<String>,
    /// Registry hosts images may come from (`ALLOWED_REGISTRIES`).
    pub registries: RegistryPolicy,
}

impl DeployConfig {
    /// Read the configuration; every problem names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let clusters = env.required_list("ECS_CLUSTERS")?;
        Ok(DeployConfig {
            common: CommonConfig::from_env(env, "deploy-trigger")?,
            clusters,
            registries: RegistryPolicy::from_env(env),
        })
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
    fn clusters_are_required() {
        let error = DeployConfig::from_env(&env(&[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "missing configuration: environment variable `ECS_CLUSTERS` is not set"
        );
    }

    #[test]
    fn allowed_registries_come_from_the_environment() {
        let config = DeployConfig::from_env(&env(&[
            ("ECS_CLUSTERS", "prod"),
            ("ALLOWED_REGISTRIES", "a.example, b.example"),
        ]))
        .unwrap();
        assert_eq!(config.registries.allowed, ["a.example", "b.example"]);
    }
}
