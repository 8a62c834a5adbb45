//! Properties of the swapper's contract: any tag value is parsed or refused by name, never a
//! panic; the state it writes reads back as it was.

use std::collections::BTreeMap;

use blue_green_swapper::contract::{
    app_spec, recorded_swap, swap_id, Colour, Phase, Strategy, SwapPlan, SwapState,
};
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
        let state = SwapState { id: id.clone(), version, reported: version - 1, phase, step, since: now, why };
        prop_assert!(state.encode().chars().count() <= 256);
        let back = SwapState::decode(&state.encode()).unwrap();
        prop_assert_eq!(
            (back.id, back.version, back.reported, back.phase, back.step, back.since),
            (id.clone(), version, version - 1, phase, step, now)
        );
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
