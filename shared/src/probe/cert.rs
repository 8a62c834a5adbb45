//! When an X.509 certificate expires, read from its DER: only the walk to
//! `tbsCertificate.validity.notAfter`, so no certificate-parsing dependency is linked.

/// The certificate's `notAfter`, in epoch seconds; `None` if the DER is not a certificate.
pub fn not_after(der: &[u8]) -> Option<u64> {
    let (certificate, _) = element(der, 0x30)?;
    let (tbs, _) = element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = element(rest, 0xA0)?.1; // explicit version
    }
    rest = element(rest, 0x02)?.1; // serial number
    rest = element(rest, 0x30)?.1; // signature algorithm
    rest = element(rest, 0x30)?.1; // issuer
    let (validity, _) = element(rest, 0x30)?;
    let (_, after_not_before) = any_time(validity)?;
    let (not_after, _) = any_time(after_not_before)?;
    Some(not_after)
}

/// One DER element with tag `tag`: its content and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let bytes = (first & 0x7F) as usize;
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let length = rest[..bytes]
            .iter()
            .fold(0usize, |n, b| (n << 8) | *b as usize);
        (length, &rest[bytes..])
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

/// A UTCTime or GeneralizedTime, as epoch seconds, and what follows it.
fn any_time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (text, rest, century) = match input.first()? {
        0x17 => {
            let (text, rest) = element(input, 0x17)?;
            (text, rest, true)
        }
        0x18 => {
            let (text, rest) = element(input, 0x18)?;
            (text, rest, false)
        }
        _ => return None,
    };
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, offset) = if century {
        let yy = digits(0..2)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
    } else {
        (digits(0..4)?, 4)
    };
    if text.len() != offset + 10 {
        return None;
    }
    let field = |i: usize| digits(offset + i * 2..offset + i * 2 + 2);
    let (month, day, hour, minute, second) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    (seconds >= 0).then_some((seconds as u64, rest))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER TLV, for building minimal certificates.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn certificate(not_before: (u8, &str), not_after: (u8, &str), padding: usize) -> Vec<u8> {
        let validity = [
            tlv(not_before.0, not_before.1.as_bytes()),
            tlv(not_after.0, not_after.1.as_bytes()),
        ]
        .concat();
        let tbs = [
            tlv(0xA0, &tlv(0x02, &[2])),
            tlv(0x02, &[0x01, 0x23]),
            tlv(0x30, &[0x06, 0x00]),
            tlv(0x30, &vec![0x31; padding]),
            tlv(0x30, &validity),
        ]
        .concat();
        tlv(0x30, &[tlv(0x30, &tbs), tlv(0x30, &[])].concat())
    }

    #[test]
    fn utc_and_generalized_times_are_read() {
        let der = certificate((0x17, "260101000000Z"), (0x17, "261118110640Z"), 10);
        assert_eq!(not_after(&der), Some(1_795_000_000));
        let der = certificate((0x17, "260101000000Z"), (0x18, "20500301000000Z"), 300);
        assert_eq!(
            crate::time::utc_text(not_after(&der).unwrap()),
            "2050-03-01 00:00:00 UTC"
        );
        let der = certificate((0x17, "260101000000Z"), (0x17, "491231235959Z"), 0);
        assert_eq!(
            crate::time::utc_text(not_after(&der).unwrap()),
            "2049-12-31 23:59:59 UTC"
        );
        let der = certificate((0x17, "260101000000Z"), (0x17, "500101000000Z"), 0);
        assert_eq!(not_after(&der), None, "1950 is before the epoch");
    }

    #[test]
    fn anything_that_is_not_a_certificate_is_none() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xFF]), None);
        let der = certificate((0x17, "260101000000Z"), (0x17, "261318110640Z"), 0);
        assert_eq!(not_after(&der), None, "month 13");
        let mut truncated = certificate((0x17, "260101000000Z"), (0x17, "261118110640Z"), 0);
        truncated.truncate(truncated.len() - 20);
        assert_eq!(not_after(&truncated), None);
    }
}
