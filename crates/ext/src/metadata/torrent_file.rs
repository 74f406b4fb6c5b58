//! A .torrent from fetched metadata: `announce`/`announce-list` from the magnet's trackers and
//! the info dictionary byte for byte (so the file's info hash is the magnet's).

use bendy::decoding::{Decoder, Object};

use crate::bencode::{write_bytes, DictWriter, MAX_DEPTH};

/// The info bytes are not exactly one bencoded dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata is not a single bencoded dictionary: {0}")]
pub struct TorrentFileError(String);

/// Writes a .torrent: `announce` (first tracker), `announce-list` (one tier per tracker, in
/// order; BEP 12) and `info` = `info` unchanged. Pure; `--save-torrent` uses it.
pub fn torrent_file(info: &[u8], trackers: &[String]) -> Result<Vec<u8>, TorrentFileError> {
    check_single_dict(info)?;
    let mut w = DictWriter::new();
    if let Some(first) = trackers.first() {
        w.bytes(b"announce", first.as_bytes());
        let mut list = vec![b'l'];
        for t in trackers {
            list.push(b'l');
            write_bytes(&mut list, t.as_bytes());
            list.push(b'e');
        }
        list.push(b'e');
        w.raw(b"announce-list", &list);
    }
    w.raw(b"info", info);
    Ok(w.finish())
}

fn check_single_dict(info: &[u8]) -> Result<(), TorrentFileError> {
    let err = |e: &dyn std::fmt::Display| TorrentFileError(e.to_string());
    let mut dec = Decoder::new(info).with_max_depth(MAX_DEPTH);
    let raw = match dec.next_object().map_err(|e| err(&e))? {
        Some(Object::Dict(d)) => d.into_raw().map_err(|e| err(&e))?,
        _ => return Err(err(&"not a dictionary")),
    };
    if raw.len() != info.len() {
        return Err(err(&format!("{} bytes after it", info.len() - raw.len())));
    }
    Ok(())
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
