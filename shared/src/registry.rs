//! Where images may come from: the function's own account's ECR registry, or an allow-list.
//!
//! Functions that put an image into a task definition (deploy-trigger, blue-green-swapper) check
//! its registry here first, so a chat command cannot make production pull from an arbitrary host.

use crate::config::Env;
use crate::error::Error;
use crate::events::EventError;

/// Who runs the function: its account and region, from the invoked function's ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// AWS account id.
    pub account_id: String,
    /// Region.
    pub region: String,
}

impl Caller {
    /// From `arn:aws:lambda:<region>:<account>:function:<name>[:alias]`.
    pub fn from_function_arn(arn: &str) -> Option<Caller> {
        let parts: Vec<&str> = arn.split(':').collect();
        (parts.len() >= 7 && parts[2] == "lambda").then(|| Caller {
            account_id: parts[4].to_string(),
            region: parts[3].to_string(),
        })
    }

    /// From the invoked function's ARN, or the error Lambda never gives (the runtime always
    /// passes one).
    pub fn of_invocation(arn: &str) -> Result<Caller, Error> {
        Caller::from_function_arn(arn).ok_or_else(|| {
            Error::Event(EventError::Unrecognised(format!(
                "the invoked function ARN `{arn}` has no account and region"
            )))
        })
    }

    /// This account's private ECR registry host in this region.
    pub fn own_registry(&self) -> String {
        own_registry(&self.account_id, &self.region)
    }
}

/// The private ECR registry host of an account in a region.
pub fn own_registry(account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
}

/// The registries images may come from (`ALLOWED_REGISTRIES`); empty means only the function's
/// own account's ECR registry in its own region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryPolicy {
    /// Allowed registry hosts; empty: the caller's own registry.
    pub allowed: Vec<String>,
}

impl RegistryPolicy {
    /// Read `ALLOWED_REGISTRIES` (comma-separated hosts).
    pub fn from_env(env: &Env) -> Self {
        RegistryPolicy {
            allowed: env.list("ALLOWED_REGISTRIES"),
        }
    }

    /// Whether images may come from `registry` for a function run by `caller`.
    pub fn allows(&self, registry: &str, caller: &Caller) -> bool {
        if self.allowed.is_empty() {
            registry == caller.own_registry()
        } else {
            self.allowed.iter().any(|allowed| allowed == registry)
        }
    }

    /// [`Error::Refused`] naming the registry and what is allowed, unless it is allowed.
    pub fn ensure(&self, registry: &str, caller: &Caller) -> Result<(), Error> {
        if self.allows(registry, caller) {
            return Ok(());
        }
        let allowed = if self.allowed.is_empty() {
            caller.own_registry()
        } else {
            self.allowed.join(", ")
        };
        Err(Error::Refused(format!(
            "images from registry `{registry}` are not allowed; allowed: {allowed} (ALLOWED_REGISTRIES)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn the_caller_comes_from_the_function_arn() {
        let caller = Caller::from_function_arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:deploy-trigger:live",
        )
        .unwrap();
        assert_eq!(
            caller,
            Caller {
                account_id: "123456789012".into(),
                region: "eu-west-1".into()
            }
        );
        assert_eq!(Caller::from_function_arn("deploy-trigger"), None);
    }

    #[test]
    fn by_default_only_the_own_account_registry_is_allowed() {
        let policy = RegistryPolicy::from_env(&Env::default());
        assert!(policy.allows("123456789012.dkr.ecr.us-east-1.amazonaws.com", &caller()));
        assert!(!policy.allows("999999999999.dkr.ecr.us-east-1.amazonaws.com", &caller()));
        assert_eq!(
            policy
                .ensure("docker.io", &caller())
                .unwrap_err()
                .to_string(),
            "refused: images from registry `docker.io` are not allowed; allowed: \
             123456789012.dkr.ecr.us-east-1.amazonaws.com (ALLOWED_REGISTRIES)"
        );
    }

    #[test]
    fn an_explicit_list_replaces_the_default() {
        let policy = RegistryPolicy::from_env(&Env::from_pairs([(
            "ALLOWED_REGISTRIES",
            "999999999999.dkr.ecr.eu-west-1.amazonaws.com",
        )]));
        assert!(policy.allows("999999999999.dkr.ecr.eu-west-1.amazonaws.com", &caller()));
        assert!(!policy.allows("123456789012.dkr.ecr.us-east-1.amazonaws.com", &caller()));
    }
}
