//! Properties of the swapper's contract: any tag value is parsed or refused by name, never a
//! panic; the state it writes reads back as it was; any weights ELB can store are shown and
//! decided on exactly.

use std::collections::BTreeMap;

use blue_green_swapper::contract::{
    app_spec, recorded_swap, swap_id, Colour, Phase, Strategy, SwapPlan, SwapState,
};
use blue_green_swapper::traffic::{Share, Split};
use proptest::prelude::*;

fn phase() -> impl proptest::strategy::Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Deploying),
        Just(Phase::Testing),
        Just(Phase::Shifting),
        Just(Phase::Warm),
        Just(Phase::RollingBack),
        Just(Phase::Aborting),
        Just(Phase::Done),
        Just(Phase::RolledBack),
        Just(Phase::Aborted),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_tags_are_an_app_or_an_error_naming_a_tag(
        tags in prop::collection::btree_map(
            prop_oneof![Just("ops:swap-app"), Just("ops:swap-blue"), Just("ops:swap-green"), Just("ops:swap-strategy"),
                        Just("ops:swap-alarms"), Just("ops:swap-health-timeout"), Just("ops:swap-termination-wait"),
                        Just("ops:swap-test-wait"), Just("ops:swap-containers"), Just("ops:swap-plan"),
                        Just("ops:swap-state"), Just("ops:swap-image"), Just("ops:swap-role")],
            ".{0,60}", 0..13)
    ) {
        let tags: BTreeMap<String, String> = tags.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Some(Err(error)) = app_spec(&tags) {
            prop_assert!(error.to_string().starts_with("tag `ops:swap-"), "{}", error);
        }
        if let Some(Err(error)) = recorded_swap(&tags) {
            prop_assert!(error.contains("ops:swap-"), "{}", error);
        }
    }

    #[test]
    fn any_strategy_text_gives_rising_steps_ending_at_100_or_is_refused(
        text in "(all-at-once|canary|linear|x)( [0-9%]{1,4})?( [0-9a-z]{1,5})?"
    ) {
        if let Ok(strategy) = Strategy::parse(&text) {
            let steps = strategy.steps();
            prop_assert_eq!(*steps.last().unwrap(), 100);
            prop_assert!(steps.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn any_weights_show_no_false_0_or_100_percent_and_only_a_zero_weight_leaves_one_colour_live(
        blue in 0u64..=999,
        green in 0u64..=999,
        others in prop::collection::vec(0u64..=999, 0..4),
    ) {
        let split = Split { blue, green, total: blue + green + others.iter().sum::<u64>() };
        for colour in [Colour::Blue, Colour::Green] {
            let share: Share = split.share(colour);
            let text = share.percent_text();
            let shown: f64 = text.trim_end_matches('%').parse().unwrap();
            prop_assert_eq!(shown == 0.0, share.weight == 0, "{}", text);
            prop_assert_eq!(shown == 100.0, share.is_all(), "{}", text);
            let exact = share.weight as f64 * 100.0 / split.total.max(1) as f64;
            prop_assert!((shown - exact).abs() <= 0.05 + 1e-9, "{} for {}", text, exact);
        }
        let live = split.only();
        prop_assert_eq!(live.is_some(), split.total > 0 && (blue == split.total || green == split.total));
        if let Some(colour) = live {
            prop_assert_eq!(split.share(colour.other()).weight, 0);
            prop_assert!(split.is_at(colour, 100));
        }
        for percent in [0u32, 10, 25, 50, 100] {
            let exact = split.total > 0
                && blue * 100 == u64::from(100 - percent) * split.total
                && green * 100 == u64::from(percent) * split.total;
            prop_assert_eq!(split.is_at(Colour::Green, percent), exact);
        }
    }

    #[test]
    fn a_written_state_and_plan_read_back(
        now in 0u64..4_000_000_000,
        version in 1u32..1000,
        phase in phase(),
        step in 0usize..100,
        why in ".{0,400}",
        who in ".{0,200}",
        percent in 1u32..100,
    ) {
        let id = swap_id(now);
        let before = Some(Split::at_percent(Colour::Green, percent));
        let after = Some(Split { blue: 999, green: 1, total: 1000 });
        let why = blue_green_swapper::contract::fit_why(&why);
        let state = SwapState { id: id.clone(), version, reported: version - 1, phase, step, since: now, before, after, why };
        let tags = state.tags();
        // Every value within ELB's tag rules (ASCII from the allowed set, so any length count
        // agrees), and the whole state, reason word for word, read back.
        for value in tags.values() {
            prop_assert!(value.len() <= 256);
            prop_assert!(value.chars().all(|c| c.is_ascii_alphanumeric()
                || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')), "{}", value);
        }
        prop_assert_eq!(SwapState::decode_tags(&tags).unwrap(), state);
        let plan = SwapPlan {
            id,
            to: Colour::Green,
            task_definition: "shop:12".into(),
            was_task_definition: "shop:11".into(),
            was_desired: 0,
            requested_by: who,
            strategy: Strategy::Canary { percent, bake: 300 },
            started_at: now,
        };
        prop_assert!(plan.encode().chars().count() <= 256);
        let decoded = SwapPlan::decode(&plan.encode()).unwrap();
        prop_assert_eq!(decoded.strategy, plan.strategy);
        prop_assert_eq!(decoded.task_definition, plan.task_definition);
    }
}
