//! deploy-trigger's configuration, read once at start.

use ops_core::config::{CommonConfig, ConfigError, Env};

/// Everything the function is told by its environment.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Function name and alert topic.
    pub common: CommonConfig,
    /// ECS clusters it manages (`ECS_CLUSTERS`, comma-separated, required).
    pub clusters: Vec<String>,
    /// Registry hosts images may come from (`ALLOWED_REGISTRIES`); empty means only the function's
    /// own account's ECR registry in its own region.
    pub allowed_registries: Vec<String>,
}

impl DeployConfig {
    /// Read the configuration; every problem names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let clusters = env.list("ECS_CLUSTERS");
        if clusters.is_empty() {
            return Err(ConfigError::Missing {
                name: "ECS_CLUSTERS".into(),
            });
        }
        Ok(DeployConfig {
            common: CommonConfig::from_env(env, "deploy-trigger")?,
            clusters,
            allowed_registries: env.list("ALLOWED_REGISTRIES"),
        })
    }

    /// Whether images may come from `registry`, for a function running in `account` and `region`.
    pub fn registry_allowed(&self, registry: &str, account: &str, region: &str) -> bool {
        if self.allowed_registries.is_empty() {
            registry == own_registry(account, region)
        } else {
            self.allowed_registries
                .iter()
                .any(|allowed| allowed == registry)
        }
    }
}

/// The private ECR registry host of an account in a region.
pub fn own_registry(account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
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
    fn by_default_only_the_own_account_registry_is_allowed() {
        let config = DeployConfig::from_env(&env(&[("ECS_CLUSTERS", "prod")])).unwrap();
        assert!(config.registry_allowed(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012",
            "us-east-1"
        ));
        assert!(!config.registry_allowed(
            "999999999999.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012",
            "us-east-1"
        ));
        assert!(!config.registry_allowed("docker.io", "123456789012", "us-east-1"));
    }

    #[test]
    fn an_explicit_list_replaces_the_default() {
        let config = DeployConfig::from_env(&env(&[
            ("ECS_CLUSTERS", "prod"),
            (
                "ALLOWED_REGISTRIES",
                "999999999999.dkr.ecr.eu-west-1.amazonaws.com",
            ),
        ]))
        .unwrap();
        assert!(config.registry_allowed(
            "999999999999.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012",
            "us-east-1"
        ));
        assert!(!config.registry_allowed(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012",
            "us-east-1"
        ));
    }
}
