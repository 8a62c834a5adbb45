//! Report: the alerts ops read after the scaler acted or held back for a reason they must know.

use ops_core::alert::{Alert, Severity};
use ops_core::metrics::change_events::{
    SCALING_IN, SCALING_OUT, SCALING_OVERRIDE, SCALING_OVERRIDE_ENDED,
};
use ops_core::plan::FailedChange;

use crate::commands::scale_line;
use crate::contract::{AtBound, Bound, Override, TargetRef};
use ops_core::time::{duration_text, utc_text};

use crate::decide::{step_text, Action, Scaling};

/// How long the undo command in an alert holds the old capacity.
const UNDO_HOLD: &str = "1h";

/// `3 instances` for a group, `3 tasks` for a service.
fn capacity(target: &TargetRef, count: i32) -> String {
    let unit = match target {
        TargetRef::Group { .. } => "instance",
        TargetRef::Service { .. } => "task",
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// The alert for a scaling an alarm caused.
pub fn scaling_alert(function: &str, target: &TargetRef, scaling: &Scaling) -> Alert {
    let direction = if scaling.to > scaling.from {
        "out"
    } else {
        "in"
    };
    let value = datapoint(scaling);
    let mut what = format!(
        "{} is in ALARM: {} {value} {} {} ({:.1} past the threshold), step {} -> {} capacity {}.",
        scaling.alarm,
        scaling.metric,
        scaling.operator,
        scaling.threshold,
        scaling.breach,
        step_text(&scaling.step),
        kind_text(scaling),
        scaling.computed
    );
    if let Some(clamp) = &scaling.clamped_by {
        what.push_str(&format!(
            " It was {clamp}; the scaler alerts when the alarm no longer holds it there."
        ));
    }
    let mut alert = Alert::new(
        Severity::Info,
        function,
        if scaling.to > scaling.from {
            SCALING_OUT
        } else {
            SCALING_IN
        },
        target.to_string(),
        format!(
            "{target} scaled {direction} from {} to {}",
            scaling.from, scaling.to
        ),
    )
    .what(what)
    .why(format!(
        "Alarm {}: {} {} {}.",
        scaling.alarm, scaling.metric, scaling.operator, scaling.threshold
    ))
    .change(capacity(target, scaling.from), capacity(target, scaling.to))
    .undo(scale_line(
        function,
        &target.to_string(),
        scaling.from,
        UNDO_HOLD,
    ))
    .thread(format!("{function}:{target}"))
    .context("alarm", &scaling.alarm)
    .context("breach", format!("{:.1}", scaling.breach))
    .context(
        "clamped",
        scaling.clamped_by.clone().unwrap_or_else(|| "no".into()),
    );
    if let Some(bound) = scaling.clamped_at() {
        alert = alert.next_step(bound_next_step(bound));
    }
    with_datapoint(alert, scaling)
}

/// The alarm's newest datapoint as alerts write it.
fn datapoint(scaling: &Scaling) -> String {
    scaling
        .value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "(no datapoint in the alarm)".into())
}

/// `alert` with the alarm's newest datapoint in its context, when the alarm had one.
fn with_datapoint(alert: Alert, scaling: &Scaling) -> Alert {
    match scaling.value {
        Some(v) => alert.context("metric_value", format!("{v}")),
        None => alert,
    }
}

/// What to do about a target held at `bound`.
fn bound_next_step(bound: Bound) -> &'static str {
    match bound {
        Bound::Max => "Raise the maximum (a group's max size; an ECS service's ops:scale-max tag) or look at the load.",
        Bound::Min => "Lower the minimum if fewer is safe (a group's min size; an ECS service's ops:scale-min tag), or look at why the metric is low.",
    }
}

fn kind_text(scaling: &Scaling) -> &'static str {
    match scaling.kind {
        crate::contract::AdjustmentKind::Change => "change in capacity gives",
        crate::contract::AdjustmentKind::Percent => "percent of capacity gives",
        crate::contract::AdjustmentKind::Exact => "exact",
    }
}

/// The alert for a manual override set from chat.
pub fn override_alert(function: &str, target: &TargetRef, manual: &Override, from: i32) -> Alert {
    Alert::new(
        Severity::Warning,
        function,
        SCALING_OVERRIDE,
        target.to_string(),
        format!("{target} held at {} by {} until {}", manual.count, manual.by, utc_text(manual.until)),
    )
    .what(format!(
        "{target} goes from {from} to {} and alarms will not scale it until {}; then it goes back to {}.",
        manual.count,
        utc_text(manual.until),
        manual.revert
    ))
    .why(format!("Manual override from chat by {}.", manual.by))
    .change(capacity(target, from), capacity(target, manual.count))
    .requested_by(&manual.by)
    .undo(scale_line(function, &target.to_string(), manual.revert, "1m"))
    .thread(format!("{function}:{target}"))
}

/// The alert for an override that ran out: reverted, or (`why`) kept up or shaped by an alarm in
/// ALARM, with the reason.
pub fn override_ended_alert(
    function: &str,
    target: &TargetRef,
    manual: &Override,
    from: i32,
    to: i32,
    why: Option<&str>,
) -> Alert {
    let Some(why) = why else {
        return Alert::new(
            Severity::Info,
            function,
            SCALING_OVERRIDE_ENDED,
            target.to_string(),
            format!("{target} override by {} ended; back to {to}", manual.by),
        )
        .what(format!("The manual override (hold at {}) ended at {}; {target} went from {from} to {to} and alarms scale it again.", manual.count, utc_text(manual.until)))
        .why("Overrides revert by themselves so a manual scale-up is never forgotten.")
        .change(capacity(target, from), capacity(target, to))
        .requested_by(&manual.by)
        .thread(format!("{function}:{target}"));
    };
    // The override ended under load: say why capacity did not go back to what it was.
    let moved = if to == from {
        format!("stays at {to}")
    } else {
        format!("{from} to {to}")
    };
    Alert::new(
        Severity::Warning,
        function,
        SCALING_OVERRIDE_ENDED,
        target.to_string(),
        format!(
            "{target} override by {} ended; {moved}: an alarm is in ALARM",
            manual.by
        ),
    )
    .what(format!(
        "The manual override (hold at {}, then back to {}) ended at {}; {target} went from {from} to {to} in one change, and alarms scale it again.",
        manual.count,
        manual.revert,
        utc_text(manual.until)
    ))
    .why(format!(
        "An override ending must not undo what a firing alarm needs: {why}."
    ))
    .change(capacity(target, from), capacity(target, to))
    .requested_by(&manual.by)
    .thread(format!("{function}:{target}"))
}

/// The alert for a target held at its max (a warning) or min (for information) while `scaling`'s
/// alarm asks past it: once per episode ([`crate::episode`]).
pub fn at_bound_alert(
    function: &str,
    target: &TargetRef,
    episode: &AtBound,
    scaling: &Scaling,
) -> Alert {
    let bound = episode.bound;
    let value = datapoint(scaling);
    // Held at the max, load may outrun capacity; held at the min, it only costs.
    let severity = match bound {
        Bound::Max => Severity::Warning,
        Bound::Min => Severity::Info,
    };
    let alert = Alert::new(
        severity,
        function,
        format!("scaling.at-{}", bound.word()),
        target.to_string(),
        format!(
            "{target} held at its {} {} while {} {value} {} {}",
            bound.name(),
            episode.at,
            scaling.metric,
            scaling.operator,
            scaling.threshold
        ),
    )
    .what(format!(
        "{} is in ALARM ({} {value} {} {}, step {}) and asks for {}, but {target} is at its {} {} and the scaler cannot go {}. It alerts again only when this ends.",
        scaling.alarm,
        scaling.metric,
        scaling.operator,
        scaling.threshold,
        step_text(&scaling.step),
        capacity(target, scaling.computed),
        bound.name(),
        episode.at,
        match bound {
            Bound::Max => "higher",
            Bound::Min => "lower",
        }
    ))
    .why(format!(
        "Alarm {}: {} {} {}.",
        scaling.alarm, scaling.metric, scaling.operator, scaling.threshold
    ))
    .next_step(bound_next_step(bound))
    .thread(format!("{function}:{target}"))
    .context("alarm", &scaling.alarm)
    .context("bound", bound.word())
    .context("asked", scaling.computed.to_string());
    with_datapoint(alert, scaling)
}

/// The alert for the end of an at-bound episode of `alarm`, with why it ended and how long it
/// lasted.
pub fn at_bound_ended_alert(
    function: &str,
    target: &TargetRef,
    episode: &AtBound,
    alarm: &str,
    why: &str,
    now: u64,
) -> Alert {
    Alert::new(
        Severity::Info,
        function,
        format!("scaling.at-{}-ended", episode.bound.word()),
        target.to_string(),
        format!(
            "{target} no longer held at its {} {}",
            episode.bound.name(),
            episode.at
        ),
    )
    .what(format!(
        "{target} was held at its {} {} for {} (since {}) while alarm {} asked for {}; that ended: {why}.",
        episode.bound.name(),
        episode.at,
        duration_text(now.saturating_sub(episode.since)),
        utc_text(episode.since),
        alarm,
        capacity(target, episode.asked)
    ))
    .why(format!("{why}."))
    .thread(format!("{function}:{target}"))
    .context("alarm", alarm)
    .context("bound", episode.bound.word())
}

/// A warning ops must hear although nothing may have changed (native scaling on the target).
pub fn warning_alert(function: &str, target: &TargetRef, alarm: &str, warning: &str) -> Alert {
    Alert::new(Severity::Warning, function, "scaling.conflict", target.to_string(), format!("{target}: native scaling found"))
        .what(warning.to_string())
        .why(format!("Alarm {alarm} asked to scale {target}."))
        .next_step("Remove the native scaling policies or scheduled actions, or stop tagging the alarm with ops:scale-target.")
        .thread(format!("{function}:{target}"))
}

/// The alert for a change AWS refused.
pub fn failure_alert(function: &str, failed: &FailedChange<Action>) -> Alert {
    let target = match &failed.change.action {
        Action::SetCapacity { target, .. }
        | Action::Remember { target, .. }
        | Action::Forget { target, .. } => target.to_string(),
    };
    Alert::new(Severity::Critical, function, "scaling.error", &target, format!("{target}: could not scale"))
        .what(format!("cpu-alarm-scaler could not change {target}: {}", failed.error))
        .why(failed.change.reason.clone())
        .next_step("Check the function's permissions and the target's limits; the next ALARM re-evaluation tries again.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{AdjustmentKind, EpisodeState, Step};

    #[test]
    fn a_scaling_alert_has_before_after_alarm_value_threshold_clamp_and_undo() {
        let target = TargetRef::Group {
            name: "workers".into(),
        };
        let scaling = Scaling {
            alarm: "workers-cpu-high".into(),
            metric: "CPUUtilization".into(),
            value: Some(97.5),
            threshold: 90.0,
            operator: ">",
            breach: 7.5,
            step: Step {
                lower: 5.0,
                upper: None,
                adjustment: 2,
            },
            kind: AdjustmentKind::Change,
            from: 5,
            computed: 7,
            to: 6,
            clamped_by: Some("clamped to its maximum 6 (asked for 7)".into()),
        };
        let alert = scaling_alert("opsstack-cpu-alarm-scaler", &target, &scaling);
        assert_eq!(alert.title, "asg:workers scaled out from 5 to 6");
        assert_eq!(
            alert.what,
            "workers-cpu-high is in ALARM: CPUUtilization 97.5 > 90 (7.5 past the threshold), step 5..∞: +2 -> change in capacity gives capacity 7. It was clamped to its maximum 6 (asked for 7); the scaler alerts when the alarm no longer holds it there."
        );
        assert_eq!(
            (alert.before.as_deref(), alert.after.as_deref()),
            (Some("5 instances"), Some("6 instances"))
        );
        assert_eq!(
            alert.undo.as_deref(),
            Some(
                r#"@Amazon Q lambda invoke --function-name opsstack-cpu-alarm-scaler --payload {"args":{"count":5,"for":"1h","target":"asg:workers"},"command":"scale"}"#
            )
        );
    }

    #[test]
    fn an_at_max_alert_says_what_is_asked_and_what_to_do_and_its_end_how_long_it_lasted() {
        let target = TargetRef::Group {
            name: "workers".into(),
        };
        let scaling = Scaling {
            alarm: "workers-cpu-high".into(),
            metric: "CPUUtilization".into(),
            value: Some(97.0),
            threshold: 90.0,
            operator: ">",
            breach: 7.0,
            step: Step {
                lower: 0.0,
                upper: None,
                adjustment: 1,
            },
            kind: AdjustmentKind::Change,
            from: 6,
            computed: 7,
            to: 6,
            clamped_by: Some("clamped to its maximum 6 (asked for 7)".into()),
        };
        let episode = AtBound {
            alarm: "workers-cpu-high".into(),
            id: crate::contract::alarm_id("workers-cpu-high"),
            bound: Bound::Max,
            at: 6,
            asked: 7,
            since: 1_795_000_000,
            state: EpisodeState::Alerted,
            claim: None,
        };
        let alert = at_bound_alert("ops-cpu-alarm-scaler", &target, &episode, &scaling);
        assert_eq!(
            (alert.severity, alert.event_type.as_str()),
            (Severity::Warning, "scaling.at-max")
        );
        assert_eq!(
            alert.title,
            "asg:workers held at its maximum 6 while CPUUtilization 97.0 > 90"
        );
        assert_eq!(
            alert.what,
            "workers-cpu-high is in ALARM (CPUUtilization 97.0 > 90, step 0..∞: +1) and asks for 7 instances, but asg:workers is at its maximum 6 and the scaler cannot go higher. It alerts again only when this ends."
        );
        assert_eq!(
            alert.next_steps,
            ["Raise the maximum (a group's max size; an ECS service's ops:scale-max tag) or look at the load."]
        );
        assert_eq!(
            (alert.before.as_deref(), alert.undo.as_deref()),
            (None, None)
        );
        let ended = at_bound_ended_alert(
            "ops-cpu-alarm-scaler",
            &target,
            &episode,
            "workers-cpu-high",
            "workers-cpu-high is no longer in ALARM",
            1_795_000_000 + 840,
        );
        assert_eq!(
            (ended.severity, ended.event_type.as_str()),
            (Severity::Info, "scaling.at-max-ended")
        );
        assert_eq!(ended.title, "asg:workers no longer held at its maximum 6");
        assert_eq!(
            ended.what,
            format!(
                "asg:workers was held at its maximum 6 for 14 minutes (since {}) while alarm workers-cpu-high asked for 7 instances; that ended: workers-cpu-high is no longer in ALARM.",
                utc_text(1_795_000_000)
            )
        );
    }
}
