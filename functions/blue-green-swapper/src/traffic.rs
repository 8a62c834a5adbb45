//! Traffic on a route, exactly as its weights give it.
//!
//! An ALB forward action gives each target group an integer weight from 0 to 999, and a group's
//! share of the route's traffic is its weight over the sum of the weights. Any weight above 0 is
//! live traffic however small its share: at 999/1 one request in a thousand reaches the second
//! group. So the swapper decides on weights, never on rounded percentages, and every share it shows
//! is exact or, when it cannot be, never rounded to 0% while there is traffic nor to 100% while
//! some goes elsewhere (`99.9%`, `0.1%`, `0.02%`).

use std::fmt;

use ops_core::aws::elbv2::Route;
use serde::Serialize;

use crate::contract::Colour;

/// A target group's part of a route's traffic: its weight out of the sum of every weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    /// The group's weight (negative weights, which ELB never stores, count as 0).
    pub weight: u64,
    /// The sum of the weights of every group the route forwards to.
    pub total: u64,
}

impl Share {
    /// Whether the group gets no traffic at all.
    pub fn is_none(&self) -> bool {
        self.weight == 0
    }

    /// Whether the group gets all the traffic.
    pub fn is_all(&self) -> bool {
        self.total > 0 && self.weight == self.total
    }

    /// Whether the share is exactly `percent` percent (compared on weights, not rounded).
    pub fn is_percent(&self, percent: u32) -> bool {
        self.total > 0 && u128::from(self.weight) * 100 == u128::from(percent) * self.total_wide()
    }

    /// The share as a percentage, as text: exact when it is whole (`10%`), else with as many
    /// decimals as it takes (at least one) not to show a share that is not 0 as `0%` or one that
    /// is not all as `100%` (`99.9%`, `0.1%`, `0.02%`).
    pub fn percent_text(&self) -> String {
        let (weight, total) = (u128::from(self.weight), self.total_wide());
        if total == 0 || weight == 0 {
            return "0%".into();
        }
        if (weight * 100) % total == 0 {
            return format!("{}%", weight * 100 / total);
        }
        let mut shown = String::new();
        for decimals in 1..=12u32 {
            let scale = 10u128.pow(decimals);
            // Rounded half up, in units of 10^-decimals percent.
            let scaled = (weight * 100 * scale * 2 + total) / (total * 2);
            shown = format!(
                "{}.{:0width$}%",
                scaled / scale,
                scaled % scale,
                width = decimals as usize
            );
            if scaled != 0 && scaled != 100 * scale {
                break;
            }
        }
        shown
    }

    /// The share as a JSON number of percent, as [`Share::percent_text`] shows it (`100`,
    /// `99.9`, `0.1`).
    pub fn percent_number(&self) -> serde_json::Value {
        let text = self.percent_text();
        let digits = text.trim_end_matches('%');
        match digits.parse::<u64>() {
            Ok(whole) => whole.into(),
            Err(_) => digits.parse::<f64>().map(Into::into).unwrap_or_default(),
        }
    }

    /// `weight 1 of 1000 (0.1% of traffic)`.
    pub fn describe(&self) -> String {
        format!(
            "weight {} of {} ({} of traffic)",
            self.weight,
            self.total,
            self.percent_text()
        )
    }

    fn total_wide(&self) -> u128 {
        u128::from(self.total)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.percent_text())
    }
}

/// How a route splits its traffic between an app's colours (and any other target group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Split {
    /// Blue's weight.
    pub blue: u64,
    /// Green's weight.
    pub green: u64,
    /// The sum of every weight on the route, other target groups' included.
    pub total: u64,
}

impl Split {
    /// The split of `route` between the target groups `blue` and `green`; a route without a
    /// forward action sends nothing to either.
    pub fn of_route(route: &Route, blue: &str, green: &str) -> Split {
        let weighted = route.forwards().unwrap_or_default();
        let weight = |group: &str| -> u64 {
            weighted
                .iter()
                .filter(|w| w.target_group_arn == group)
                .map(|w| u64::try_from(w.weight).unwrap_or(0))
                .sum()
        };
        Split {
            blue: weight(blue),
            green: weight(green),
            total: weighted
                .iter()
                .map(|w| u64::try_from(w.weight).unwrap_or(0))
                .sum(),
        }
    }

    /// What the swapper writes for `percent` percent on `colour`: weights `percent` and
    /// `100 - percent`, nothing elsewhere.
    pub fn at_percent(colour: Colour, percent: u32) -> Split {
        let on = u64::from(percent.min(100));
        let (blue, green) = match colour {
            Colour::Blue => (on, 100 - on),
            Colour::Green => (100 - on, on),
        };
        Split {
            blue,
            green,
            total: 100,
        }
    }

    /// A colour's share.
    pub fn share(&self, colour: Colour) -> Share {
        Share {
            weight: match colour {
                Colour::Blue => self.blue,
                Colour::Green => self.green,
            },
            total: self.total,
        }
    }

    /// The colour that gets all the traffic, if one does: the other has weight 0 and so does
    /// every other target group.
    pub fn only(&self) -> Option<Colour> {
        [Colour::Blue, Colour::Green]
            .into_iter()
            .find(|c| self.share(*c).is_all())
    }

    /// Whether the route sends exactly `percent` percent to `colour` and the rest to the other
    /// colour (the same shares as [`Split::at_percent`], whatever the scale of the weights).
    pub fn is_at(&self, colour: Colour, percent: u32) -> bool {
        let percent = percent.min(100);
        self.share(colour).is_percent(percent)
            && self.share(colour.other()).is_percent(100 - percent)
    }

    /// `blue 99.9% / green 0.1%`, `first` colour first.
    pub fn text(&self, first: Colour) -> String {
        let second = first.other();
        format!(
            "{first} {} / {second} {}",
            self.share(first),
            self.share(second)
        )
    }

    /// `blue=999 green=1`, `first` colour first.
    pub fn weights_text(&self, first: Colour) -> String {
        let second = first.other();
        format!(
            "{first}={} {second}={}",
            self.share(first).weight,
            self.share(second).weight
        )
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    use ops_core::aws::elbv2::RouteKind;

    use super::*;

    const BLUE: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-blue/1";
    const GREEN: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-green/1";
    const OTHER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/other/1";

    fn share(weight: u64, total: u64) -> Share {
        Share { weight, total }
    }

    fn route(weights: &[(&str, i32)]) -> Route {
        let mut config = ForwardActionConfig::builder();
        for (group, weight) in weights {
            config = config.target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(*group)
                    .weight(*weight)
                    .build(),
            );
        }
        Route {
            arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/1/2".into(),
            kind: RouteKind::Listener,
            actions: vec![Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(config.build())
                .build()],
            tags: Default::default(),
        }
    }

    #[test]
    fn a_whole_percentage_is_shown_as_it_is() {
        assert_eq!(share(10, 100).percent_text(), "10%");
        assert_eq!(share(100, 100).percent_text(), "100%");
        assert_eq!(share(0, 100).percent_text(), "0%");
        assert_eq!(share(1, 1).percent_text(), "100%");
        assert_eq!(share(500, 1000).percent_text(), "50%");
        assert_eq!(share(0, 0).percent_text(), "0%");
    }

    #[test]
    fn a_small_weight_is_never_shown_as_0_or_its_complement_as_100() {
        assert_eq!(share(1, 1000).percent_text(), "0.1%");
        assert_eq!(share(999, 1000).percent_text(), "99.9%");
        assert_eq!(share(1, 200).percent_text(), "0.5%");
        assert_eq!(share(199, 200).percent_text(), "99.5%");
        // The smallest share two colours can have: 1 of 1 + 999.
        assert_eq!(share(1, 1000).to_string(), "0.1%");
        // With other target groups the total reaches 5 x 999: more decimals are needed.
        assert_eq!(share(1, 4995).percent_text(), "0.02%");
        assert_eq!(share(4994, 4995).percent_text(), "99.98%");
        assert_eq!(share(1, 2000).percent_text(), "0.1%");
        assert_eq!(share(1, 3).percent_text(), "33.3%");
        assert_eq!(share(2, 3).percent_text(), "66.7%");
        for total in 1..=5000u64 {
            for weight in [1, total - 1] {
                if weight == 0 || weight == total {
                    continue;
                }
                let text = share(weight, total).percent_text();
                let value: f64 = text.trim_end_matches('%').parse().unwrap();
                assert!(value > 0.0 && value < 100.0, "{weight}/{total}: {text}");
            }
        }
    }

    #[test]
    fn a_share_as_a_number_keeps_whole_percentages_whole() {
        assert_eq!(share(100, 100).percent_number(), serde_json::json!(100));
        assert_eq!(share(999, 1000).percent_number(), serde_json::json!(99.9));
        assert_eq!(share(1, 1000).percent_number(), serde_json::json!(0.1));
        assert_eq!(
            share(1, 1000).describe(),
            "weight 1 of 1000 (0.1% of traffic)"
        );
    }

    #[test]
    fn any_weight_on_the_other_colour_means_no_colour_has_all_the_traffic() {
        let all_blue = Split::of_route(&route(&[(BLUE, 1), (GREEN, 0)]), BLUE, GREEN);
        assert_eq!(all_blue.only(), Some(Colour::Blue));
        for (blue, green) in [(999, 1), (199, 1), (1, 1), (0, 0)] {
            let split = Split::of_route(&route(&[(BLUE, blue), (GREEN, green)]), BLUE, GREEN);
            assert_eq!(split.only(), None, "{blue}/{green}");
        }
        let split = Split::of_route(&route(&[(BLUE, 999), (GREEN, 1)]), BLUE, GREEN);
        assert_eq!(split.text(Colour::Blue), "blue 99.9% / green 0.1%");
        assert_eq!(split.weights_text(Colour::Green), "green=1 blue=999");
        assert_eq!(
            split.share(Colour::Green).describe(),
            "weight 1 of 1000 (0.1% of traffic)"
        );
        let split = Split::of_route(&route(&[(BLUE, 199), (GREEN, 1)]), BLUE, GREEN);
        assert_eq!(split.text(Colour::Blue), "blue 99.5% / green 0.5%");
        let elsewhere = Split::of_route(&route(&[(BLUE, 999), (OTHER, 1)]), BLUE, GREEN);
        assert_eq!(
            elsewhere.only(),
            None,
            "another group's weight is traffic too"
        );
        assert_eq!(elsewhere.text(Colour::Blue), "blue 99.9% / green 0%");
    }

    #[test]
    fn a_strategy_step_is_reached_only_by_exactly_its_weights() {
        let ten = Split::at_percent(Colour::Green, 10);
        assert_eq!((ten.blue, ten.green, ten.total), (90, 10, 100));
        assert!(ten.is_at(Colour::Green, 10) && ten.is_at(Colour::Blue, 90));
        // The same shares at another scale are the same step.
        let scaled = Split::of_route(&route(&[(BLUE, 900), (GREEN, 100)]), BLUE, GREEN);
        assert!(scaled.is_at(Colour::Green, 10));
        // Rounding would call these 0% and 100%; the weights do not.
        let dark = Split::of_route(&route(&[(BLUE, 999), (GREEN, 1)]), BLUE, GREEN);
        assert!(!dark.is_at(Colour::Green, 0) && !dark.is_at(Colour::Blue, 100));
        let near = Split::of_route(&route(&[(BLUE, 901), (GREEN, 99)]), BLUE, GREEN);
        assert!(!near.is_at(Colour::Green, 10));
        let zero = Split::of_route(&route(&[(BLUE, 0), (GREEN, 0)]), BLUE, GREEN);
        assert!(!zero.is_at(Colour::Green, 0));
        let elsewhere =
            Split::of_route(&route(&[(BLUE, 90), (GREEN, 10), (OTHER, 1)]), BLUE, GREEN);
        assert!(!elsewhere.is_at(Colour::Green, 10));
        assert!(Split::at_percent(Colour::Blue, 100).is_at(Colour::Blue, 100));
        assert_eq!(
            Split::at_percent(Colour::Blue, 100).only(),
            Some(Colour::Blue)
        );
    }
}
