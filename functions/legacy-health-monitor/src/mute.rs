//! Mute: quiet a target's alerts for a while, from chat (`mute {target, for, reason}`) or by a
//! maintenance window in its targets document. A muted target is still checked, counted and
//! measured (its `Up` metric goes on, and its state follows its checks as ever); only its alerts
//! are held back. When the mute ends, one alert says who muted it and why, what was held back,
//! and how the target is now, so an outage that began during maintenance and outlived it is never
//! silent.
//!
//! **Where a mute lives.** In the target's own state ([`crate::decide::TargetState::mute`]),
//! written with the same conditional writes as the rest of it: a mute and a run never overwrite
//! each other, and the end is alerted through the same record-claim-send path as any change, so
//! it is alerted as any change is: at least once, twice only if the write that records it sent
//! fails after it went out.
//!
//! **How a mute ends.** Only a run ends it: the first that counts at or after its `until` (or
//! after `unmute`), whether or not it could check the target in time ([`end_if_due`]). That
//! run's own alerts go out as usual, after the end alert, which tells the state as last recorded.
//! If a maintenance window covers that moment, a chat mute goes on as the window's (no alert in
//! between); a window's mute follows the document as it is now, so a window removed or shortened
//! ends it (said in the alert); `unmute` from chat ends it at the next run and skips the rest of
//! a window open now.
//!
//! **Windows are in UTC**, on the days named: `{"days": ["sat", "sun"], "start_utc": "02:00",
//! "for": "3h", "reason": "weekly patching"}`; a window may run past midnight into the next day.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use ops_core::time::{duration_text, parse_duration, utc_text};

use crate::decide::{Health, Notice, TargetState};

/// Longest mute from chat, and longest maintenance window: a week.
pub const MAX_MUTE: u64 = 7 * 86_400;
/// Shortest mute from chat, and shortest maintenance window.
pub const MIN_MUTE: u64 = 60;
/// Most windows a target may have.
pub const MAX_WINDOWS: usize = 8;
/// Longest reason kept, in characters.
pub const MAX_REASON: usize = 200;
/// Held-back alerts a mute keeps to tell when it ends (the first ones); the rest are counted.
pub const MAX_HELD: usize = 10;
/// Earlier mutes a mute keeps the description of.
pub const MAX_EARLIER: usize = 5;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WINDOW_FIELDS: &[&str] = &["days", "start_utc", "for", "reason"];

/// A maintenance window from a targets document: on `days`, from `start` (seconds after 00:00
/// UTC) for `length` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Bit 0 Monday ... bit 6 Sunday.
    pub days: u8,
    /// Seconds after midnight UTC.
    pub start: u64,
    /// Seconds.
    pub length: u64,
    /// Why, as the document says.
    pub reason: String,
}

impl Window {
    /// `sat,sun 02:00 UTC for 3 hours`, as `status` shows it.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = (0..7)
            .filter(|d| self.days & (1 << d) != 0)
            .map(|d| DAYS[d])
            .collect();
        let days = if days.len() == 7 {
            "daily".to_string()
        } else {
            days.join(",")
        };
        format!(
            "{days} {:02}:{:02} UTC for {}: {}",
            self.start / 3600,
            self.start % 3600 / 60,
            duration_text(self.length),
            self.reason
        )
    }
}

/// Parse a target's `maintenance` field: a list of windows.
pub fn parse_windows(value: &Value) -> Result<Vec<Window>, String> {
    let list = value
        .as_array()
        .ok_or("must be a list of windows like {\"days\": [\"sun\"], \"start_utc\": \"02:00\", \"for\": \"2h\", \"reason\": \"patching\"}")?;
    if list.len() > MAX_WINDOWS {
        return Err(format!("at most {MAX_WINDOWS} windows, got {}", list.len()));
    }
    list.iter()
        .enumerate()
        .map(|(i, w)| parse_window(w).map_err(|e| format!("window {}: {e}", i + 1)))
        .collect()
}

fn parse_window(value: &Value) -> Result<Window, String> {
    let object = value.as_object().ok_or("must be an object")?;
    if let Some(unknown) = object.keys().find(|k| !WINDOW_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{unknown}`; the fields are {}",
            WINDOW_FIELDS.join(", ")
        ));
    }
    let days = match object.get("days") {
        None => 0x7f,
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("daily") => 0x7f,
        Some(Value::Array(names)) if !names.is_empty() => {
            let mut days = 0u8;
            for name in names {
                let day = name
                    .as_str()
                    .and_then(|n| DAYS.iter().position(|d| n.trim().eq_ignore_ascii_case(d)))
                    .ok_or_else(|| format!("`days`: `{name}` is not one of {}", DAYS.join(", ")))?;
                days |= 1 << day;
            }
            days
        }
        Some(other) => {
            return Err(format!(
                "`days`: `{other}` must be a list of days like [\"sat\", \"sun\"], or \"daily\""
            ))
        }
    };
    let start = object
        .get("start_utc")
        .ok_or("`start_utc` is missing (a time of day in UTC like \"02:00\")")?;
    let start = start.as_str().and_then(clock_time).ok_or_else(|| {
        format!("`start_utc`: `{start}` is not a time of day in UTC like \"02:00\"")
    })?;
    let length = object
        .get("for")
        .ok_or("`for` is missing (how long, like \"2h\")")?;
    let length = length
        .as_str()
        .ok_or_else(|| format!("`for`: `{length}` must be a duration like \"2h\""))
        .and_then(|text| parse_duration(text, MIN_MUTE, MAX_MUTE))
        .map_err(|e| format!("`for`: {e}"))?;
    let reason = object.get("reason").ok_or("`reason` is missing")?;
    let reason = reason
        .as_str()
        .ok_or_else(|| format!("`reason`: `{reason}` must be a string"))
        .and_then(|r| check_reason(r).map_err(str::to_string))
        .map_err(|e| format!("`reason`: {e}"))?;
    Ok(Window {
        days,
        start,
        length,
        reason,
    })
}

/// `HH:MM` (two digits each) to seconds after midnight.
fn clock_time(text: &str) -> Option<u64> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let two_digits = |part: &str| {
        (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u64>().ok())
            .flatten()
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    (hours < 24 && minutes < 60).then_some(hours * 3600 + minutes * 60)
}

/// A reason as given, trimmed: 1 to [`MAX_REASON`] printable characters.
pub fn check_reason(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_REASON || text.chars().any(char::is_control) {
        return Err("say why, in 1 to 200 printable characters");
    }
    Ok(text.to_string())
}

/// Days before today a window that covers now may have started: a window lasts at most
/// [`MAX_MUTE`], a week.
const LOOK_BACK_DAYS: u64 = MAX_MUTE / 86_400 + 1;

/// The windows' occurrences that could cover `now`: each window's start on the days a window
/// still open now may have started ([`LOOK_BACK_DAYS`]), today and the next seven (for
/// [`next_window`]).
fn occurrences(windows: &[Window], now: u64) -> impl Iterator<Item = (u64, u64, &Window)> {
    let today = now / 86_400;
    windows.iter().flat_map(move |w| {
        (today.saturating_sub(LOOK_BACK_DAYS)..=today + 7).filter_map(move |day| {
            // 1970-01-01 was a Thursday (index 3 from Monday).
            let weekday = (day + 3) % 7;
            (w.days & (1 << weekday) != 0).then(|| {
                let start = day * 86_400 + w.start;
                (start, start + w.length, w)
            })
        })
    })
}

/// The window covering `now` that ends last: its end and the window.
pub fn window_covering(windows: &[Window], now: u64) -> Option<(u64, &Window)> {
    occurrences(windows, now)
        .filter(|(start, end, _)| *start <= now && now < *end)
        .map(|(_, end, w)| (end, w))
        .max_by_key(|(end, _)| *end)
}

/// The next window to begin after `now`: its start, end and the window.
pub fn next_window(windows: &[Window], now: u64) -> Option<(u64, u64, &Window)> {
    occurrences(windows, now)
        .filter(|(start, _, _)| *start > now)
        .min_by_key(|(start, _, _)| *start)
}

/// A target's mute, kept in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// When it began, epoch seconds.
    pub since: u64,
    /// When it ends, epoch seconds (a run at or after it ends it).
    pub until: u64,
    /// Who muted it: a person, or the maintenance window.
    pub by: String,
    /// Why.
    pub reason: String,
    /// Set by a maintenance window (not a person).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub window: bool,
    /// Who lifted it before its time (`unmute`), if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<String>,
    /// A window's mute whose window was removed from the targets document, or no longer covers
    /// the time, before its end: it ended then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub window_gone: bool,
    /// The mutes this one replaced or carried on from, as [`Mute::describe`] tells them, oldest
    /// first (the last [`MAX_EARLIER`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
    /// The first alerts held back, each with the schedule time of the run that decided it.
    #[serde(default)]
    pub held: Vec<Held>,
    /// How many alerts were held back in all.
    #[serde(default)]
    pub held_count: u32,
}

/// An alert held back by a mute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The schedule time of the run that decided it, epoch seconds.
    pub at: u64,
    /// What it would have said.
    pub notice: Notice,
}

impl Mute {
    /// `muted by alice since ... until ...: db migration`, as answers show it (and who lifted it).
    pub fn describe(&self) -> String {
        format!(
            "muted by {} since {} until {}: {}{}",
            self.by,
            utc_text(self.since),
            utc_text(self.until),
            self.reason,
            self.lifted_by
                .as_ref()
                .map(|who| format!(" (lifted by {who})"))
                .unwrap_or_default()
        )
    }

    /// `next`, taking over from this mute: what it held, and this one told among the earlier.
    fn succeeded_by(self, next: Mute) -> Mute {
        let mut earlier = self.earlier.clone();
        earlier.push(self.describe());
        let skip = earlier.len().saturating_sub(MAX_EARLIER);
        Mute {
            held: self.held,
            held_count: self.held_count,
            earlier: earlier.into_iter().skip(skip).collect(),
            ..next
        }
    }

    /// Keep `notices`, decided at `at`: the first [`MAX_HELD`], and every certificate warning
    /// (sent once until renewed, it would otherwise be lost), the rest counted.
    fn hold(&mut self, at: u64, notices: Vec<Notice>) {
        for notice in notices {
            self.held_count += 1;
            if self.held.len() < MAX_HELD || matches!(notice, Notice::CertExpiring { .. }) {
                self.held.push(Held { at, notice });
            }
        }
    }

    /// Whether it holds back a certificate warning.
    pub fn holds_cert_warning(&self) -> bool {
        self.held
            .iter()
            .any(|h| matches!(h.notice, Notice::CertExpiring { .. }))
    }
}

/// The mute set by `window` at `now`, ending at `end`.
fn window_mute(window: &Window, end: u64, source: &str, now: u64) -> Mute {
    Mute {
        since: now,
        until: end,
        by: format!("maintenance window ({source})"),
        reason: window.reason.clone(),
        window: true,
        lifted_by: None,
        window_gone: false,
        earlier: Vec::new(),
        held: Vec::new(),
        held_count: 0,
    }
}

/// Whether a maintenance window may begin or continue a mute at `now`: not within one a person
/// lifted ([`TargetState::window_skipped_until`]).
fn open_window<'w>(
    windows: &'w [Window],
    state: &TargetState,
    now: u64,
) -> Option<(u64, &'w Window)> {
    window_covering(windows, now).filter(|_| now >= state.window_skipped_until)
}

/// Before a counting run's check is decided: end `state`'s mute if it is due ([`end_if_due`]),
/// then begin a maintenance window's mute if one is open and the target is not muted. `source`
/// names the targets document.
pub fn before_check(windows: &[Window], source: &str, state: &mut TargetState, now: u64) {
    end_if_due(windows, source, state, now);
    if state.mute.is_none() {
        if let Some((end, window)) = open_window(windows, state, now) {
            state.mute = Some(window_mute(window, end, source, now));
        }
    }
}

/// At a run at `now` that counts, checked or not (a mute's end needs no check: it tells the
/// health as last recorded): end `state`'s mute if it is due, pushing the end alert, or carry it
/// on. Due: lifted by a person; a chat mute past its time with no window open; a window's mute
/// past its time, or whose window is gone from the document or no longer covers now (it ends
/// then, said in the alert). A chat mute past its time inside an open window goes on as the
/// window's; a window's mute follows its window's end as the document has it now.
pub fn end_if_due(windows: &[Window], source: &str, state: &mut TargetState, now: u64) {
    let Some(mut mute) = state.mute.take() else {
        return;
    };
    let window = open_window(windows, state, now);
    let carried = match (&mute.lifted_by, mute.window, window) {
        (Some(_), _, _) => None,
        (None, true, Some((end, window))) => Some(Mute {
            until: end,
            reason: window.reason.clone(),
            ..mute.clone()
        }),
        (None, true, None) => {
            if now < mute.until {
                mute.window_gone = true;
                mute.until = now;
            }
            None
        }
        (None, false, _) if now < mute.until => Some(mute.clone()),
        (None, false, Some((end, window))) => Some(
            mute.clone()
                .succeeded_by(window_mute(window, end, source, now)),
        ),
        (None, false, None) => None,
    };
    match carried {
        Some(carried) => state.mute = Some(carried),
        None => state.pending.push(Notice::Unmuted {
            health: state.health,
            health_since: state.since,
            flapping_since: state.flapping_since,
            checked_at: state.at,
            mute: Box::new(mute),
        }),
    }
}

/// After a counting run's check is decided: hold back what it decided to alert (the notices
/// pushed since `first_new`) while the target is muted.
pub fn after_check(state: &mut TargetState, first_new: usize, now: u64) {
    if let Some(mute) = state.mute.as_mut() {
        let new = state.pending.split_off(first_new);
        mute.hold(now, new);
    }
}

/// `mute {target, for, reason}` from chat: the state with the mute set by `by` from `now` for
/// `seconds`. A mute already there is replaced, keeping what it held and telling it among the
/// earlier mutes (a lifted one whose end was not yet alerted is told there too). Alerts
/// recorded and not yet sent (no run owns them: their run died, or could not send them) are held
/// back too, and told when the mute ends: a mute holds back every alert not yet out.
pub fn mute_from_chat(
    state: &TargetState,
    by: &str,
    reason: &str,
    seconds: u64,
    now: u64,
) -> TargetState {
    let mut next = state.clone();
    let set = Mute {
        since: now,
        until: now + seconds,
        by: by.to_string(),
        reason: reason.to_string(),
        window: false,
        lifted_by: None,
        window_gone: false,
        earlier: Vec::new(),
        held: Vec::new(),
        held_count: 0,
    };
    next.mute = Some(match state.mute.clone() {
        Some(replaced) => replaced.succeeded_by(set),
        None => set,
    });
    let unsent = std::mem::take(&mut next.pending);
    let at = next.at.unwrap_or(now);
    if let Some(mute) = next.mute.as_mut() {
        mute.hold(at, unsent);
    }
    next
}

/// `unmute {target}` from chat: the state with its mute ending now, lifted by `by`, and the rest
/// of a maintenance window that covers now skipped (also when no run has begun its mute yet);
/// `None` when it is neither muted nor in an open window.
pub fn unmute_from_chat(
    state: &TargetState,
    windows: &[Window],
    by: &str,
    now: u64,
) -> Option<TargetState> {
    let mut next = state.clone();
    let window = open_window(windows, state, now);
    if next.mute.is_none() && window.is_none() {
        return None;
    }
    if let Some(mute) = next.mute.as_mut() {
        mute.until = now.min(mute.until);
        mute.lifted_by = Some(by.to_string());
    }
    if let Some((end, _)) = window {
        next.window_skipped_until = next.window_skipped_until.max(end);
    }
    Some(next)
}

/// What `status` says of `state`'s mute at `now`: what the next run does with it.
pub fn mute_note(windows: &[Window], state: &TargetState, now: u64) -> Option<String> {
    let mute = state.mute.as_ref()?;
    let window = open_window(windows, state, now);
    Some(match (&mute.lifted_by, mute.window, window) {
        (Some(_), _, _) => "lifted; the next run alerts its end".to_string(),
        (None, true, Some((end, _))) => format!(
            "checks and metrics go on; alerts are held back until its maintenance window ends at {}",
            utc_text(end)
        ),
        (None, true, None) if now < mute.until => "its maintenance window is no longer in the targets document (or ends earlier now): the next run ends it and alerts".to_string(),
        (None, false, _) if now < mute.until => {
            "checks and metrics go on; alerts are held back".to_string()
        }
        (None, false, Some((end, _))) => format!(
            "its time is up inside the maintenance window open now: the next run carries it on as the window's, until {}",
            utc_text(end)
        ),
        _ => "ended; the next run alerts its end".to_string(),
    })
}

/// What the end of a mute says about the target now, for the end alert.
pub fn health_now(health: Health, since: u64, flapping_since: Option<u64>) -> String {
    let flapping = flapping_since
        .map(|f| format!(", flapping since {}", utc_text(f)))
        .unwrap_or_default();
    match health {
        Health::Down => format!("DOWN since {}", utc_text(since)),
        Health::Up => format!("up since {}{flapping}", utc_text(since)),
        Health::Unknown => format!(
            "not yet known (too few checks since {}){flapping}",
            utc_text(since)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-11-29 was a Sunday; 00:00 UTC.
    const SUNDAY: u64 = 1_795_910_400;

    fn windows(value: Value) -> Vec<Window> {
        parse_windows(&value).unwrap()
    }

    #[test]
    fn the_reference_sunday_is_a_sunday() {
        assert_eq!(utc_text(SUNDAY), "2026-11-29 00:00:00 UTC");
        let sunday_only =
            windows(json!([{"days": ["sun"], "start_utc": "00:00", "for": "1h", "reason": "r"}]));
        assert!(window_covering(&sunday_only, SUNDAY).is_some());
        assert!(window_covering(&sunday_only, SUNDAY - 60).is_none());
    }

    #[test]
    fn a_window_covers_its_days_from_its_start_for_its_length_even_past_midnight() {
        let late = windows(
            json!([{"days": ["sat"], "start_utc": "23:00", "for": "3h", "reason": "patching"}]),
        );
        let saturday_23h = SUNDAY - 3600;
        assert_eq!(window_covering(&late, saturday_23h - 60), None);
        let (end, window) = window_covering(&late, saturday_23h).unwrap();
        assert_eq!(end, SUNDAY + 2 * 3600);
        assert_eq!(window.reason, "patching");
        // Past midnight, into Sunday (not a day it names): still the Saturday window.
        assert_eq!(
            window_covering(&late, SUNDAY + 3600).map(|(e, _)| e),
            Some(SUNDAY + 2 * 3600)
        );
        assert_eq!(window_covering(&late, SUNDAY + 2 * 3600), None);
        assert_eq!(
            next_window(&late, SUNDAY + 2 * 3600).map(|(s, _, _)| utc_text(s)),
            Some("2026-12-05 23:00:00 UTC".to_string())
        );
        assert_eq!(late[0].describe(), "sat 23:00 UTC for 3 hours: patching");
        let daily = windows(json!([{"start_utc": "02:30", "for": "30m", "reason": "backup"}]));
        assert_eq!(
            daily[0].describe(),
            "daily 02:30 UTC for 30 minutes: backup"
        );
        assert!(window_covering(&daily, SUNDAY + 2 * 3600 + 1800).is_some());
        assert!(window_covering(&daily, SUNDAY + 86_400 + 2 * 3600 + 1800 + 1799).is_some());
    }

    #[test]
    fn bad_windows_are_refused_naming_the_field() {
        let refused = |value: Value| parse_windows(&value).unwrap_err();
        assert_eq!(
            refused(
                json!([{"days": ["sunday"], "start_utc": "02:00", "for": "1h", "reason": "r"}])
            ),
            "window 1: `days`: `\"sunday\"` is not one of mon, tue, wed, thu, fri, sat, sun"
        );
        assert_eq!(
            refused(json!([{"start_utc": "2:00", "for": "1h", "reason": "r"}])),
            "window 1: `start_utc`: `\"2:00\"` is not a time of day in UTC like \"02:00\""
        );
        assert_eq!(
            refused(json!([{"start_utc": "02:00", "for": "8d", "reason": "r"}])),
            "window 1: `for`: `8d` is not a duration like 30m, 2h or 1h30m (1 minute to 168 hours)"
        );
        assert_eq!(
            refused(json!([{"start_utc": "02:00", "for": "1h"}])),
            "window 1: `reason` is missing"
        );
        assert_eq!(
            refused(json!([{"start_utc": "02:00", "for": "1h", "reason": " "}])),
            "window 1: `reason`: say why, in 1 to 200 printable characters"
        );
        assert_eq!(
            refused(json!([{"start_utc": "02:00", "for": "1h", "reason": "r", "tz": "CET"}])),
            "window 1: unknown field `tz`; the fields are days, start_utc, for, reason"
        );
        assert_eq!(
            refused(json!({"start_utc": "02:00"})),
            "must be a list of windows like {\"days\": [\"sun\"], \"start_utc\": \"02:00\", \"for\": \"2h\", \"reason\": \"patching\"}"
        );
    }

    #[test]
    fn a_window_of_up_to_a_week_covers_every_day_it_spans() {
        let weekend = windows(
            json!([{"days": ["sat"], "start_utc": "22:00", "for": "48h", "reason": "dc move"}]),
        );
        let saturday_22h = SUNDAY - 2 * 3600;
        let monday_10h = SUNDAY + 86_400 + 10 * 3600;
        assert_eq!(
            window_covering(&weekend, monday_10h).map(|(end, _)| end),
            Some(saturday_22h + 48 * 3600)
        );
        let week = windows(
            json!([{"days": ["mon"], "start_utc": "00:00", "for": "168h", "reason": "freeze"}]),
        );
        let monday = SUNDAY + 86_400;
        assert!(window_covering(&week, monday + 3 * 86_400 + 12 * 3600).is_some());
        assert!(window_covering(&week, monday + 7 * 86_400 - 1).is_some());
    }

    #[test]
    fn a_time_of_day_is_two_digits_colon_two_digits() {
        for bad in ["+2:00", "2:000", "2:00", "24:00", "12:60", "1200", "12:0a"] {
            assert_eq!(clock_time(bad), None, "{bad}");
        }
        assert_eq!(clock_time("02:30"), Some(9000));
        assert_eq!(clock_time(" 23:59 "), Some(86_340));
    }

    #[test]
    fn unmute_skips_a_window_open_now_even_before_a_run_muted_it_and_status_says_how_a_mute_ends() {
        let nightly = windows(json!([{"start_utc": "02:00", "for": "1h", "reason": "patching"}]));
        let two_am = SUNDAY + 2 * 3600;
        let quiet = TargetState::new(0);
        assert!(unmute_from_chat(&quiet, &nightly, "bob", two_am - 60).is_none());
        let skipped = unmute_from_chat(&quiet, &nightly, "bob", two_am + 20).unwrap();
        assert_eq!(skipped.window_skipped_until, two_am + 3600);
        assert!(skipped.mute.is_none());
        let mut state = skipped.clone();
        before_check(&nightly, "env", &mut state, two_am + 60);
        assert!(state.mute.is_none(), "the lifted window does not mute it");
        // A chat mute that runs out inside an open window goes on as the window's, and says so.
        let muted = mute_from_chat(&quiet, "alice", "early", 600, two_am - 300);
        assert_eq!(
            mute_note(&nightly, &muted, two_am - 60).as_deref(),
            Some("checks and metrics go on; alerts are held back")
        );
        assert_eq!(
            mute_note(&nightly, &muted, two_am + 400),
            Some(format!(
                "its time is up inside the maintenance window open now: the next run carries it on as the window's, until {}",
                utc_text(two_am + 3600)
            ))
        );
        let lifted = unmute_from_chat(&muted, &nightly, "bob", two_am + 400).unwrap();
        assert_eq!(
            mute_note(&nightly, &lifted, two_am + 400).as_deref(),
            Some("lifted; the next run alerts its end")
        );
    }

    #[test]
    fn a_mute_replacing_another_starts_now_keeps_what_it_held_and_tells_who_muted_before() {
        let mut state = TargetState::new(0);
        state.health = Health::Up;
        let alice = mute_from_chat(&state, "alice", "db migration", 3600, 100);
        let mut held = alice.clone();
        held.mute
            .as_mut()
            .unwrap()
            .hold(200, vec![Notice::CertExpiring { days: 3 }]);
        let lifted = unmute_from_chat(&held, &[], "carol", 1900).unwrap();
        let bob = mute_from_chat(&lifted, "bob", "network change", 120, 1_900);
        let mute = bob.mute.unwrap();
        assert_eq!(
            (mute.since, mute.until, mute.by.as_str()),
            (1_900, 2_020, "bob")
        );
        assert_eq!(mute.held_count, 1);
        assert_eq!(
            mute.earlier,
            [format!(
                "muted by alice since {} until {}: db migration (lifted by carol)",
                utc_text(100),
                utc_text(1_900)
            )]
        );
    }
}
