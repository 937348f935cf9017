//! Durations written by operators: `300` (seconds) or units largest first (`1h30m`, `250ms`).

use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("ms", 1),
    ("m", 60_000),
    ("s", 1_000),
];

/// Parses `text`; `None` when it is not a duration.
pub(crate) fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_unit_ms = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let amount: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, unit_ms) = UNITS.iter().find(|(unit, _)| rest.starts_with(unit))?;
        if *unit_ms >= last_unit_ms {
            return None;
        }
        last_unit_ms = *unit_ms;
        total_ms = total_ms.checked_add(amount.checked_mul(*unit_ms)?)?;
        rest = &rest[unit.len()..];
    }
    (!text.is_empty()).then(|| Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn seconds_and_units() {
        assert_eq!(parse("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse("1s250ms"), Some(Duration::from_millis(1250)));
    }

    #[test]
    fn rejects_garbage_and_disorder() {
        for bad in ["", "h", "5x", "30m1h", "1m1m", "-5", "5 m"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
