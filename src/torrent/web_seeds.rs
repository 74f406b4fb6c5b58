//! Web seeds (BEP 19, `url-list`): which URLs of a metainfo are usable, and where a range of
//! the torrent's byte stream is on them.
//!
//! Pure: no I/O. A single-file torrent's URL is the file itself (a URL ending in `/` gets the
//! torrent's name appended); a multi-file torrent's URL is a directory below which the files
//! are at `name/path/segments`, each segment percent-encoded. Names and paths are taken from
//! the info dictionary as written (not as sanitised for our disk): that is what the creator's
//! web server has.
//!
//! Unusable entries (not http/https, no host, garbage, duplicates, too many) are left out with
//! a reason ([`IgnoredWebSeed`]); they never make the torrent unusable.

use bt_bencode::Value;
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::meta::{Metainfo, DECODER};

/// Web seeds used per torrent; the rest are ignored (each one costs connections).
pub const MAX_WEB_SEEDS: usize = 16;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a `url-list` entry is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebSeedUrlError {
    #[error("not a string")]
    NotAString,
    #[error("not UTF-8")]
    NotUtf8,
    #[error("longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("not a URL: {0}")]
    Malformed(String),
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("no host")]
    NoHost,
    #[error("user name or password in the URL")]
    Credentials,
    #[error("a query string, under which a multi-file torrent's paths cannot be appended")]
    QueryOnDirectory,
    #[error("listed twice")]
    Duplicate,
    #[error("more than {MAX_WEB_SEEDS} web seeds")]
    TooMany,
}

/// A `url-list` entry left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredWebSeed {
    /// The entry as written (lossily decoded, cut to [`MAX_URL_LEN`]).
    pub url: String,
    pub reason: WebSeedUrlError,
}

/// Reads `url-list` (one string or a list of strings): the usable URLs in order, and the
/// entries left out.
pub fn parse_url_list(v: &Value<'_>, multi_file: bool) -> (Vec<String>, Vec<IgnoredWebSeed>) {
    let items: Vec<&Value<'_>> = match v {
        Value::List(l) => l.items().iter().collect(),
        other => vec![other],
    };
    let mut good: Vec<String> = Vec::new();
    let mut ignored = Vec::new();
    for item in items {
        let raw = match item.as_bytes() {
            Some(b) => b,
            None => {
                ignored.push(IgnoredWebSeed {
                    url: String::new(),
                    reason: WebSeedUrlError::NotAString,
                });
                continue;
            }
        };
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(MAX_URL_LEN)]).into_owned();
        // BEP 19 torrents in the wild carry empty strings for "no web seed".
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let checked = std::str::from_utf8(raw)
            .map_err(|_| WebSeedUrlError::NotUtf8)
            .and_then(|s| check_url(s, multi_file));
        match checked {
            Ok(u) if good.contains(&u) => ignored.push(IgnoredWebSeed {
                url: shown,
                reason: WebSeedUrlError::Duplicate,
            }),
            Ok(_) if good.len() >= MAX_WEB_SEEDS => ignored.push(IgnoredWebSeed {
                url: shown,
                reason: WebSeedUrlError::TooMany,
            }),
            Ok(u) => good.push(u),
            Err(reason) => ignored.push(IgnoredWebSeed { url: shown, reason }),
        }
    }
    (good, ignored)
}

/// Checks one web seed URL; returns it normalised (fragment dropped).
pub fn check_url(s: &str, multi_file: bool) -> Result<String, WebSeedUrlError> {
    let s = s.trim();
    if s.len() > MAX_URL_LEN {
        return Err(WebSeedUrlError::TooLong);
    }
    let mut u = url::Url::parse(s).map_err(|e| WebSeedUrlError::Malformed(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(WebSeedUrlError::Scheme(u.scheme().to_string()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(WebSeedUrlError::NoHost);
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(WebSeedUrlError::Credentials);
    }
    if multi_file && u.query().is_some() {
        return Err(WebSeedUrlError::QueryOnDirectory);
    }
    u.set_fragment(None);
    Ok(u.to_string())
}

/// RFC 3986's unreserved characters stay; everything else in a path segment is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One file of the torrent as a web server has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WebFile {
    /// `name/seg/seg` (multi-file) or `name`, percent-encoded.
    rel: String,
    offset: u64,
    length: u64,
    /// BEP 47 padding: zeros, never on the server.
    pad: bool,
}

/// Where the torrent's bytes are below a web seed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLayout {
    files: Vec<WebFile>,
    multi_file: bool,
}

/// A part of a byte range: bytes `[start, start + len)` of the file at `url`, or `len` zeros
/// of a padding file (`url` None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub url: Option<String>,
    pub start: u64,
    pub len: u64,
}

impl WebLayout {
    /// The layout of `meta`, with names and paths as its info dictionary writes them.
    pub fn new(meta: &Metainfo) -> Self {
        let raw = raw_names(meta);
        let enc = |b: &[u8]| percent_encode(b, SEGMENT).to_string();
        let files = meta
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let rel = match &raw {
                    Some((name, paths)) if meta.is_multi_file() => {
                        let mut rel = enc(name);
                        for seg in &paths[i] {
                            rel.push('/');
                            rel.push_str(&enc(seg));
                        }
                        rel
                    }
                    Some((name, _)) => enc(name),
                    // Not reached for a metainfo that parsed; the sanitised path is the best
                    // guess.
                    None => {
                        let mut rel = enc(meta.name.as_bytes());
                        if meta.is_multi_file() {
                            for c in f.path.iter() {
                                rel.push('/');
                                rel.push_str(&enc(c.as_encoded_bytes()));
                            }
                        }
                        rel
                    }
                };
                WebFile {
                    rel,
                    offset: f.offset,
                    length: f.length,
                    pad: f.pad,
                }
            })
            .collect();
        Self {
            files,
            multi_file: meta.is_multi_file(),
        }
    }

    /// The URL of file `index` on the web seed at `base`.
    fn file_url(&self, base: &str, index: usize) -> String {
        let f = &self.files[index];
        if self.multi_file {
            let sep = if base.ends_with('/') { "" } else { "/" };
            format!("{base}{sep}{}", f.rel)
        } else if base.ends_with('/') {
            format!("{base}{}", f.rel)
        } else {
            base.to_string()
        }
    }

    /// Where bytes `[offset, offset + len)` of the torrent's stream are on the web seed at
    /// `base`: one span per file touched, in order (empty files are skipped).
    pub fn spans(&self, base: &str, offset: u64, len: u64) -> Vec<Span> {
        let end = offset.saturating_add(len);
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= offset);
        let mut out = Vec::new();
        for (i, f) in self.files.iter().enumerate().skip(first) {
            if f.offset >= end {
                break;
            }
            if f.length == 0 {
                continue;
            }
            let from = offset.max(f.offset);
            let to = end.min(f.offset + f.length);
            out.push(Span {
                url: (!f.pad).then(|| self.file_url(base, i)),
                start: from - f.offset,
                len: to - from,
            });
        }
        out
    }
}

/// The raw `name` and each file's raw `path` segments from the info dictionary.
type RawNames = (Vec<u8>, Vec<Vec<Vec<u8>>>);

fn raw_names(meta: &Metainfo) -> Option<RawNames> {
    let Ok(Value::Dict(d)) = DECODER.decode(&meta.info_bytes) else {
        return None;
    };
    let name = d.get(b"name")?.as_bytes()?.to_vec();
    let mut paths = Vec::new();
    if meta.is_multi_file() {
        for f in d.get(b"files")?.as_list()? {
            let segs = f.as_dict()?.get(b"path")?.as_list()?;
            let segs = segs
                .iter()
                .map(|s| s.as_bytes().map(<[u8]>::to_vec))
                .collect::<Option<Vec<_>>>()?;
            paths.push(segs);
        }
        if paths.len() != meta.files.len() {
            return None;
        }
    }
    Some((name, paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&[u8]]) -> Vec<u8> {
        let mut l = bt_bencode::ListWriter::new();
        for i in items {
            l.bytes(i);
        }
        l.finish()
    }

    #[test]
    fn a_single_string_or_a_list_and_garbage_is_left_out_with_a_reason() {
        let one = b"22:http://a.example/x.iso";
        let v = DECODER.decode(one).unwrap();
        assert_eq!(
            parse_url_list(&v, false).0,
            vec!["http://a.example/x.iso".to_string()]
        );
        let raw = list(&[
            b"https://a.example/d/",
            b"ftp://a.example/x",
            b"not a url",
            b"https://a.example/d/",
            b"",
            b"http://",
            b"http://user:pw@a.example/",
            b"\xff\xfe",
        ]);
        let v = DECODER.decode(&raw).unwrap();
        let (good, bad) = parse_url_list(&v, true);
        assert_eq!(good, vec!["https://a.example/d/".to_string()]);
        let reasons: Vec<_> = bad.iter().map(|b| b.reason.clone()).collect();
        assert_eq!(reasons[0], WebSeedUrlError::Scheme("ftp".into()));
        assert!(matches!(reasons[1], WebSeedUrlError::Malformed(_)));
        assert_eq!(reasons[2], WebSeedUrlError::Duplicate);
        assert!(matches!(
            reasons[3],
            WebSeedUrlError::NoHost | WebSeedUrlError::Malformed(_)
        ));
        assert_eq!(reasons[4], WebSeedUrlError::Credentials);
        assert_eq!(reasons[5], WebSeedUrlError::NotUtf8);
        assert_eq!(bad.len(), 6, "the empty entry is no web seed at all");
        // An integer in the list.
        let v = DECODER.decode(b"li3ee").unwrap();
        assert_eq!(
            parse_url_list(&v, false).1[0].reason,
            WebSeedUrlError::NotAString
        );
    }

    #[test]
    fn more_than_the_cap_are_ignored_and_a_query_cannot_hold_a_directory() {
        let urls: Vec<String> = (0..MAX_WEB_SEEDS + 2)
            .map(|i| format!("http://h{i}.example/f"))
            .collect();
        let refs: Vec<&[u8]> = urls.iter().map(|u| u.as_bytes()).collect();
        let raw = list(&refs);
        let (good, bad) = parse_url_list(&DECODER.decode(&raw).unwrap(), false);
        assert_eq!(good.len(), MAX_WEB_SEEDS);
        assert_eq!(bad.len(), 2);
        assert!(bad.iter().all(|b| b.reason == WebSeedUrlError::TooMany));
        assert_eq!(
            check_url("http://a.example/get?f=1", true),
            Err(WebSeedUrlError::QueryOnDirectory)
        );
        assert!(check_url("http://a.example/get?f=1", false).is_ok());
    }

    fn multi() -> Metainfo {
        // Files: "a b/c.txt" (5 bytes), pad (3 bytes), "d%.bin" (10 bytes); name "T ü".
        let mut info = b"d5:filesl".to_vec();
        info.extend_from_slice(b"d6:lengthi5e4:pathl3:a b5:c.txtee");
        info.extend_from_slice(b"d4:attr1:p6:lengthi3e4:pathl4:.pad1:3ee");
        info.extend_from_slice(b"d6:lengthi10e4:pathl6:d%.binee");
        info.extend_from_slice(b"e4:name4:T \xc3\xbc12:piece lengthi16384e6:pieces20:");
        info.extend_from_slice(&[0u8; 20]);
        info.push(b'e');
        Metainfo::from_info_bytes(&info).unwrap()
    }

    #[test]
    fn multi_file_urls_are_name_and_path_percent_encoded_below_the_directory() {
        let m = multi();
        let l = WebLayout::new(&m);
        // A range over all three files, from inside the first.
        let spans = l.spans("http://h.example/seeds", 2, 16);
        assert_eq!(
            spans,
            vec![
                Span {
                    url: Some("http://h.example/seeds/T%20%C3%BC/a%20b/c.txt".into()),
                    start: 2,
                    len: 3
                },
                Span {
                    url: None,
                    start: 0,
                    len: 3
                },
                Span {
                    url: Some("http://h.example/seeds/T%20%C3%BC/d%25.bin".into()),
                    start: 0,
                    len: 10
                },
            ]
        );
        // A trailing slash is not doubled; a range inside one file is one span.
        assert_eq!(
            l.spans("http://h.example/seeds/", 9, 4),
            vec![Span {
                url: Some("http://h.example/seeds/T%20%C3%BC/d%25.bin".into()),
                start: 1,
                len: 4
            }]
        );
    }

    #[test]
    fn a_single_file_url_is_the_file_unless_it_is_a_directory() {
        let mut info = b"d6:lengthi100e4:name5:x.iso12:piece lengthi16384e6:pieces20:".to_vec();
        info.extend_from_slice(&[0u8; 20]);
        info.push(b'e');
        let m = Metainfo::from_info_bytes(&info).unwrap();
        let l = WebLayout::new(&m);
        assert_eq!(
            l.spans("http://h.example/mirror/other-name.iso", 10, 5)[0].url,
            Some("http://h.example/mirror/other-name.iso".into())
        );
        assert_eq!(
            l.spans("http://h.example/mirror/", 10, 5)[0].url,
            Some("http://h.example/mirror/x.iso".into())
        );
    }
}
