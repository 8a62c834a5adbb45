//! Report: the alerts ops read after the scaler acted or held back for a reason they must know.

use ops_core::alert::{Alert, Severity};
use ops_core::plan::FailedChange;

use crate::commands::scale_line;
use crate::contract::{Override, TargetRef};
use ops_core::time::utc_text;

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
    let value = scaling
        .value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "(no datapoint in the alarm)".into());
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
        what.push_str(&format!(" It was {clamp}."));
    }
    let mut alert = Alert::new(
        Severity::Info,
        function,
        format!("scaling.{direction}"),
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
    if let Some(v) = scaling.value {
        alert = alert.context("metric_value", format!("{v}"));
    }
    alert
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
        "scaling.override",
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
            "scaling.override-ended",
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
        "scaling.override-ended",
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
    use crate::contract::{AdjustmentKind, Step};

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
            "workers-cpu-high is in ALARM: CPUUtilization 97.5 > 90 (7.5 past the threshold), step 5..∞: +2 -> change in capacity gives capacity 7. It was clamped to its maximum 6 (asked for 7)."
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
}
