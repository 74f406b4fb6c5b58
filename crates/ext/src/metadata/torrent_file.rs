//! A .torrent from fetched metadata: `announce`/`announce-list` from the magnet's trackers and
//! the info dictionary byte for byte (so the file's info hash is the magnet's).

use bt_bencode::{DictWriter, ListWriter, Value};

use crate::bencode::{NotADict, DECODER};

/// The info bytes are not exactly one bencoded dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata is not a single bencoded dictionary: {0}")]
pub struct TorrentFileError(#[from] NotADict);

/// Writes a .torrent: `announce` (first tracker), `announce-list` (one tier per tracker, in
/// order; BEP 12) and `info` = `info` unchanged. Pure; `--save-torrent` uses it.
pub fn torrent_file(info: &[u8], trackers: &[String]) -> Result<Vec<u8>, TorrentFileError> {
    torrent_file_with_web_seeds(info, trackers, &[])
}

/// As [`torrent_file`], with the magnet link's web seeds (`ws`) as `url-list` (BEP 19).
pub fn torrent_file_with_web_seeds(
    info: &[u8],
    trackers: &[String],
    web_seeds: &[String],
) -> Result<Vec<u8>, TorrentFileError> {
    check_single_dict(info)?;
    let mut w = DictWriter::new();
    if let Some(first) = trackers.first() {
        w.bytes("announce", first);
        let mut tiers = ListWriter::new();
        for t in trackers {
            let mut tier = ListWriter::new();
            tier.bytes(t);
            tiers.list(tier);
        }
        w.list("announce-list", tiers);
    }
    if !web_seeds.is_empty() {
        let mut list = ListWriter::new();
        for u in web_seeds {
            list.bytes(u);
        }
        w.list("url-list", list);
    }
    w.raw("info", info);
    Ok(w.finish())
}

fn check_single_dict(info: &[u8]) -> Result<(), TorrentFileError> {
    // An info dictionary may hold many more values than a message (one per file and path
    // component); its size is bounded by the caller (MAX_METADATA_SIZE).
    match DECODER.with_max_items(usize::MAX).decode(info) {
        Ok(Value::Dict(_)) => Ok(()),
        Ok(_) => Err(NotADict::OtherValue.into()),
        Err(e) => Err(NotADict::from(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_trackers_and_info_verbatim() {
        let info = b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let t = torrent_file(info, &["udp://a:1".into(), "http://b/announce".into()]).unwrap();
        let want = [
            &b"d8:announce9:udp://a:113:announce-listll9:udp://a:1el17:http://b/announceee4:info"[..],
            info,
            b"e",
        ]
        .concat();
        assert_eq!(t, want);
        assert_eq!(
            torrent_file(info, &[]).unwrap(),
            [&b"d4:info"[..], info, b"e"].concat()
        );
        for bad in [&b"le"[..], b"d1:a", b"de1", b""] {
            assert!(torrent_file(bad, &[]).is_err(), "{bad:?}");
        }
    }
}
