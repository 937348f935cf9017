//! Durations written by operators (`CACHEMACRO_TTL_<NAME>`): whole seconds (`300`), as an
//! attribute's integer, or a duration in the attributes' grammar (`1h30m`, `250ms`).

use std::time::Duration;

/// Parses `text`; `None` when it is not a duration.
pub(crate) fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => cachemacro_duration::parse(text).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn seconds_and_units() {
        assert_eq!(parse("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse(" 90s "), Some(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1s250ms"), Some(Duration::from_millis(1250)));
    }

    #[test]
    fn rejects_what_the_attributes_reject() {
        for bad in ["", "h", "5x", "30m1h", "1m1m", "-5", "5 m"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
