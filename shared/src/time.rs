//! Epoch seconds as text people and AWS read, and durations as people write them (`30m`, `2h`),
//! without a date-time dependency.

/// The clock, in epoch seconds. Read only at a function's edge (its `main`, per invocation) and
/// passed in, so decisions stay pure.
pub fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for alerts and chat.
pub fn utc_text(epoch: u64) -> String {
    let (date, time) = civil(epoch);
    format!("{date} {time} UTC")
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as EventBridge writes an event's `time`.
pub fn iso8601(epoch: u64) -> String {
    let (date, time) = civil(epoch);
    format!("{date}T{time}Z")
}

/// Parse `90s`, `30m`, `2h`, `1h30m` into seconds, within `min..=max` seconds.
pub fn parse_duration(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let invalid = || {
        format!(
            "`{text}` is not a duration like 30m, 2h or 1h30m ({} to {})",
            duration_text(min),
            duration_text(max)
        )
    };
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(invalid()),
        };
        let n: u64 = digits.parse().map_err(|_| invalid())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        digits.clear();
    }
    if text.trim().is_empty() || !digits.is_empty() || !(min..=max).contains(&total) {
        return Err(invalid());
    }
    Ok(total)
}

/// Seconds as people say them: `90 seconds`, `1 minute`, `5 minutes`, `24 hours`, `1h30m`.
pub fn duration_text(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match seconds {
        s if s % 3600 == 0 && s > 0 => plural(s / 3600, "hour"),
        s if s % 60 == 0 && s < 3600 => plural(s / 60, "minute"),
        s if s < 60 => plural(s, "second"),
        s if s % 60 == 0 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => plural(s, "second"),
    }
}

fn civil(epoch: u64) -> (String, String) {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn durations_are_bounded_and_say_their_bounds() {
        assert_eq!(parse_duration("30m", 60, 86_400), Ok(1800));
        assert_eq!(parse_duration("1h30m", 60, 86_400), Ok(5400));
        assert_eq!(parse_duration("0m", 0, 86_400), Ok(0));
        assert!(parse_duration("30", 60, 86_400).is_err());
        assert!(parse_duration("", 0, 86_400).is_err());
        assert_eq!(
            parse_duration("10s", 60, 86_400).unwrap_err(),
            "`10s` is not a duration like 30m, 2h or 1h30m (1 minute to 24 hours)"
        );
        assert!(parse_duration("25h", 60, 86_400).is_err());
        assert!(parse_duration("-5m", 60, 86_400).is_err());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(0), "0 minutes");
        assert_eq!(duration_text(90), "90 seconds");
        assert_eq!(duration_text(300), "5 minutes");
        assert_eq!(duration_text(3600), "1 hour");
        assert_eq!(duration_text(5400), "1h30m");
    }
}
