//! ELBv2 adapter: listeners and listener rules as routes with their forward weights, target
//! health, and tags on routes.
//!
//! A route is what sends traffic to target groups: a listener's default actions or a rule's
//! actions. Changing weights rewrites only the forward action's target groups; every other action
//! (authentication before the forward, stickiness of the forward) is written back as it was read.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Tag, TargetGroupTuple,
};
use serde::Serialize;
use tracing::instrument;

use super::aws_error;
use crate::error::{Error, Result};

/// Most resources one DescribeTags call takes.
const TAGS_PER_CALL: usize = 20;

/// Whether a route is a listener (its default actions) or a listener rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// `arn:...:listener/...`: the listener's default actions route.
    Listener,
    /// `arn:...:listener-rule/...`: the rule's actions route.
    Rule,
}

impl RouteKind {
    /// The kind an ARN names, or `None` for an ARN that is neither.
    pub fn of(arn: &str) -> Option<RouteKind> {
        let resource = arn.splitn(6, ':').nth(5)?;
        if resource.starts_with("listener-rule/") {
            Some(RouteKind::Rule)
        } else if resource.starts_with("listener/") {
            Some(RouteKind::Listener)
        } else {
            None
        }
    }
}

/// The ARN of the load balancer a listener or rule ARN belongs to:
/// `...:listener/app/<name>/<lb id>/<listener id>` and
/// `...:listener-rule/app/<name>/<lb id>/<listener id>/<rule id>` give
/// `...:loadbalancer/app/<name>/<lb id>`.
pub fn load_balancer_of(route_arn: &str) -> Option<String> {
    let (prefix, resource) = route_arn.rsplit_once(':')?;
    let mut parts = resource.split('/');
    let kind = parts.next()?;
    if kind != "listener" && kind != "listener-rule" {
        return None;
    }
    let (class, name, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!("{prefix}:loadbalancer/{class}/{name}/{id}"))
}

/// One target group a forward action sends to, with its share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Weighted {
    /// The target group's ARN.
    pub target_group_arn: String,
    /// Its weight as ELB stores it (0 to 999; traffic share = weight / sum of weights).
    pub weight: i32,
}

/// A listener or rule with its actions and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The listener or rule ARN.
    pub arn: String,
    /// Listener or rule.
    pub kind: RouteKind,
    /// The actions as ELB returned them.
    pub actions: Vec<Action>,
    /// The route's tags.
    pub tags: BTreeMap<String, String>,
}

impl Route {
    /// The target groups the forward action sends to, with their weights; `None` when the route
    /// has no forward action (a redirect or fixed response).
    pub fn forwards(&self) -> Option<Vec<Weighted>> {
        let forward = self
            .actions
            .iter()
            .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))?;
        let weighted: Vec<Weighted> = forward
            .forward_config()
            .map(|config| {
                config
                    .target_groups()
                    .iter()
                    .filter_map(|tuple| {
                        Some(Weighted {
                            target_group_arn: tuple.target_group_arn()?.to_string(),
                            weight: tuple.weight().unwrap_or(1),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !weighted.is_empty() {
            return Some(weighted);
        }
        forward.target_group_arn().map(|arn| {
            vec![Weighted {
                target_group_arn: arn.to_string(),
                weight: 1,
            }]
        })
    }

    /// The share of traffic (0 to 100, rounded) that goes to `target_group_arn`.
    pub fn percent_to(&self, target_group_arn: &str) -> u32 {
        let Some(weighted) = self.forwards() else {
            return 0;
        };
        let total: i64 = weighted.iter().map(|w| i64::from(w.weight.max(0))).sum();
        if total == 0 {
            return 0;
        }
        let mine: i64 = weighted
            .iter()
            .filter(|w| w.target_group_arn == target_group_arn)
            .map(|w| i64::from(w.weight.max(0)))
            .sum();
        ((mine * 100 + total / 2) / total) as u32
    }

    /// The actions with the forward action sending to `weights` instead; every other action and
    /// the forward's stickiness are kept. Errs when the route has no forward action.
    pub fn with_weights(&self, weights: &[Weighted]) -> std::result::Result<Vec<Action>, String> {
        let mut found = false;
        let actions = self
            .actions
            .iter()
            .map(|action| {
                if action.r#type() != Some(&ActionTypeEnum::Forward) || found {
                    return action.clone();
                }
                found = true;
                let tuples = weights
                    .iter()
                    .map(|w| {
                        TargetGroupTuple::builder()
                            .target_group_arn(&w.target_group_arn)
                            .weight(w.weight)
                            .build()
                    })
                    .collect();
                let config = ForwardActionConfig::builder()
                    .set_target_groups(Some(tuples))
                    .set_target_group_stickiness_config(
                        action
                            .forward_config()
                            .and_then(|c| c.target_group_stickiness_config())
                            .cloned(),
                    )
                    .build();
                let mut changed = action.clone();
                // ELB refuses a TargetGroupArn beside a ForwardConfig of several groups.
                changed.target_group_arn = None;
                changed.forward_config = Some(config);
                changed
            })
            .collect();
        if found {
            Ok(actions)
        } else {
            Err(format!("{} has no forward action", self.arn))
        }
    }
}

/// The health of one registered target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetHealth {
    /// Instance id or IP address.
    pub id: String,
    /// Port, if any.
    pub port: Option<i32>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable`.
    pub state: String,
    /// ELB's reason code, e.g. `Target.FailedHealthChecks`.
    pub reason: Option<String>,
}

/// Reads and changes ELBv2 listeners, rules and target health through the SDK.
#[derive(Debug, Clone)]
pub struct LoadBalancers {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl LoadBalancers {
    /// Build the adapter from the function's shared SDK config.
    pub fn new(config: &SdkConfig) -> Self {
        LoadBalancers {
            client: aws_sdk_elasticloadbalancingv2::Client::new(config),
        }
    }

    /// The underlying client, for operations the adapter does not wrap yet.
    pub fn client(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.client
    }

    /// Tags of listeners, rules or target groups, by ARN, 20 per call.
    #[instrument(skip(self, arns), fields(count = arns.len()), err)]
    pub async fn tags(
        &self,
        arns: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        let mut found = BTreeMap::new();
        for batch in arns.chunks(TAGS_PER_CALL) {
            let answer = self
                .client
                .describe_tags()
                .set_resource_arns(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| not_found_or(aws_error("elbv2", "DescribeTags", e), batch))?;
            for description in answer.tag_descriptions() {
                let Some(arn) = description.resource_arn() else {
                    continue;
                };
                found.insert(arn.to_string(), from_tags(description.tags()));
            }
        }
        Ok(found)
    }

    /// One listener or rule with its actions and tags; [`Error::NotFound`] if ELB has none.
    #[instrument(skip(self), err)]
    pub async fn route(&self, arn: &str) -> Result<Route> {
        let tags = self
            .tags(&[arn.to_string()])
            .await?
            .remove(arn)
            .unwrap_or_default();
        self.route_with_tags(arn, tags).await
    }

    /// One listener or rule with its actions, given the tags already read.
    #[instrument(skip(self, tags), err)]
    pub async fn route_with_tags(
        &self,
        arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<Route> {
        let kind = RouteKind::of(arn).ok_or_else(|| Error::NotFound {
            kind: "listener or listener rule",
            name: arn.to_string(),
        })?;
        let missing = || Error::NotFound {
            kind: match kind {
                RouteKind::Listener => "listener",
                RouteKind::Rule => "listener rule",
            },
            name: arn.to_string(),
        };
        let actions = match kind {
            RouteKind::Listener => self
                .client
                .describe_listeners()
                .listener_arns(arn)
                .send()
                .await
                .map_err(|e| not_found_or(aws_error("elbv2", "DescribeListeners", e), &[arn]))?
                .listeners()
                .iter()
                .find(|l| l.listener_arn() == Some(arn))
                .ok_or_else(missing)?
                .default_actions()
                .to_vec(),
            RouteKind::Rule => self
                .client
                .describe_rules()
                .rule_arns(arn)
                .send()
                .await
                .map_err(|e| not_found_or(aws_error("elbv2", "DescribeRules", e), &[arn]))?
                .rules()
                .iter()
                .find(|r| r.rule_arn() == Some(arn))
                .ok_or_else(missing)?
                .actions()
                .to_vec(),
        };
        Ok(Route {
            arn: arn.to_string(),
            kind,
            actions,
            tags,
        })
    }

    /// Every route of the load balancer `route_arn` belongs to, without tags: each listener's
    /// default actions, and each of its rules but the default one (whose actions are the
    /// listener's). An ALB target group serves one load balancer (ELB User Guide, "Target groups
    /// for your Application Load Balancers"), so these are every route that can send traffic to
    /// the target groups `route_arn` sends to. One DescribeListeners and one DescribeRules per
    /// listener (each paginated).
    #[instrument(skip(self), err)]
    pub async fn routes_of_load_balancer(&self, route_arn: &str) -> Result<Vec<Route>> {
        let load_balancer = load_balancer_of(route_arn).ok_or_else(|| Error::NotFound {
            kind: "load balancer of the route",
            name: route_arn.to_string(),
        })?;
        let mut routes = Vec::new();
        let mut listeners = self
            .client
            .describe_listeners()
            .load_balancer_arn(&load_balancer)
            .into_paginator()
            .send();
        while let Some(page) = listeners.next().await {
            let page = page.map_err(|e| {
                not_found_or(
                    aws_error("elbv2", "DescribeListeners", e),
                    &[&load_balancer],
                )
            })?;
            for listener in page.listeners() {
                let Some(arn) = listener.listener_arn() else {
                    continue;
                };
                routes.push(Route {
                    arn: arn.to_string(),
                    kind: RouteKind::Listener,
                    actions: listener.default_actions().to_vec(),
                    tags: BTreeMap::new(),
                });
                let mut marker: Option<String> = None;
                loop {
                    let page = self
                        .client
                        .describe_rules()
                        .listener_arn(arn)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| {
                            not_found_or(aws_error("elbv2", "DescribeRules", e), &[arn])
                        })?;
                    routes.extend(
                        page.rules()
                            .iter()
                            .filter(|rule| rule.is_default() != Some(true))
                            .filter_map(|rule| {
                                Some(Route {
                                    arn: rule.rule_arn()?.to_string(),
                                    kind: RouteKind::Rule,
                                    actions: rule.actions().to_vec(),
                                    tags: BTreeMap::new(),
                                })
                            }),
                    );
                    match page.next_marker() {
                        Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                        _ => break,
                    }
                }
            }
        }
        Ok(routes)
    }

    /// Send `route`'s traffic to `weights`: one ModifyListener or ModifyRule call.
    #[instrument(skip(self, route), fields(route = %route.arn), err)]
    pub async fn set_weights(&self, route: &Route, weights: &[Weighted]) -> Result<()> {
        let actions = route.with_weights(weights).map_err(Error::Refused)?;
        match route.kind {
            RouteKind::Listener => {
                self.client
                    .modify_listener()
                    .listener_arn(&route.arn)
                    .set_default_actions(Some(actions))
                    .send()
                    .await
                    .map_err(|e| aws_error("elbv2", "ModifyListener", e))?;
            }
            RouteKind::Rule => {
                self.client
                    .modify_rule()
                    .rule_arn(&route.arn)
                    .set_actions(Some(actions))
                    .send()
                    .await
                    .map_err(|e| aws_error("elbv2", "ModifyRule", e))?;
            }
        }
        Ok(())
    }

    /// Set tags on a listener, rule or target group, overwriting those keys.
    #[instrument(skip(self, tags), err)]
    pub async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.client
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws_error("elbv2", "AddTags", e))?;
        Ok(())
    }

    /// The health of every target registered in a target group.
    #[instrument(skip(self), err)]
    pub async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetHealth>> {
        let answer = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| {
                not_found_or(
                    aws_error("elbv2", "DescribeTargetHealth", e),
                    &[target_group_arn],
                )
            })?;
        Ok(answer
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let target = d.target()?;
                let health = d.target_health();
                Some(TargetHealth {
                    id: target.id()?.to_string(),
                    port: target.port(),
                    state: health
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                })
            })
            .collect())
    }
}

/// ELB's not-found codes (`ListenerNotFound`, `RuleNotFound`, `TargetGroupNotFound`, ...) as
/// [`Error::NotFound`] naming what was asked for; anything else as the AWS error.
fn not_found_or(error: crate::error::AwsError, asked: &[impl AsRef<str>]) -> Error {
    if error.is_not_found() {
        Error::NotFound {
            kind: "ELB resource",
            name: asked
                .iter()
                .map(|a| a.as_ref().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
    } else {
        Error::Aws(error)
    }
}

fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_or_rule_names_its_load_balancer() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188";
        assert_eq!(
            load_balancer_of("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2").as_deref(),
            Some(lb)
        );
        assert_eq!(
            load_balancer_of("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee").as_deref(),
            Some(lb)
        );
        assert_eq!(
            load_balancer_of(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1"
            ),
            None
        );
    }
    use aws_sdk_elasticloadbalancingv2::types::{
        AuthenticateOidcActionConfig, TargetGroupStickinessConfig,
    };

    const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1";
    const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/2";

    fn route(actions: Vec<Action>) -> Route {
        Route {
            arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/2".into(),
            kind: RouteKind::Listener,
            actions,
            tags: BTreeMap::new(),
        }
    }

    fn weighted(weights: &[(&str, i32)]) -> Vec<Weighted> {
        weights
            .iter()
            .map(|(arn, weight)| Weighted {
                target_group_arn: arn.to_string(),
                weight: *weight,
            })
            .collect()
    }

    #[test]
    fn a_plain_forward_sends_everything_to_its_one_group() {
        let plain = route(vec![Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(BLUE)
            .build()]);
        assert_eq!(plain.forwards(), Some(weighted(&[(BLUE, 1)])));
        assert_eq!(plain.percent_to(BLUE), 100);
        assert_eq!(plain.percent_to(GREEN), 0);
    }

    #[test]
    fn new_weights_keep_authentication_and_stickiness() {
        let oidc = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateOidc)
            .order(1)
            .authenticate_oidc_config(
                AuthenticateOidcActionConfig::builder()
                    .issuer("https://idp")
                    .authorization_endpoint("https://idp/auth")
                    .token_endpoint("https://idp/token")
                    .user_info_endpoint("https://idp/user")
                    .client_id("shop")
                    .build(),
            )
            .build();
        let forward = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(2)
            .target_group_arn(BLUE)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(TargetGroupTuple::builder().target_group_arn(BLUE).build())
                    .target_group_stickiness_config(
                        TargetGroupStickinessConfig::builder()
                            .enabled(true)
                            .duration_seconds(300)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let before = route(vec![oidc.clone(), forward]);
        let actions = before
            .with_weights(&weighted(&[(BLUE, 90), (GREEN, 10)]))
            .unwrap();
        assert_eq!(actions[0], oidc);
        let after = route(actions);
        assert_eq!(after.percent_to(GREEN), 10);
        assert_eq!(after.percent_to(BLUE), 90);
        let forward = &after.actions[1];
        assert_eq!(forward.order(), Some(2));
        assert_eq!(forward.target_group_arn(), None);
        assert_eq!(
            forward
                .forward_config()
                .and_then(|c| c.target_group_stickiness_config())
                .and_then(|s| s.duration_seconds()),
            Some(300)
        );
    }

    #[test]
    fn a_route_without_a_forward_cannot_be_weighted() {
        let redirect = route(vec![Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .build()]);
        assert_eq!(redirect.forwards(), None);
        assert!(redirect
            .with_weights(&weighted(&[(BLUE, 100)]))
            .unwrap_err()
            .ends_with("has no forward action"));
    }

    #[test]
    fn route_kinds_come_from_the_arn() {
        assert_eq!(
            RouteKind::of("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c"),
            Some(RouteKind::Listener)
        );
        assert_eq!(
            RouteKind::of("arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/a/b/c/d"),
            Some(RouteKind::Rule)
        );
        assert_eq!(RouteKind::of(BLUE), None);
        assert_eq!(RouteKind::of("listener/app"), None);
    }
}
