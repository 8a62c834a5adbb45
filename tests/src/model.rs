//! Model-based event-sequence tests (DESIGN.md, "Event order"): random sequences of one function's
//! events and commands, delivered as EventBridge and Lambda really deliver them (twice, late and out
//! of order, never, two at once) with the emulator failing random AWS calls, checked after every
//! step against the function's invariants; a failing sequence is shrunk to a minimal one.
//!
//! A function's model test supplies three things: a strategy for its [`Step`]s (what happens, and
//! how each event is delivered), a body that plays one sequence on a freshly reset emulator
//! ([`Emulator::reset`]) and returns the first invariant it finds broken, and a name. [`run`] does
//! the rest: it draws `OPS_MODEL_SEQUENCES` sequences (default [`DEFAULT_SEQUENCES`], `make soak`
//! sets 10,000) from `OPS_MODEL_SEED` (default fixed, so `make test` is repeatable; `make soak` draws
//! a new seed and prints it), shrinks a failure, and prints one line of figures.
//!
//! What each delivery means:
//! - [`Delivery::Once`]: on time, once.
//! - [`Delivery::Twice`]: once more straight after (EventBridge's at-least-once delivery).
//! - [`Delivery::Late`]: held back until `n` later steps have happened (late and out of order).
//! - [`Delivery::Lost`]: never delivered (ECS state changes and ECR actions are best effort).
//! - [`Delivery::WithNext`]: invoked at the same time as the next step's delivery.
//!
//! A [`Fault`] fails the delivery's `call`-th AWS call (the process dying there, as far as AWS can
//! tell: the failed call never takes effect). Lambda retries a failed asynchronous invocation twice
//! ([`ASYNC_ATTEMPTS`]); a sequence's body decides which of its steps are asynchronous events and
//! which are a person's commands (tried once: the person sees the error).

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::json;

use crate::Emulator;

/// Sequences per function when `OPS_MODEL_SEQUENCES` is not set (`make test`).
pub const DEFAULT_SEQUENCES: u32 = 12;
/// The seed when `OPS_MODEL_SEED` is not set, so `make test` draws the same sequences every run.
pub const DEFAULT_SEED: u64 = 0x0b5e_55ed;
/// How often Lambda runs an asynchronous event whose invocation failed: once and twice more.
pub const ASYNC_ATTEMPTS: usize = 3;

/// How one step's event reaches the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// On time, once.
    Once,
    /// Twice in a row.
    Twice,
    /// After this many later steps (at the end of the sequence if there are fewer).
    Late(u8),
    /// Never.
    Lost,
    /// At the same time as the next step.
    WithNext,
}

/// How an injected fault fails a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// An internal error (HTTP 500).
    Error500,
    /// The service's throttling error.
    Throttle,
    /// The connection is closed with no answer.
    Drop,
}

impl FaultKind {
    fn rule_kind(self) -> &'static str {
        match self {
            FaultKind::Error500 => "error500",
            FaultKind::Throttle => "throttle",
            FaultKind::Drop => "drop",
        }
    }
}

/// The `call`-th AWS call of a delivery fails once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Counted from 1, over every service.
    pub call: u8,
    /// How it fails.
    pub kind: FaultKind,
}

/// One step of a sequence: what happens, how it is delivered, and whether a call of it fails.
#[derive(Debug, Clone)]
pub struct Step<E> {
    /// The function's event or command, or a change in the world (time passes, ECS finishes).
    pub event: E,
    /// How it reaches the function (ignored for changes in the world, which simply happen).
    pub delivery: Delivery,
    /// A failed AWS call during its delivery.
    pub fault: Option<Fault>,
}

/// Deliveries: mostly on time, each fault of the event-order checklist often enough to matter.
pub fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        5 => Just(Delivery::Once),
        2 => Just(Delivery::Twice),
        2 => (1u8..=4).prop_map(Delivery::Late),
        1 => Just(Delivery::Lost),
        2 => Just(Delivery::WithNext),
    ]
}

/// A fault in about one delivery of four, at one of its first `calls` AWS calls.
pub fn fault(calls: u8) -> impl Strategy<Value = Option<Fault>> {
    let kind = prop_oneof![
        Just(FaultKind::Error500),
        Just(FaultKind::Throttle),
        Just(FaultKind::Drop)
    ];
    prop_oneof![
        3 => Just(None),
        1 => (1..=calls.max(1), kind).prop_map(|(call, kind)| Some(Fault { call, kind })),
    ]
}

/// Steps whose events come from `event`: `length` of them, each with a [`delivery`] and a [`fault`].
pub fn steps<E: Debug + Clone>(
    event: impl Strategy<Value = E>,
    length: std::ops::Range<usize>,
    calls: u8,
) -> impl Strategy<Value = Vec<Step<E>>> {
    prop::collection::vec(
        (event, delivery(), fault(calls)).prop_map(|(event, delivery, fault)| Step {
            event,
            delivery,
            fault,
        }),
        length,
    )
}

/// One moment of a played sequence: the steps whose events are delivered together (one, or two
/// at once), by their index in the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// Indexes into the sequence; more than one means invoked concurrently.
    pub steps: Vec<usize>,
}

/// The order in which a sequence's deliveries happen. A step is in as many rounds as it is
/// delivered: none when lost, two when duplicated, later when late (after `n` more steps, counting
/// only steps that are not themselves held back), together with the next when concurrent.
pub fn schedule<E>(steps: &[Step<E>]) -> Vec<Round> {
    let mut rounds: Vec<Round> = Vec::new();
    // (index, steps still to wait)
    let mut held: Vec<(usize, u8)> = Vec::new();
    let mut joining: Option<usize> = None;
    for (index, step) in steps.iter().enumerate() {
        let mut now = Vec::new();
        if let Some(previous) = joining.take() {
            now.push(previous);
        }
        match step.delivery {
            Delivery::Lost => {}
            Delivery::Late(n) => held.push((index, n)),
            Delivery::WithNext => {
                if now.is_empty() {
                    joining = Some(index);
                } else {
                    now.push(index);
                }
            }
            Delivery::Once | Delivery::Twice => now.push(index),
        }
        if !now.is_empty() {
            let twice: Vec<usize> = now
                .iter()
                .copied()
                .filter(|&i| steps[i].delivery == Delivery::Twice)
                .collect();
            rounds.push(Round { steps: now });
            for i in twice {
                rounds.push(Round { steps: vec![i] });
            }
            for (late, wait) in held.iter_mut() {
                if *late != index {
                    *wait = wait.saturating_sub(1);
                }
            }
        }
        let (due, waiting): (Vec<_>, Vec<_>) = held.into_iter().partition(|&(_, wait)| wait == 0);
        held = waiting;
        rounds.extend(due.into_iter().map(|(i, _)| Round { steps: vec![i] }));
    }
    if let Some(previous) = joining {
        rounds.push(Round {
            steps: vec![previous],
        });
    }
    rounds.extend(held.into_iter().map(|(i, _)| Round { steps: vec![i] }));
    rounds
}

/// Arm `fault` for the next delivery (its `call`-th AWS call from now fails once); [`disarm`]
/// after. Returns whether a rule was installed.
pub fn arm(emulator: &Emulator, fault: Option<Fault>) -> bool {
    match fault {
        Some(fault) => {
            emulator.add_fault(json!({
                "service": "*", "kind": fault.kind.rule_kind(),
                "on_calls": [fault.call], "times": 1
            }));
            true
        }
        None => false,
    }
}

/// Remove an armed fault, fired or not, so it cannot fall on a later delivery. Returns how many
/// faults fired (0 or 1).
pub fn disarm(emulator: &Emulator, armed: bool) -> u64 {
    if !armed {
        return 0;
    }
    let fired = emulator.faults_fired();
    emulator
        .control("DELETE", "/_ops/faults", None)
        .expect("remove the fault rules");
    fired
}

/// What one played sequence did, for the figures.
#[derive(Debug, Default, Clone, Copy)]
pub struct Played {
    /// Deliveries made (a duplicate counts twice, a lost event not at all).
    pub deliveries: u64,
    /// Faults that fired.
    pub faults: u64,
}

/// Totals over a run.
#[derive(Default)]
struct Tally {
    sequences: AtomicU64,
    steps: AtomicU64,
    deliveries: AtomicU64,
    faults: AtomicU64,
}

/// The runtime a model test plays its sequences on: two worker threads, so that two deliveries
/// of one round ([`Delivery::WithNext`]) really run at once.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the model test")
}

/// How many sequences to draw: `OPS_MODEL_SEQUENCES`, else [`DEFAULT_SEQUENCES`].
pub fn sequences() -> u32 {
    match std::env::var("OPS_MODEL_SEQUENCES") {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| {
            panic!("OPS_MODEL_SEQUENCES must be a whole number of sequences, not `{value}`")
        }),
        Err(_) => DEFAULT_SEQUENCES,
    }
}

/// The seed: `OPS_MODEL_SEED` (a number, or `random`), else [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    match std::env::var("OPS_MODEL_SEED") {
        Ok(value) if value.trim() == "random" => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(DEFAULT_SEED);
            nanos ^ u64::from(std::process::id())
        }
        Ok(value) => value.trim().parse().unwrap_or_else(|_| {
            panic!("OPS_MODEL_SEED must be a number or `random`, not `{value}`")
        }),
        Err(_) => DEFAULT_SEED,
    }
}

/// Play [`sequences`] sequences drawn from `strategy` through `play`, each on a freshly reset
/// `emulator`. `play` returns what it did, or the invariant it found broken (with the step); a
/// broken invariant is shrunk to a minimal sequence and the test fails showing it. Prints:
/// `model: <function>: N sequences, S steps, D deliveries, F faults fired, 0 violations, seed X, T s`.
pub fn run<E, S, P>(function: &str, emulator: &Emulator, strategy: S, play: P)
where
    E: Debug + Clone,
    S: Strategy<Value = Vec<Step<E>>>,
    P: Fn(&Emulator, &[Step<E>]) -> Result<Played, String>,
{
    let cases = sequences();
    let seed = seed();
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    });
    let tally = Tally::default();
    let started = Instant::now();
    let outcome = runner.run(&strategy, |sequence| {
        emulator.reset();
        let played = play(emulator, &sequence).map_err(TestCaseError::fail)?;
        tally.sequences.fetch_add(1, Ordering::Relaxed);
        tally
            .steps
            .fetch_add(sequence.len() as u64, Ordering::Relaxed);
        tally
            .deliveries
            .fetch_add(played.deliveries, Ordering::Relaxed);
        tally.faults.fetch_add(played.faults, Ordering::Relaxed);
        Ok(())
    });
    let elapsed = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => println!(
            "model: {function}: {} sequences, {} steps, {} deliveries, {} faults fired, 0 violations, seed {seed}, {elapsed:.1} s",
            tally.sequences.load(Ordering::Relaxed),
            tally.steps.load(Ordering::Relaxed),
            tally.deliveries.load(Ordering::Relaxed),
            tally.faults.load(Ordering::Relaxed),
        ),
        Err(TestError::Fail(reason, minimal)) => panic!(
            "model: {function}: an invariant broke (seed {seed}); minimal sequence ({} steps):\n{minimal:#?}\nbroken: {reason}",
            minimal.len()
        ),
        Err(TestError::Abort(reason)) => {
            panic!("model: {function}: the run was aborted (seed {seed}): {reason}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(delivery: Delivery) -> Step<()> {
        Step {
            event: (),
            delivery,
            fault: None,
        }
    }

    fn order(deliveries: &[Delivery]) -> Vec<Vec<usize>> {
        let steps: Vec<_> = deliveries.iter().copied().map(step).collect();
        schedule(&steps).into_iter().map(|r| r.steps).collect()
    }

    #[test]
    fn on_time_steps_are_delivered_once_each_in_order() {
        assert_eq!(
            order(&[Delivery::Once, Delivery::Once, Delivery::Once]),
            vec![vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn a_duplicate_is_delivered_again_straight_after_and_a_lost_step_never() {
        assert_eq!(
            order(&[Delivery::Twice, Delivery::Lost, Delivery::Once]),
            vec![vec![0], vec![0], vec![2]]
        );
    }

    #[test]
    fn a_late_step_comes_after_n_later_steps_or_at_the_end() {
        assert_eq!(
            order(&[
                Delivery::Late(2),
                Delivery::Once,
                Delivery::Once,
                Delivery::Once
            ]),
            vec![vec![1], vec![2], vec![0], vec![3]]
        );
        assert_eq!(
            order(&[Delivery::Late(4), Delivery::Once]),
            vec![vec![1], vec![0]]
        );
    }

    #[test]
    fn a_concurrent_step_is_delivered_with_the_next_or_alone_at_the_end() {
        assert_eq!(
            order(&[Delivery::WithNext, Delivery::Once, Delivery::WithNext]),
            vec![vec![0, 1], vec![2]]
        );
        assert_eq!(
            order(&[Delivery::WithNext, Delivery::Twice]),
            vec![vec![0, 1], vec![1]]
        );
    }
}
