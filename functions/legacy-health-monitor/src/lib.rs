//! legacy-health-monitor: every minute, HTTP(S) and TCP checks of servers that are not containers,
//! with a quick retry, hysteresis kept in DynamoDB (down after N failed runs, up after M good
//! ones), metrics in Embedded Metric Format, and alerts on change: the reason, address and body
//! start when a target goes down, the downtime when it recovers, one alert when many change.
//!
//! # Invariants
//!
//! Checked after every step of random event sequences (schedule ticks delivered on time, twice,
//! late with their old `time`, never, or two at once; targets going up, failing and hanging;
//! target documents removed and restored, an invalid one added and removed; chat `status`; any one
//! AWS call of a delivery failing) by `tests/tests/model_legacy_health_monitor.rs`, and after a
//! settling phase for liveness:
//!
//! 1. **One alert per state change.** A target's `down` and `recovered` alerts alternate, starting
//!    with `down`: never a recovery without a prior down, never the same change twice, except that
//!    a run that dies after sending an alert and before recording it sent (the state write that
//!    marks it fails) has it sent again by a later run. SNS has no conditional publish, so this
//!    is the strongest true statement: at least once always, twice only with a failed state write
//!    in between. A certificate's expiry is alerted once until it is renewed; a list of invalid
//!    entries once per change of the list.
//! 2. **Hysteresis counts minutes, not deliveries.** A run whose schedule time is not after the
//!    newest run recorded (`meta::Meta::last_run`, written before any check with a conditional
//!    put) is a duplicate or late delivery: it counts nothing, checks nothing, and says so
//!    (`"status": "ignored"`); a target's recorded `at` and `since` never go back.
//! 3. **Alerts are sent by the run that recorded them.** A change is recorded with its alert in
//!    one conditional write that also claims the alert until the run's deadline
//!    ([`decide::TargetState::claimed_until`]); another run leaves that target alone meanwhile, and
//!    takes the alert over once the claim has run out (the recorder died). Alerts are sent one by
//!    one; after a failure the run records exactly the ones that went out and gives up its claim
//!    on the rest, so the next run (or Lambda's retry) sends only those.
//! 4. **A crash at any call converges**: the next run sends what was recorded and not sent, and
//!    records what was not recorded, never counting a minute twice.
//! 5. **State keys never collide with target names**: a target is `target#<name>`, the
//!    bookkeeping `meta#config` (see [`observe`]).
//! 6. **A mute holds back, never loses**: while a target is muted (from chat, or by a
//!    maintenance window) none of its alerts is sent, its checks and metrics go on, and the first
//!    run that counts at or after the mute's end sends one `health.unmuted` alert with what was
//!    held back and the target's health as it stands, under invariant 1's rule (at least once,
//!    twice only with a failed state write between); a chat mute is written under the same
//!    condition as a run's, and refused while a run owns the target's unsent alerts.
//! 7. **A run ends inside its deadline** and says what it could not check: a check starts only if
//!    its whole timeout fits before the deadline less a margin; the rest are named in one alert
//!    (measured by `make bench`, section "a 2,000-target outage under a 60 s deadline").
//!    `status` and `check` from chat change no state and send no alert.

pub mod act;
pub mod config;
pub mod decide;
pub mod doctor;
pub mod handler;
pub mod meta;
pub mod metrics;
pub mod mute;
pub mod mute_commands;
pub mod observe;
pub mod probe;
pub mod report;
pub mod targets;
