//! The duration grammar of cachemacro, shared by the attributes (`ttl = "1h30m"`) and the
//! runtime (`CACHEMACRO_TTL_<NAME>=90s`): a whole number and a unit for each of `d`, `h`, `m`,
//! `s`, `ms`, each at most once and largest first, so that every duration has one spelling.
//!
//! ```
//! use std::time::Duration;
//! assert_eq!(cachemacro_duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
//! assert!(cachemacro_duration::parse("30m1h").is_err());
//! ```

use std::time::Duration;

/// Parses a duration string such as `"90s"`, `"1h30m"` or `"1s500ms"`; the error says what is
/// wrong with it and how to write one.
///
/// Each unit (`d`, `h`, `m`, `s`, `ms`) follows a whole number, appears at most once, and the
/// units come largest first, so every duration has one spelling.
pub fn parse(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    const EXAMPLE: &str = "write a number and a unit for each of d, h, m, s, ms, largest first, \
                           like \"1h30m\" or \"1s500ms\"";
    if text.is_empty() {
        return Err(format!("the duration is empty; {EXAMPLE}"));
    }
    let mut total: u64 = 0;
    // Units still allowed: those after the last one used.
    let mut allowed = &UNITS[..];
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}; {EXAMPLE}"));
        }
        let (number, tail) = rest.split_at(digits);
        let unit = unit_prefix(tail);
        if unit.is_empty() {
            return Err(format!("`{number}` has no unit; {EXAMPLE}"));
        }
        let Some(position) = allowed.iter().position(|(known, _)| *known == unit) else {
            return Err(if UNITS.iter().any(|(known, _)| *known == unit) {
                format!("unit `{unit}` is repeated or out of order; {EXAMPLE}")
            } else {
                format!("unknown unit `{unit}`; {EXAMPLE}")
            });
        };
        let millis_per_unit = allowed[position].1;
        allowed = &allowed[position + 1..];
        total = number
            .parse::<u64>()
            .ok()
            .and_then(|count| count.checked_mul(millis_per_unit))
            .and_then(|millis| total.checked_add(millis))
            .ok_or_else(|| "the duration is too large".to_owned())?;
        rest = &tail[unit.len()..];
    }
    Ok(Duration::from_millis(total))
}

/// The unit at the start of `text`: its leading ASCII letters, or else its first character, so
/// that `"1.5h"` reports the unit `.`.
fn unit_prefix(text: &str) -> &str {
    let letters = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let end = match letters {
        0 => text.chars().next().map_or(0, char::len_utf8),
        letters => letters,
    };
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_units() {
        assert_eq!(parse("90s"), Ok(Duration::from_millis(90_000)));
        assert_eq!(parse("5m"), Ok(Duration::from_millis(300_000)));
        assert_eq!(parse("1h"), Ok(Duration::from_millis(3_600_000)));
        assert_eq!(parse("2d"), Ok(Duration::from_millis(172_800_000)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0s"), Ok(Duration::from_millis(0)));
        assert_eq!(parse("0ms"), Ok(Duration::from_millis(0)));
    }

    #[test]
    fn combined_units_largest_first() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_millis(5_400_000)));
        assert_eq!(parse("1d2h3m4s"), Ok(Duration::from_millis(93_784_000)));
        assert_eq!(parse("1d4s"), Ok(Duration::from_millis(86_404_000)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse("1m5ms"), Ok(Duration::from_millis(60_005)));
        assert_eq!(parse("1d2h3m4s5ms"), Ok(Duration::from_millis(93_784_005)));
    }

    #[test]
    fn milliseconds_are_a_unit_of_their_own() {
        // `m` then `s` is minutes then seconds; `ms` only follows a number directly.
        assert_eq!(parse("1m1s"), Ok(Duration::from_millis(61_000)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1_500)));
        assert!(parse("500ms1s")
            .unwrap_err()
            .starts_with("unit `s` is repeated or out of order"));
        assert!(parse("1ms1ms")
            .unwrap_err()
            .starts_with("unit `ms` is repeated or out of order"));
        assert!(parse("5msec")
            .unwrap_err()
            .starts_with("unknown unit `msec`"));
        assert!(parse("5mss").unwrap_err().starts_with("unknown unit `mss`"));
    }

    #[test]
    fn repeated_or_unordered_units() {
        assert!(parse("30m1h")
            .unwrap_err()
            .starts_with("unit `h` is repeated"));
        assert!(parse("1m1m")
            .unwrap_err()
            .starts_with("unit `m` is repeated"));
    }

    #[test]
    fn malformed_durations() {
        assert!(parse("").unwrap_err().starts_with("the duration is empty"));
        assert!(parse("90").unwrap_err().starts_with("`90` has no unit"));
        assert!(parse("h").unwrap_err().starts_with("expected a number"));
        assert!(parse("5x").unwrap_err().starts_with("unknown unit `x`"));
        assert!(parse("1h 30m")
            .unwrap_err()
            .starts_with("expected a number at \" 30m\""));
        assert!(parse("-5s").unwrap_err().starts_with("expected a number"));
        assert!(parse("1.5h").unwrap_err().starts_with("unknown unit `.`"));
        assert!(parse("5µs").unwrap_err().starts_with("unknown unit `µ`"));
    }

    #[test]
    fn overflow() {
        assert_eq!(
            parse("99999999999999999999ms"),
            Err("the duration is too large".to_owned())
        );
        assert_eq!(
            parse("213503982334602d"),
            Err("the duration is too large".to_owned())
        );
        assert_eq!(
            parse("18446744073709552s"),
            Err("the duration is too large".to_owned())
        );
    }
}
