//! Report: what ops read. One alert per change when a few targets change in a run; one collated
//! alert when many do, so a network blip that takes down forty servers is one message, not forty.

use ops_core::alert::{Alert, Severity};
use ops_core::time::{duration_text, utc_text};

use crate::decide::{Health, Notice, Seen};
use crate::mute::{health_now, Mute};

/// Longest list of changes written into one collated alert; the rest are counted.
const COLLATED_LINES: usize = 25;

/// A notice about one target, with what people need to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The target's name.
    pub target: String,
    /// What is checked (URL or `tcp host:port`; never headers).
    pub check: String,
    /// Where it is configured.
    pub source: String,
    /// The notice.
    pub notice: Notice,
}

/// The alerts for this run's changes: one each up to `collate_above`, otherwise one for all.
pub fn alerts(function: &str, changes: &[Change], collate_above: usize) -> Vec<Alert> {
    alerts_covering(function, changes, collate_above)
        .into_iter()
        .map(|(alert, _)| alert)
        .collect()
}

/// [`alerts`], each with the indexes of the changes it tells, so a run that could send only some
/// of them records exactly those as sent.
pub fn alerts_covering(
    function: &str,
    changes: &[Change],
    collate_above: usize,
) -> Vec<(Alert, Vec<usize>)> {
    if changes.len() <= collate_above {
        changes
            .iter()
            .enumerate()
            .map(|(i, c)| (single(function, c), vec![i]))
            .collect()
    } else {
        vec![(collated(function, changes), (0..changes.len()).collect())]
    }
}

fn single(function: &str, change: &Change) -> Alert {
    let target = &change.target;
    let base = |severity, event: &str, title: String| {
        Alert::new(severity, function, event, target.as_str(), title)
            .context("check", change.check.clone())
            .context("configured_in", change.source.clone())
            .thread(format!("{function}:{target}"))
    };
    match &change.notice {
        Notice::Down {
            seen,
            failures,
            flapping_since,
        } => with_seen(
            base(
                Severity::Critical,
                "health.down",
                format!("{target} is DOWN ({})", seen.failure.kind.label()),
            )
            .what(format!(
                "{target} failed {failures} checks in a row ({}), each retried once at once; it is now down.{}",
                change.check,
                flapping_since
                    .map(|since| format!(
                        " It had been flapping since {}; this alert takes over from that.",
                        utc_text(since)
                    ))
                    .unwrap_or_default()
            ))
            .why(failure_line(seen))
            .change("up (or not yet known)", "down")
            .next_step("Look at the server: the reason, address and body start are below.")
            .next_step("The monitor alerts again when it has passed its checks again."),
            seen,
        ),
        Notice::StillDown { seen, since } => with_seen(
            base(
                Severity::Warning,
                "health.still-down",
                format!("{target} is still DOWN ({})", seen.failure.kind.label()),
            )
            .what(format!(
                "{target} has been down since {} ({}).",
                utc_text(*since),
                change.check
            ))
            .why(failure_line(seen)),
            seen,
        ),
        Notice::Recovered {
            since,
            downtime,
            successes,
        } => base(
            Severity::Info,
            "health.recovered",
            format!("{target} recovered after {}", duration_text(*downtime)),
        )
        .what(format!(
            "{target} passed {successes} checks in a row ({}) and is up again.",
            change.check
        ))
        .why(format!(
            "It was down for {}, since {}.",
            duration_text(*downtime),
            utc_text(*since)
        ))
        .change("down", "up")
        .context("downtime_seconds", downtime.to_string()),
        Notice::CertExpiring { days } => base(
            Severity::Warning,
            "health.cert-expiring",
            if *days < 0 {
                format!("{target}: TLS certificate expired {} days ago", -days)
            } else {
                format!("{target}: TLS certificate expires in {days} days")
            },
        )
        .what(format!(
            "The certificate {target} serves ({}) expires in {days} days.",
            change.check
        ))
        .why("Its days left fell under the target's `cert_warn_days`.")
        .next_step("Renew the certificate; this alert is not repeated until it is renewed.")
        .context("cert_days_left", days.to_string()),
        Notice::Flapping {
            seen,
            failed,
            window,
        } => with_seen(
            base(
                Severity::Warning,
                "health.flapping",
                format!("{target} is FLAPPING: {failed} of its last {window} checks failed"),
            )
            .what(format!(
                "{target} failed {failed} of its last {window} checks ({}) without failing enough in a row to be down; it alerts again when it settles.",
                change.check
            ))
            .why(format!("The latest failure: {}", failure_line(seen)))
            .next_step("Look at the server before it goes down: the latest reason, address and body start are below.")
            .next_step("Tune with `flap_window` and `flap_share` in its targets document (`flap_share: 0` turns this off).")
            .context("failed_in_window", failed.to_string())
            .context("window", window.to_string()),
            seen,
        ),
        Notice::Unmuted {
            mute,
            health,
            health_since,
            flapping_since,
            checked_at,
        } => unmuted(
            base,
            change,
            mute,
            health_now(*health, *health_since, *flapping_since),
            *health,
            flapping_since.is_some(),
            *checked_at,
        ),
        Notice::Settled {
            since,
            turned_off: false,
            failed,
            window,
        } => base(
            Severity::Info,
            "health.settled",
            format!("{target} stopped flapping"),
        )
        .what(format!(
            "{target} failed {failed} of its last {window} checks ({}); it had been flapping since {}.",
            change.check,
            utc_text(*since)
        ))
        .why("Its failures in the window fell to half of what makes it flapping, or fewer.")
        .context("failed_in_window", failed.to_string())
        .context("window", window.to_string()),
        Notice::Settled {
            since,
            turned_off: true,
            failed,
            window,
        } => base(
            Severity::Info,
            "health.settled",
            format!("{target}: no longer watched for flapping"),
        )
        .what(format!(
            "{target} had been flapping since {} and failed {failed} of its last {window} checks ({}); its targets document now turns flapping alerts off for it, so no alert will say when it settles.",
            utc_text(*since),
            change.check
        ))
        .why("Its `flap_share` is now 0 (or its flapping settings can no longer fire).")
        .next_step("Down and recovery alerts go on as before.")
        .context("failed_in_window", failed.to_string())
        .context("window", window.to_string()),
    }
}

/// How serious a mute's end is: critical when the target is down (no down alert went out),
/// a warning when it flaps or a certificate warning was held back, otherwise for information;
/// `None` for any other notice.
fn unmuted_severity(notice: &Notice) -> Option<Severity> {
    let Notice::Unmuted {
        mute,
        health,
        flapping_since,
        ..
    } = notice
    else {
        return None;
    };
    Some(match health {
        Health::Down => Severity::Critical,
        _ if flapping_since.is_some() || mute.holds_cert_warning() => Severity::Warning,
        _ => Severity::Info,
    })
}

/// `3 held back: 2 down, 1 recovered` (the kinds of those kept), or `nothing held back`.
fn held_summary(mute: &Mute) -> String {
    if mute.held_count == 0 {
        return "nothing held back".into();
    }
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for held in &mute.held {
        let kind = match &held.notice {
            Notice::Down { .. } => "down".to_string(),
            Notice::StillDown { .. } => "still down".to_string(),
            Notice::Recovered { .. } => "recovered".to_string(),
            Notice::CertExpiring { days } => format!("certificate expiring in {days} days"),
            Notice::Flapping { .. } => "flapping".to_string(),
            Notice::Settled { .. } => "stopped flapping".to_string(),
            Notice::Unmuted { .. } => "an earlier mute ended".to_string(),
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let listed: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let more = mute.held_count as usize - mute.held.len();
    format!(
        "{} held back: {}{}",
        mute.held_count,
        listed.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// The alert that a mute ended: who muted the target and why, what was held back, how it is now.
fn unmuted(
    base: impl Fn(Severity, &str, String) -> Alert,
    change: &Change,
    mute: &Mute,
    now: String,
    health: Health,
    flapping: bool,
    checked_at: Option<u64>,
) -> Alert {
    let target = &change.target;
    let severity = unmuted_severity(&change.notice).unwrap_or(Severity::Info);
    let state = match health {
        Health::Down => "it is DOWN",
        _ if flapping => "it is FLAPPING",
        Health::Up => "it is up",
        Health::Unknown => "its health is not yet known",
    };
    let ended = match (&mute.lifted_by, mute.window_gone) {
        (Some(who), _) => format!("{who} lifted it at {}", utc_text(mute.until)),
        (None, true) => format!(
            "its window was removed from the targets document or shortened, so it ended at {}",
            utc_text(mute.until)
        ),
        (None, false) => format!("it ran until {} as set", utc_text(mute.until)),
    };
    let earlier = if mute.earlier.is_empty() {
        String::new()
    } else {
        format!(" It took over from: {}.", mute.earlier.join("; "))
    };
    let mut held: Vec<String> = mute
        .held
        .iter()
        .map(|h| {
            format!(
                "{}: {}",
                utc_text(h.at),
                line(target, &change.check, &h.notice)
            )
        })
        .collect();
    if mute.held_count as usize > held.len() {
        held.push(format!(
            "... and {} more",
            mute.held_count as usize - held.len()
        ));
    }
    let held = if held.is_empty() {
        "No alert was held back.".to_string()
    } else {
        format!(
            "{} held back:\n{}",
            match mute.held_count {
                1 => "1 alert was".to_string(),
                n => format!("{n} alerts were"),
            },
            held.join("\n")
        )
    };
    let mut alert = base(
        severity,
        "health.unmuted",
        format!("{target}: mute ended, and {state}"),
    )
    .what(format!(
        "{target} ({}) was muted by {} since {}: \"{}\"; {ended}.{earlier} Its checks and metrics went on while muted. {held}",
        change.check,
        mute.by,
        utc_text(mute.since),
        mute.reason
    ))
    .why(match checked_at {
        Some(at) => format!(
            "{target} is {now}, as last recorded at {}; anything this run's check changes is alerted as usual.",
            utc_text(at)
        ),
        None => format!("{target} is {now}."),
    })
    .change("muted", "alerting")
    .context("muted_by", mute.by.clone())
    .context("mute_reason", mute.reason.clone())
    .context("muted_since", utc_text(mute.since))
    .context("muted_until", utc_text(mute.until))
    .context("held_back", mute.held_count.to_string())
    .context("held_back_kinds", held_summary(mute));
    if let Some(who) = &mute.lifted_by {
        alert = alert.context("lifted_by", who.clone());
    }
    // Whoever ended it early, or else whoever set it (a window is nobody).
    match (&mute.lifted_by, mute.window) {
        (Some(who), _) => alert = alert.requested_by(who.clone()),
        (None, false) => alert = alert.requested_by(mute.by.clone()),
        (None, true) => {}
    }
    match health {
        Health::Down => alert
            .next_step(
                "Look at the server: it is down now (when it went down is among what was held back, or before the mute).",
            )
            .next_step("The monitor alerts when it has passed its checks again."),
        _ => alert.next_step(format!("Alerts for {target} are sent as usual again.")),
    }
}

fn with_seen(alert: Alert, seen: &Seen) -> Alert {
    let mut alert = alert
        .context("failure", seen.failure.kind.label())
        .context("latency_ms", seen.latency_ms.to_string())
        .context("attempts", seen.attempts.to_string());
    if let Some(address) = &seen.address {
        alert = alert.context("address", address.clone());
    }
    if let Some(status) = seen.status {
        alert = alert.context("http_status", status.to_string());
    }
    if let Some(snippet) = &seen.failure.snippet {
        alert = alert.context("body_start", snippet.clone());
    }
    alert
}

/// `refused: connection refused by 10.0.0.5:443 (after 3 ms)`, plus the body start when there is one.
fn failure_line(seen: &Seen) -> String {
    let mut line = format!(
        "{}: {} (after {} ms)",
        seen.failure.kind.label(),
        seen.failure.detail,
        seen.latency_ms
    );
    if let Some(snippet) = seen.failure.snippet.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!("; body starts: \"{snippet}\""));
    }
    line
}

/// One line for a notice, as a collated alert (and a mute's end) lists it.
fn line(target: &str, check: &str, notice: &Notice) -> String {
    match notice {
        Notice::Down { seen, .. } => format!("DOWN {target} ({check}): {}", failure_line(seen)),
        Notice::StillDown { seen, since } => format!(
            "STILL DOWN {target} since {}: {}",
            utc_text(*since),
            failure_line(seen)
        ),
        Notice::Recovered { downtime, .. } => {
            format!("RECOVERED {target} after {}", duration_text(*downtime))
        }
        Notice::CertExpiring { days } => format!("CERTIFICATE {target} expires in {days} days"),
        Notice::Flapping {
            seen,
            failed,
            window,
        } => format!(
            "FLAPPING {target} ({failed} of {window} checks failed): {}",
            failure_line(seen)
        ),
        Notice::Settled { failed, window, .. } => {
            format!("SETTLED {target} ({failed} of {window} checks failed)")
        }
        Notice::Unmuted {
            mute,
            health,
            health_since,
            flapping_since,
            ..
        } => format!(
            "MUTE ENDED {target} (muted by {}: {}; {}): {}",
            mute.by,
            mute.reason,
            held_summary(mute),
            health_now(*health, *health_since, *flapping_since)
        ),
    }
}

fn collated(function: &str, changes: &[Change]) -> Alert {
    let count = |pred: fn(&Notice) -> bool| changes.iter().filter(|c| pred(&c.notice)).count();
    let down = count(|n| matches!(n, Notice::Down { .. }));
    let still = count(|n| matches!(n, Notice::StillDown { .. }));
    let recovered = count(|n| matches!(n, Notice::Recovered { .. }));
    let certs = count(|n| matches!(n, Notice::CertExpiring { .. }));
    let flapping = count(|n| matches!(n, Notice::Flapping { .. }));
    let settled = count(|n| matches!(n, Notice::Settled { .. }));
    let unmuted = count(|n| matches!(n, Notice::Unmuted { .. }));
    let unmuted_down = count(|n| unmuted_severity(n) == Some(Severity::Critical));
    let unmuted_warning = count(|n| unmuted_severity(n) == Some(Severity::Warning));
    let severity = if down + still + unmuted_down > 0 {
        Severity::Critical
    } else if certs + flapping + unmuted_warning > 0 {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut parts = Vec::new();
    for (n, label) in [
        (down, "down"),
        (still, "still down"),
        (recovered, "recovered"),
        (certs, "certificates expiring"),
        (flapping, "flapping"),
        (settled, "stopped flapping"),
        (unmuted, "unmuted"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    let mut ordered: Vec<&Change> = changes.iter().collect();
    ordered.sort_by_key(|c| (!c.notice.is_down(), c.target.clone()));
    let mut lines: Vec<String> = ordered
        .iter()
        .take(COLLATED_LINES)
        .map(|c| line(&c.target, &c.check, &c.notice))
        .collect();
    if changes.len() > COLLATED_LINES {
        lines.push(format!(
            "... and {} more: the function's log lists every one.",
            changes.len() - COLLATED_LINES
        ));
    }
    Alert::new(
        severity,
        function,
        "health.collated",
        "legacy servers",
        format!("{} legacy targets changed: {}", changes.len(), parts.join(", ")),
    )
    .what(lines.join("\n"))
    .why(format!(
        "{} targets changed in the same run: one alert instead of {}. Many at once often means a shared cause (network, DNS, a load balancer).",
        changes.len(),
        changes.len()
    ))
    .next_step(if down + still + unmuted_down > 0 {
        "Look for what the down targets share before looking at each."
    } else {
        "Look for what these targets share (a network path, a resolver, a load balancer) before looking at each."
    })
    .context("down", down.to_string())
    .context("still_down", still.to_string())
    .context("recovered", recovered.to_string())
    .context("certificates_expiring", certs.to_string())
    .context("flapping", flapping.to_string())
    .context("stopped_flapping", settled.to_string())
    .context("unmuted", unmuted.to_string())
}

/// The alert when the configured targets have problems: which entries, and why.
pub fn config_alert(function: &str, errors: &[String]) -> Alert {
    if errors.is_empty() {
        return Alert::new(
            Severity::Info,
            function,
            "health.config-valid",
            "health config",
            "legacy health config: every target entry is valid again",
        )
        .what("The target entries that were invalid are fixed or gone; every configured target is checked.");
    }
    Alert::new(
        Severity::Warning,
        function,
        "health.config-invalid",
        "health config",
        format!("legacy health config: {} invalid target entries", errors.len()),
    )
    .what(errors.join("\n"))
    .why("These entries are skipped; every other target is still checked.")
    .next_step("Fix the named fields in the named documents (or instance tags); this alert repeats only when the list changes.")
}

/// One alert for the targets a run could not check before its invocation's deadline: how many of
/// `total`, and which (the first `listed`).
pub fn not_checked_alert(function: &str, names: &[String], total: usize, listed: usize) -> Alert {
    let mut list = names
        .iter()
        .take(listed)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > listed {
        list.push_str(&format!(" and {} more", names.len() - listed));
    }
    Alert::new(
        Severity::Warning,
        function,
        "health.not-checked",
        "health run",
        format!(
            "{} of {total} legacy targets not checked in time",
            names.len()
        ),
    )
    .what(format!("Not checked in this run: {list}."))
    .why("The invocation's deadline left no room for their timeouts (many targets hanging, or long timeouts). What the checked targets showed is stored and alerted; these keep their last state and are checked first in the next run.")
    .next_step("Raise HEALTH_CONCURRENCY (Lambda allows 1,024 open sockets), shorten the targets' timeouts, or raise the function's timeout.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::TargetState;
    use crate::probe::{Failure, FailureKind};

    fn down(target: &str) -> Change {
        Change {
            target: target.into(),
            check: format!("GET http://{target}/health"),
            source: "env".into(),
            notice: Notice::Down {
                seen: Seen {
                    failure: Failure {
                        kind: FailureKind::Status,
                        detail: "HTTP 500 (expected 200-299)".into(),
                        snippet: Some("database unavailable".into()),
                    },
                    address: Some("10.0.0.5:80".into()),
                    status: Some(500),
                    latency_ms: 42,
                    attempts: 2,
                },
                failures: 3,
                flapping_since: None,
            },
        }
    }

    #[test]
    fn a_down_alert_has_the_reason_address_and_body_start() {
        let alert = &alerts("legacy-health-monitor", &[down("billing")], 3)[0];
        assert_eq!(alert.title, "billing is DOWN (status)");
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(
            alert.why,
            "status: HTTP 500 (expected 200-299) (after 42 ms); body starts: \"database unavailable\""
        );
        assert_eq!(alert.context["address"], "10.0.0.5:80");
        assert_eq!(alert.context["body_start"], "database unavailable");
    }

    #[test]
    fn many_changes_in_one_run_are_one_alert() {
        let mut changes: Vec<Change> = (0..40).map(|i| down(&format!("app-{i:02}"))).collect();
        changes.push(Change {
            notice: Notice::Recovered {
                since: 0,
                downtime: 300,
                successes: 2,
            },
            ..down("ldap")
        });
        let sent = alerts("legacy-health-monitor", &changes, 3);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].title,
            "41 legacy targets changed: 40 down, 1 recovered"
        );
        assert_eq!(sent[0].event_type, "health.collated");
        assert!(sent[0]
            .what
            .starts_with("DOWN app-00 (GET http://app-00/health): status: HTTP 500"));
        assert!(sent[0]
            .what
            .ends_with("... and 16 more: the function's log lists every one."));
    }

    #[test]
    fn a_mutes_end_says_who_why_what_was_held_back_and_how_the_target_is_now() {
        let held_down = down("billing");
        let mute = Mute {
            since: 1_795_000_000,
            until: 1_795_007_200,
            by: "alice".into(),
            reason: "db migration".into(),
            window: false,
            window_gone: false,
            earlier: Vec::new(),
            lifted_by: None,
            held: vec![crate::mute::Held {
                at: 1_795_000_600,
                notice: held_down.notice.clone(),
            }],
            held_count: 1,
        };
        let end = |health| Change {
            notice: Notice::Unmuted {
                mute: Box::new(mute.clone()),
                health,
                health_since: 1_795_000_600,
                flapping_since: None,
                checked_at: Some(1_795_007_160),
            },
            ..down("billing")
        };
        let alert = &alerts("legacy-health-monitor", &[end(Health::Down)], 3)[0];
        assert_eq!(alert.event_type, "health.unmuted");
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.title, "billing: mute ended, and it is DOWN");
        assert_eq!(
            alert.what,
            "billing (GET http://billing/health) was muted by alice since 2026-11-18 11:06:40 UTC: \"db migration\"; it ran until 2026-11-18 13:06:40 UTC as set. Its checks and metrics went on while muted. 1 alert was held back:\n2026-11-18 11:16:40 UTC: DOWN billing (GET http://billing/health): status: HTTP 500 (expected 200-299) (after 42 ms); body starts: \"database unavailable\""
        );
        assert_eq!(
            alert.why,
            "billing is DOWN since 2026-11-18 11:16:40 UTC, as last recorded at 2026-11-18 13:06:00 UTC; anything this run's check changes is alerted as usual."
        );
        assert_eq!(alert.requested_by.as_deref(), Some("alice"));
        let up = &alerts("legacy-health-monitor", &[end(Health::Up)], 3)[0];
        assert_eq!(
            (up.severity, up.title.as_str()),
            (Severity::Info, "billing: mute ended, and it is up")
        );
        // Collated with others, it is counted, and a down one makes the alert critical.
        let mut many: Vec<Change> = (0..3)
            .map(|i| Change {
                notice: Notice::Recovered {
                    since: 0,
                    downtime: 60,
                    successes: 2,
                },
                ..down(&format!("app-{i}"))
            })
            .collect();
        many.push(end(Health::Down));
        let collated = &alerts("legacy-health-monitor", &many, 3)[0];
        assert_eq!(
            collated.title,
            "4 legacy targets changed: 3 recovered, 1 unmuted"
        );
        assert_eq!(collated.severity, Severity::Critical);
        assert!(collated.what.starts_with("MUTE ENDED billing (muted by alice: db migration; 1 held back: 1 down): DOWN since"), "{}", collated.what);
    }

    #[test]
    fn a_held_certificate_warning_is_never_dropped_and_makes_the_end_at_least_a_warning() {
        let mut state = crate::decide::TargetState::new(0);
        state.health = Health::Up;
        let mut muted = crate::mute::mute_from_chat(&state, "alice", "dc move", 86_400, 0);
        // Eleven held back: ten changes, then the certificate warning (sent once until renewed).
        state.pending = (0..10)
            .map(|_| down("billing").notice)
            .chain([Notice::CertExpiring { days: 5 }])
            .collect();
        muted = crate::mute::mute_from_chat(
            &TargetState {
                mute: muted.mute,
                ..state
            },
            "alice",
            "dc move",
            86_400,
            60,
        );
        let mute = muted.mute.unwrap();
        assert_eq!((mute.held_count, mute.held.len()), (11, 11));
        let end = |target: &str| Change {
            notice: Notice::Unmuted {
                mute: Box::new(mute.clone()),
                health: Health::Up,
                health_since: 0,
                flapping_since: None,
                checked_at: None,
            },
            ..down(target)
        };
        let alert = &alerts("legacy-health-monitor", &[end("billing")], 3)[0];
        assert_eq!(alert.severity, Severity::Warning);
        assert!(
            alert.what.contains("CERTIFICATE billing expires in 5 days"),
            "{}",
            alert.what
        );
        assert_eq!(
            alert.context["held_back_kinds"],
            "11 held back: 10 down, 1 certificate expiring in 5 days"
        );
        // Collated (a window over a fleet): still a warning, and each line names what was held.
        let many: Vec<Change> = ["a", "b", "c", "d"].iter().map(|t| end(t)).collect();
        let collated = &alerts("legacy-health-monitor", &many, 3)[0];
        assert_eq!(collated.severity, Severity::Warning);
        assert!(
            collated.what.contains("MUTE ENDED a (muted by alice: dc move; 11 held back: 10 down, 1 certificate expiring in 5 days): up since"),
            "{}",
            collated.what
        );
    }
}
