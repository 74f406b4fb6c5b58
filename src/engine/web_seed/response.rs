//! What a web seed's answer to one Range request must look like, and why it failed when it
//! does not (pure: status and headers in, a verdict out).

use std::time::Duration;

/// Why a request to a web seed failed (its status says this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("too slow: less than 16 KiB in {0:?}")]
    TooSlow(Duration),
    #[error("file not found (404)")]
    NotFound,
    #[error("range not satisfiable (416): the file is shorter than the torrent says")]
    RangeNotSatisfiable,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("server error (HTTP {0})")]
    ServerError(u16),
    #[error("the server ignored the Range header (200 for a range not at the file's start)")]
    RangeIgnored,
    #[error("wrong Content-Range {got:?} (asked for bytes {start}-{end})")]
    WrongContentRange { got: String, start: u64, end: u64 },
    #[error("body ended after {got} of {want} bytes")]
    ShortBody { got: u64, want: u64 },
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("bad redirect: {0}")]
    BadRedirect(String),
}

/// How to read the body of an accepted answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// 206 with exactly the range asked for.
    Partial,
    /// 200 for a range that starts at the file's first byte: the first `len` bytes are ours,
    /// the rest is not read.
    Whole,
}

/// Checks the head of the answer to `Range: bytes=start-(start+len-1)`. Redirects are the
/// caller's (they are followed before this).
pub fn check_head(
    status: u16,
    content_range: Option<&str>,
    start: u64,
    len: u64,
) -> Result<Accepted, FetchError> {
    let end = start + len.max(1) - 1;
    match status {
        206 => {
            let got = content_range.unwrap_or("").trim();
            match parse_content_range(got) {
                Some((a, b)) if a == start && b == end => Ok(Accepted::Partial),
                _ => Err(FetchError::WrongContentRange {
                    got: got.chars().take(100).collect(),
                    start,
                    end,
                }),
            }
        }
        200 if start == 0 => Ok(Accepted::Whole),
        200 => Err(FetchError::RangeIgnored),
        404 | 410 => Err(FetchError::NotFound),
        416 => Err(FetchError::RangeNotSatisfiable),
        500..=599 => Err(FetchError::ServerError(status)),
        s => Err(FetchError::Status(s)),
    }
}

/// `bytes a-b/total` (total may be `*`) → (a, b).
fn parse_content_range(s: &str) -> Option<(u64, u64)> {
    let rest = s.strip_prefix("bytes")?.trim_start();
    let (range, _total) = rest.split_once('/')?;
    let (a, b) = range.trim().split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// The `Range` header value for `len` bytes from `start`.
pub fn range_header(start: u64, len: u64) -> String {
    format!("bytes={start}-{}", start + len.max(1) - 1)
}

/// Growing delays after failures in a row: 2 s, 4 s, 8 s, … up to 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(300);
    let shift = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << shift).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_206_must_carry_exactly_the_range_asked_for() {
        assert_eq!(
            check_head(206, Some("bytes 100-199/1000"), 100, 100),
            Ok(Accepted::Partial)
        );
        assert_eq!(
            check_head(206, Some("bytes 100-199/*"), 100, 100),
            Ok(Accepted::Partial)
        );
        for bad in [
            None,
            Some("bytes 0-99/1000"),
            Some("bytes 100-198/1000"),
            Some("bytes 100-299/1000"),
            Some("items 100-199/1000"),
            Some("bytes 199-100/1000"),
            Some("garbage"),
        ] {
            assert!(
                matches!(
                    check_head(206, bad, 100, 100),
                    Err(FetchError::WrongContentRange { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_200_is_only_good_from_the_first_byte_and_errors_are_named() {
        assert_eq!(check_head(200, None, 0, 100), Ok(Accepted::Whole));
        assert_eq!(check_head(200, None, 5, 100), Err(FetchError::RangeIgnored));
        assert_eq!(check_head(404, None, 0, 1), Err(FetchError::NotFound));
        assert_eq!(
            check_head(416, None, 0, 1),
            Err(FetchError::RangeNotSatisfiable)
        );
        assert_eq!(
            check_head(503, None, 0, 1),
            Err(FetchError::ServerError(503))
        );
        assert_eq!(check_head(403, None, 0, 1), Err(FetchError::Status(403)));
        assert_eq!(range_header(100, 100), "bytes=100-199");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(4), Duration::from_secs(16));
        assert_eq!(backoff(30), Duration::from_secs(300));
        assert!((1..40).all(|n| backoff(n) <= backoff(n + 1)));
    }
}
