//! blue-green-swapper's configuration, read once at start.

use ops_core::aws::elbv2::RouteKind;
use ops_core::config::{CommonConfig, ConfigError, Env};
use ops_core::registry::RegistryPolicy;

/// Everything the function is told by its environment.
#[derive(Debug, Clone)]
pub struct SwapperConfig {
    /// Function name and alert topic.
    pub common: CommonConfig,
    /// ECS clusters whose services it may change (`ECS_CLUSTERS`, comma-separated, required).
    pub clusters: Vec<String>,
    /// Listener and rule ARNs it may change (`SWAP_ROUTES`, comma-separated, required): the live
    /// and test routes of every app. Apps are found by their tags among these only.
    pub routes: Vec<String>,
    /// Registry hosts images may come from (`ALLOWED_REGISTRIES`).
    pub registries: RegistryPolicy,
    /// What this deployment of the function serves (`SWAPPER_SERVES`).
    pub serves: Serves,
    /// The function chat commands go to, as alerts print them: this one, or for the hook function
    /// the swapper itself (`SWAPPER_FUNCTION_NAME`, required with `lifecycle-hooks`).
    pub chat_function: String,
}

/// What a deployment of the function serves. ECS rolls a deployment back when it cannot invoke
/// its lifecycle hook (developer guide, "Lambda hooks for Amazon ECS service deployments": "if it
/// fails, Amazon ECS rolls back the deployment"), so the hook runs as a function of its own,
/// without the reserved concurrency of one that keeps swaps to one invocation at a time: a hook
/// call must never be throttled by a swap's tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Swaps, chat, and (when pointed at it) lifecycle hook calls: `everything`, the default.
    Everything,
    /// Lifecycle hook calls and ECS's hook events only (and `doctor`): `lifecycle-hooks`.
    LifecycleHooks,
}

impl SwapperConfig {
    /// Read the configuration; every problem names its variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let clusters = env.required_list("ECS_CLUSTERS")?;
        let routes = env.required_list("SWAP_ROUTES")?;
        if let Some(bad) = routes.iter().find(|arn| {
            ops_core::config::check_arn(arn, "elasticloadbalancing").is_err()
                || RouteKind::of(arn).is_none()
        }) {
            return Err(ConfigError::invalid(
                "SWAP_ROUTES",
                bad,
                "each item must be an ALB listener or listener rule ARN",
            ));
        }
        let serves = match env.optional("SWAPPER_SERVES").map(str::trim) {
            None | Some("") | Some("everything") => Serves::Everything,
            Some("lifecycle-hooks") => Serves::LifecycleHooks,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "SWAPPER_SERVES",
                    other,
                    "must be `everything` (the default) or `lifecycle-hooks`",
                ))
            }
        };
        let common = CommonConfig::from_env(env, "blue-green-swapper")?;
        let chat_function = match serves {
            Serves::Everything => common.function_name.clone(),
            Serves::LifecycleHooks => env.required("SWAPPER_FUNCTION_NAME")?.to_string(),
        };
        Ok(SwapperConfig {
            common,
            clusters,
            routes,
            registries: RegistryPolicy::from_env(env),
            serves,
            chat_function,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut all = vec![(
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:ops-alerts",
        )];
        all.extend_from_slice(pairs);
        Env::from_pairs(all.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn clusters_and_routes_are_required() {
        assert_eq!(
            SwapperConfig::from_env(&env(&[("SWAP_ROUTES", LISTENER)]))
                .unwrap_err()
                .to_string(),
            "missing configuration: environment variable `ECS_CLUSTERS` is not set"
        );
        assert_eq!(
            SwapperConfig::from_env(&env(&[("ECS_CLUSTERS", "prod")]))
                .unwrap_err()
                .to_string(),
            "missing configuration: environment variable `SWAP_ROUTES` is not set"
        );
    }

    #[test]
    fn a_route_that_is_not_a_listener_or_rule_is_named() {
        let error = SwapperConfig::from_env(&env(&[
            ("ECS_CLUSTERS", "prod"),
            (
                "SWAP_ROUTES",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1",
            ),
        ]))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("must be an ALB listener or listener rule ARN"),
            "{error}"
        );
        let config =
            SwapperConfig::from_env(&env(&[("ECS_CLUSTERS", "prod"), ("SWAP_ROUTES", LISTENER)]))
                .unwrap();
        assert_eq!(config.routes, [LISTENER]);
        assert_eq!(config.serves, Serves::Everything);
    }

    #[test]
    fn the_hook_function_is_told_what_it_serves() {
        let base = [("ECS_CLUSTERS", "prod"), ("SWAP_ROUTES", LISTENER)];
        let missing = SwapperConfig::from_env(&env(&[
            base[0],
            base[1],
            ("SWAPPER_SERVES", "lifecycle-hooks"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(missing.contains("`SWAPPER_FUNCTION_NAME`"), "{missing}");
        let hooks = SwapperConfig::from_env(&env(&[
            base[0],
            base[1],
            ("SWAPPER_SERVES", "lifecycle-hooks"),
            ("SWAPPER_FUNCTION_NAME", "opsstack-blue-green-swapper"),
        ]))
        .unwrap();
        assert_eq!(hooks.serves, Serves::LifecycleHooks);
        assert_eq!(hooks.chat_function, "opsstack-blue-green-swapper");
        let error = SwapperConfig::from_env(&env(&[base[0], base[1], ("SWAPPER_SERVES", "hooks")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`everything` (the default) or `lifecycle-hooks`"),
            "{error}"
        );
    }
}
