//! Epoch seconds as text people and AWS read, without a date-time dependency.

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
}
