//! The `Range` header of a stream request (RFC 9110 §14): one range of bytes — `bytes=a-b`,
//! `bytes=a-` or `bytes=-n` (the last n bytes). Several ranges (a multipart answer) are not
//! served: media players and browsers ask for one.

use std::ops::Range;

/// Why a `Range` header cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `bytes=` with one well-formed range: 400.
    #[error("bad Range header {0:?}: expected bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX")]
    Malformed(String),
    /// More than one range: 400.
    #[error("Range header {0:?} asks for several ranges; one range per request is served")]
    Several(String),
    /// Starts at or past the end of the file (or asks for none of it): 416.
    #[error("Range header {header:?} lies outside the file ({length} bytes)")]
    Unsatisfiable { header: String, length: u64 },
}

/// The bytes of a file of `length` bytes that `header` asks for: `None` for the whole file
/// (no header).
pub fn parse(header: Option<&str>, length: u64) -> Result<Option<Range<u64>>, RangeError> {
    let Some(raw) = header else {
        return Ok(None);
    };
    let malformed = || RangeError::Malformed(raw.to_owned());
    let (unit, spec) = raw.trim().split_once('=').ok_or_else(malformed)?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Err(malformed());
    }
    if spec.contains(',') {
        return Err(RangeError::Several(raw.to_owned()));
    }
    let (first, last) = spec.trim().split_once('-').ok_or_else(malformed)?;
    let unsatisfiable = || RangeError::Unsatisfiable {
        header: raw.to_owned(),
        length,
    };
    let range = match (number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || length == 0 {
                return Err(unsatisfiable());
            }
            length - n.min(length)..length
        }
        (Some(a), None) if last.is_empty() => a..length,
        (Some(a), Some(b)) if a <= b => a..b.saturating_add(1).min(length),
        _ => return Err(malformed()),
    };
    if range.start >= length {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

/// Digits only (no sign, no space inside); a number past u64 is as good as infinite.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_a_single_range() {
        let p = |h: &str| parse(Some(h), 1000);
        assert_eq!(parse(None, 1000), Ok(None));
        assert_eq!(p("bytes=0-0"), Ok(Some(0..1)));
        assert_eq!(p("bytes=100-199"), Ok(Some(100..200)));
        assert_eq!(p("bytes=500-"), Ok(Some(500..1000)));
        assert_eq!(p("bytes=-1"), Ok(Some(999..1000)));
        assert_eq!(p("bytes=-100"), Ok(Some(900..1000)));
        // Past the end is cut to the end (RFC 9110 §14.1.2), as is a suffix longer than it.
        assert_eq!(p("bytes=900-5000"), Ok(Some(900..1000)));
        assert_eq!(p("bytes=-5000"), Ok(Some(0..1000)));
        assert_eq!(p("bytes=0-99999999999999999999999"), Ok(Some(0..1000)));
        assert_eq!(p(" Bytes = 1-2 "), Ok(Some(1..3)));
    }

    #[test]
    fn outside_the_file_is_unsatisfiable() {
        for h in [
            "bytes=1000-",
            "bytes=1000-1001",
            "bytes=-0",
            "bytes=99999999999999999999-",
        ] {
            assert!(
                matches!(
                    parse(Some(h), 1000),
                    Err(RangeError::Unsatisfiable { length: 1000, .. })
                ),
                "{h}"
            );
        }
        assert!(matches!(
            parse(Some("bytes=0-"), 0),
            Err(RangeError::Unsatisfiable { .. })
        ));
        assert!(matches!(
            parse(Some("bytes=-5"), 0),
            Err(RangeError::Unsatisfiable { .. })
        ));
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for h in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-4",
            "bytes=+1-2",
            "bytes=1 -2",
            "bytes=1-2-3",
            "items=0-1",
            "bytes=0x10-",
        ] {
            let e = parse(Some(h), 1000).unwrap_err();
            assert!(matches!(e, RangeError::Malformed(_)), "{h}: {e:?}");
            assert!(e.to_string().contains("expected bytes="), "{e}");
        }
        assert!(matches!(
            parse(Some("bytes=0-1,5-6"), 1000),
            Err(RangeError::Several(_))
        ));
    }
}
