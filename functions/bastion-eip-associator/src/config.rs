//! bastion-eip-associator's configuration, read once at start.
//!
//! The pool contract: Elastic IP allocations carry tag `ops:eip-pool` = `<pool>`; a bastion names
//! its pool with the same tag, on its Auto Scaling group (for launches through a lifecycle hook) or
//! on the instance itself (for a bastion outside a group).

use std::time::Duration;

use ops_core::config::{CommonConfig, ConfigError, Env};

/// The tag that names a pool, on addresses, groups and instances.
pub const POOL_TAG: &str = "ops:eip-pool";
/// The mark a takeover writes on a pool address before it frees it from a departed holder,
/// `from=<holder> for=<instance>`, and removes once the address is settled: a run that dies in
/// between leaves it, so whoever next finds the address free first checks that holder again.
pub const FREEING_TAG: &str = "ops:eip-freeing";
/// The tag Auto Scaling puts on its instances.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

/// Everything the function is told by its environment.
#[derive(Debug, Clone)]
pub struct AssociatorConfig {
    /// Function name and alert topic.
    pub common: CommonConfig,
    /// Groups whose launches it handles and completes (`BASTION_GROUPS`, comma-separated).
    pub groups: Vec<String>,
    /// Tries to get an address before giving up (`ASSOCIATE_ATTEMPTS`, default 3).
    pub attempts: u32,
    /// Pause between tries, for EC2's eventual consistency (`ASSOCIATE_RETRY_DELAY_MS`, default 2000).
    pub retry_delay: Duration,
}

impl AssociatorConfig {
    /// Read the configuration; every problem names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let attempts: u32 = env.parsed_or("ASSOCIATE_ATTEMPTS", 3)?;
        if !(1..=10).contains(&attempts) {
            return Err(ConfigError::invalid(
                "ASSOCIATE_ATTEMPTS",
                &attempts.to_string(),
                "must be from 1 to 10",
            ));
        }
        let delay: u64 = env.parsed_or("ASSOCIATE_RETRY_DELAY_MS", 2000)?;
        if delay > 10_000 {
            return Err(ConfigError::invalid(
                "ASSOCIATE_RETRY_DELAY_MS",
                &delay.to_string(),
                "must be at most 10000",
            ));
        }
        Ok(AssociatorConfig {
            common: CommonConfig::from_env(env, "bastion-eip-associator")?,
            groups: env.list("BASTION_GROUPS"),
            attempts,
            retry_delay: Duration::from_millis(delay),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_and_delay_are_bounded() {
        let env = |pairs: &[(&str, &str)]| {
            let mut all = vec![(
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:ops-alerts",
            )];
            all.extend_from_slice(pairs);
            Env::from_pairs(all.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let config = AssociatorConfig::from_env(&env(&[("BASTION_GROUPS", "bastion")])).unwrap();
        assert_eq!(
            (config.attempts, config.retry_delay),
            (3, Duration::from_secs(2))
        );
        assert!(
            AssociatorConfig::from_env(&env(&[("ASSOCIATE_ATTEMPTS", "0")]))
                .unwrap_err()
                .to_string()
                .contains("must be from 1 to 10")
        );
        assert!(
            AssociatorConfig::from_env(&env(&[("ASSOCIATE_RETRY_DELAY_MS", "60000")]))
                .unwrap_err()
                .to_string()
                .contains("at most 10000")
        );
    }
}
