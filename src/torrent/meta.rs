//! BitTorrent v1 metainfo (`.torrent`): parsing, validation and creation.
//!
//! # Parsing
//! [`Metainfo::from_bytes`] reads a `.torrent` with bt-bencode ([`DECODER`]). The info hash is
//! the SHA-1 of the `info` dictionary's bytes *exactly as they appear in the file* (its raw
//! span, never re-encoded). Those bytes are kept in [`Metainfo::info_bytes`] for serving
//! metadata (BEP 9) later; [`Metainfo::from_info_bytes`] parses an info dictionary alone
//! (e.g. fetched from peers for a magnet link).
//!
//! Torrents from the wild sometimes break BEP 3's rule that dictionary keys be sorted and
//! unique, and libtorrent accepts them, so the reader is lenient: keys in any order, the
//! first of duplicate keys wins (as in libtorrent), non-canonical numbers; the info hash is
//! still taken over the raw `info` bytes of the file. Nesting deeper than [`MAX_DEPTH`] and
//! more than [`MAX_ITEMS`] values are rejected, so hostile input can exhaust neither the
//! stack nor memory.
//!
//! # Paths: what is rejected, what is sanitised
//! File paths come from the network/file and are joined under a download
//! directory, so each path component is checked by [`sanitize_component`]:
//! * **rejected** ([`MetaError::UnsafePath`]): empty components, `.` and `..`,
//!   components containing `/` or NUL (the only ways to make an absolute or
//!   escaping path on Unix). These never occur in honest torrents.
//! * **sanitised** (replaced by `_`): `\` and ASCII control characters, on
//!   every platform; on Windows additionally `<>:"|?*`, trailing dots and
//!   spaces, and reserved device names (`CON`, `NUL`, `COM1`, `aux.c`, …, which
//!   get a `_` appended to their stem). These are legal and harmless on Unix,
//!   so Unix keeps such names byte-for-byte (the Linux kernel tree has an
//!   `aux.c`), and the on-disk layout stays compatible with other clients.
//!
//! Duplicate paths after sanitising, and a file whose path is also used as a
//! directory by another file, are rejected ([`MetaError::DuplicatePath`]).
//!
//! [`FileEntry::path`] is relative to the *content root*: for a single-file
//! torrent it is the file name (`name`); for a multi-file torrent it does
//! **not** include the torrent's `name` directory — the storage layer joins it
//! under the output directory chosen by the user (the original client's
//! `-outPath` convention), which defaults to `name`.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bt_bencode::{Decoder, Dict, DictWriter, ListWriter, Value};
use bytes::Bytes;
use sha1::{Digest, Sha1};

/// Largest accepted piece length (256 MiB). Anything larger is treated as
/// corrupt/hostile input: pieces are hashed and buffered whole.
pub const MAX_PIECE_LENGTH: u32 = 256 << 20;
/// Smallest piece length [`create`] accepts and picks.
pub const MIN_CREATE_PIECE_LENGTH: u32 = 16 << 10;
/// Largest piece length [`create`] picks automatically.
pub const MAX_AUTO_PIECE_LENGTH: u32 = 16 << 20;
/// [`create`] aims at about this many pieces when choosing a piece length.
pub const TARGET_PIECES: u64 = 1500;
/// Maximum bencode nesting depth accepted (a torrent needs 5).
pub const MAX_DEPTH: usize = 32;
/// Most bencode values accepted in one torrent (libtorrent's default token limit is 3 M):
/// bounds what a hostile file can make us allocate.
pub const MAX_ITEMS: usize = 3_000_000;
/// How torrents are read: leniently (see the module docs); integers too large for an `i64`
/// are read so that the field can be named ([`MetaError::BadInteger`]).
pub const DECODER: Decoder = Decoder::LENIENT
    .with_max_depth(MAX_DEPTH)
    .with_max_items(MAX_ITEMS)
    .with_big_integers(true);

/// One file of the torrent's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative, sanitised path (see the module docs for what it is relative to).
    pub path: PathBuf,
    /// Length in bytes (may be 0).
    pub length: u64,
    /// Offset of the file's first byte in the torrent's concatenated byte stream.
    pub offset: u64,
    /// A BEP 47 padding file (`attr` contains `p`, as libtorrent 2 writes between the files
    /// of hybrid torrents): zeros that align the next file to a piece; never on disk.
    pub pad: bool,
}

/// A parsed and validated BitTorrent v1 metainfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 of the raw `info` dictionary bytes.
    pub info_hash: [u8; 20],
    /// Sanitised torrent name (file name, or directory name for multi-file).
    pub name: String,
    /// Nominal piece length; the last piece may be shorter.
    pub piece_length: u32,
    /// Expected SHA-1 of every piece.
    pub pieces: Vec<[u8; 20]>,
    /// Files in byte-stream order, with their offsets.
    pub files: Vec<FileEntry>,
    /// Sum of all file lengths (> 0).
    pub total_length: u64,
    /// `announce` URL.
    pub announce: Option<String>,
    /// BEP 12 `announce-list` tiers (empty if absent).
    pub announce_list: Vec<Vec<String>>,
    /// BEP 19 `url-list`: usable web seed URLs (see `torrent::web_seeds`).
    pub web_seeds: Vec<String>,
    /// `url-list` entries left out, and why.
    pub web_seeds_ignored: Vec<super::web_seeds::IgnoredWebSeed>,
    /// BEP 27 `private` flag.
    pub private: bool,
    /// DHT nodes from the top-level `nodes` key (BEP 5 `[["host", port], ...]`, and the
    /// original client's `[["ISD-AS,[IP]", port], ...]`); unusable entries are left out.
    pub nodes: Vec<crate::scion::PeerAddr>,
    /// Free-text comment.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date` (seconds since the Unix epoch).
    pub creation_date: Option<i64>,
    /// The raw `info` dictionary exactly as in the file (hashes to `info_hash`).
    pub info_bytes: Bytes,
    multi_file: bool,
}

/// Errors from parsing, validating or creating a metainfo.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Not bencode: truncated, bad token, too deep, too many values.
    #[error("malformed bencode: {0}")]
    Bencode(#[from] bt_bencode::Error),
    /// A required field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong bencode type.
    #[error("field `{field}` has the wrong type (expected {expected})")]
    WrongType {
        /// Field name.
        field: &'static str,
        /// Expected bencode type.
        expected: &'static str,
    },
    /// An integer does not fit in 64 bits.
    #[error("field `{0}` is not a valid 64-bit integer")]
    BadInteger(&'static str),
    /// `pieces` length is not a multiple of 20.
    #[error("`pieces` is {0} bytes long, not a multiple of 20")]
    PiecesLength(usize),
    /// Number of piece hashes does not match the total length.
    #[error("torrent has {actual} piece hashes but its length needs {expected}")]
    PieceCount {
        /// Pieces needed for `total_length` at `piece_length`.
        expected: u64,
        /// Hashes present.
        actual: usize,
    },
    /// Zero, negative or absurdly large piece length (or, for [`create`], not a power of two).
    #[error("invalid piece length {0}")]
    PieceLength(i64),
    /// A negative file length.
    #[error("negative file length {0}")]
    NegativeLength(i64),
    /// Total length overflows 64 bits.
    #[error("total length overflows")]
    LengthOverflow,
    /// No data: zero total length or no files.
    #[error("torrent contains no data")]
    Empty,
    /// Both or neither of `length` and `files` in the info dictionary.
    #[error("info must have exactly one of `length` (single file) and `files` (multi-file)")]
    AmbiguousLayout,
    /// A path component that would escape or is malformed.
    #[error("unsafe path component {component:?}: {reason}")]
    UnsafePath {
        /// The offending component (lossily decoded).
        component: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Two files map to the same path, or a file path is also used as a directory.
    #[error("duplicate or conflicting path {0:?}")]
    DuplicatePath(PathBuf),
    /// Extra bytes after a standalone info dictionary.
    #[error("trailing data after the info dictionary")]
    TrailingData,
    /// I/O error while creating a torrent.
    #[error("{path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The source for [`create`] cannot be turned into a torrent.
    #[error("cannot create torrent: {0}")]
    Create(String),
}

impl Metainfo {
    /// Parses and validates a `.torrent` file's contents (bytes after the root dictionary
    /// are ignored). Unsorted and duplicate keys are read as libtorrent reads them; the info
    /// hash is over the raw `info` bytes as they appear in the file.
    pub fn from_bytes(data: &[u8]) -> Result<Metainfo, MetaError> {
        let (root, _used) = DECODER.decode_prefix(data)?;
        let Value::Dict(root) = root else {
            return Err(MetaError::WrongType {
                field: "(root)",
                expected: "dictionary",
            });
        };
        let info = match root.get(b"info") {
            Some(Value::Dict(info)) => info,
            Some(_) => {
                return Err(MetaError::WrongType {
                    field: "info",
                    expected: "dictionary",
                })
            }
            None => return Err(MetaError::MissingField("info")),
        };
        let mut meta = parse_info(info)?.build(info.raw())?;
        // Optional top-level fields of the wrong type are ignored (as other
        // clients do): they must not make a valid torrent unusable.
        meta.announce = root.get(b"announce").and_then(opt_string);
        if let Some(Value::List(tiers)) = root.get(b"announce-list") {
            meta.announce_list = parse_announce_list(tiers);
        }
        if let Some(Value::List(l)) = root.get(b"nodes") {
            meta.nodes = bt_dht::parse_torrent_nodes(l.raw())
                .map(|(ok, _unusable)| ok)
                .unwrap_or_default();
        }
        if let Some(v) = root.get(b"url-list") {
            (meta.web_seeds, meta.web_seeds_ignored) =
                super::web_seeds::parse_url_list(v, meta.multi_file);
        }
        meta.comment = root.get(b"comment").and_then(opt_string);
        meta.created_by = root.get(b"created by").and_then(opt_string);
        meta.creation_date = root.get(b"creation date").and_then(Value::as_int);
        Ok(meta)
    }

    /// Parses and validates a bare info dictionary (e.g. received via BEP 9).
    /// The info hash is the SHA-1 of `info`; trailing bytes are an error. Unsorted keys are
    /// tolerated as in [`Metainfo::from_bytes`].
    pub fn from_info_bytes(info: &[u8]) -> Result<Metainfo, MetaError> {
        let (value, used) = DECODER.decode_prefix(info)?;
        let Value::Dict(d) = value else {
            return Err(MetaError::WrongType {
                field: "info",
                expected: "dictionary",
            });
        };
        if used != info.len() {
            return Err(MetaError::TrailingData);
        }
        parse_info(&d)?.build(info)
    }

    /// Number of pieces.
    /// Whether it names any tracker (`announce` or `announce-list`).
    pub fn has_trackers(&self) -> bool {
        self.announce.is_some() || self.announce_list.iter().any(|t| !t.is_empty())
    }

    pub fn num_pieces(&self) -> u32 {
        // Validated at parse time: fits in u32.
        self.pieces.len() as u32
    }

    /// Length of piece `index` (the last one may be short); 0 if out of range.
    pub fn piece_len(&self, index: u32) -> u32 {
        let n = self.num_pieces();
        if index >= n {
            0
        } else if index + 1 < n {
            self.piece_length
        } else {
            let rest = self.total_length - u64::from(index) * u64::from(self.piece_length);
            rest as u32 // <= piece_length by construction
        }
    }

    /// Offset of piece `index` in the torrent's byte stream.
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.piece_length)
    }

    /// Expected SHA-1 of piece `index`.
    pub fn piece_hash(&self, index: u32) -> Option<&[u8; 20]> {
        self.pieces.get(index as usize)
    }

    /// True for the multi-file layout (`files` list), even with one file.
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// Info hash as lowercase hex.
    pub fn info_hash_hex(&self) -> String {
        self.info_hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

struct ParsedInfo {
    name: String,
    piece_length: u32,
    pieces: Vec<[u8; 20]>,
    files: Vec<FileEntry>,
    total_length: u64,
    private: bool,
    multi_file: bool,
}

impl ParsedInfo {
    fn build(self, raw: &[u8]) -> Result<Metainfo, MetaError> {
        Ok(Metainfo {
            info_hash: Sha1::digest(raw).into(),
            name: self.name,
            piece_length: self.piece_length,
            pieces: self.pieces,
            files: self.files,
            total_length: self.total_length,
            announce: None,
            announce_list: Vec::new(),
            web_seeds: Vec::new(),
            web_seeds_ignored: Vec::new(),
            private: self.private,
            nodes: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            info_bytes: Bytes::copy_from_slice(raw),
            multi_file: self.multi_file,
        })
    }
}

fn opt_string(v: &Value<'_>) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn parse_announce_list(tiers: &[Value<'_>]) -> Vec<Vec<String>> {
    tiers
        .iter()
        .filter_map(Value::as_list)
        .map(|urls| urls.iter().filter_map(opt_string).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect()
}

fn int(v: &Value<'_>, field: &'static str) -> Result<i64, MetaError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BigInt(_) => Err(MetaError::BadInteger(field)),
        _ => Err(MetaError::WrongType {
            field,
            expected: "integer",
        }),
    }
}

fn bytes<'a>(v: &Value<'a>, field: &'static str) -> Result<&'a [u8], MetaError> {
    v.as_bytes().ok_or(MetaError::WrongType {
        field,
        expected: "byte string",
    })
}

fn length(v: &Value<'_>, field: &'static str) -> Result<u64, MetaError> {
    let v = int(v, field)?;
    u64::try_from(v).map_err(|_| MetaError::NegativeLength(v))
}

/// Reads a `path`/`path.utf-8` list into raw components.
fn path_list<'a>(v: &Value<'a>, field: &'static str) -> Result<Vec<&'a [u8]>, MetaError> {
    let l = v.as_list().ok_or(MetaError::WrongType {
        field,
        expected: "list",
    })?;
    l.iter().map(|c| bytes(c, field)).collect()
}

/// A `files` entry before validation: length, raw path components, padding flag.
type RawFile<'a> = (u64, Vec<&'a [u8]>, bool);

fn parse_info<'a>(d: &Dict<'a>) -> Result<ParsedInfo, MetaError> {
    let mut name: Option<&[u8]> = None;
    let mut name_utf8: Option<&[u8]> = None;
    let mut piece_length: Option<i64> = None;
    let mut pieces: Option<&[u8]> = None;
    let mut single_length: Option<u64> = None;
    let mut raw_files: Option<Vec<RawFile<'a>>> = None;
    let mut private = false;

    for (key, value) in d.iter() {
        match key {
            b"name" => name = Some(bytes(value, "name")?),
            b"name.utf-8" => name_utf8 = bytes(value, "name.utf-8").ok(),
            b"piece length" => piece_length = Some(int(value, "piece length")?),
            b"pieces" => pieces = Some(bytes(value, "pieces")?),
            b"length" => single_length = Some(length(value, "length")?),
            b"private" => private = matches!(value, Value::Int(1)),
            b"files" => {
                let list = value.as_list().ok_or(MetaError::WrongType {
                    field: "files",
                    expected: "list",
                })?;
                let mut files = Vec::new();
                for f in list {
                    let fd = f.as_dict().ok_or(MetaError::WrongType {
                        field: "files",
                        expected: "list of dictionaries",
                    })?;
                    let mut len = None;
                    let mut path = None;
                    let mut path_utf8 = None;
                    let mut pad = false;
                    for (k, v) in fd.iter() {
                        match k {
                            b"length" => len = Some(length(v, "files.length")?),
                            b"attr" => pad = matches!(v, Value::Bytes(a) if a.contains(&b'p')),
                            b"path" => path = Some(path_list(v, "files.path")?),
                            b"path.utf-8" => path_utf8 = path_list(v, "files.path.utf-8").ok(),
                            _ => {}
                        }
                    }
                    let len = len.ok_or(MetaError::MissingField("files.length"))?;
                    let path = path.ok_or(MetaError::MissingField("files.path"))?;
                    // Prefer the UTF-8 variant when the plain path is not UTF-8.
                    let path = match path_utf8 {
                        Some(p) if path.iter().any(|c| std::str::from_utf8(c).is_err()) => p,
                        _ => path,
                    };
                    files.push((len, path, pad));
                }
                raw_files = Some(files);
            }
            _ => {}
        }
    }

    let name = name.ok_or(MetaError::MissingField("name"))?;
    let name = match name_utf8 {
        Some(u) if std::str::from_utf8(name).is_err() => u,
        _ => name,
    };
    let name = sanitize_component(&String::from_utf8_lossy(name))?;

    let pl = piece_length.ok_or(MetaError::MissingField("piece length"))?;
    if pl <= 0 || pl > i64::from(MAX_PIECE_LENGTH) {
        return Err(MetaError::PieceLength(pl));
    }
    let piece_length = pl as u32;

    let pieces_raw = pieces.ok_or(MetaError::MissingField("pieces"))?;
    if pieces_raw.len() % 20 != 0 {
        return Err(MetaError::PiecesLength(pieces_raw.len()));
    }

    let (files, total_length, multi_file) = match (single_length, raw_files) {
        (Some(len), None) => {
            let files = vec![FileEntry {
                path: PathBuf::from(&name),
                length: len,
                offset: 0,
                pad: false,
            }];
            (files, len, false)
        }
        (None, Some(raw)) => {
            let mut files = Vec::with_capacity(raw.len());
            let mut offset: u64 = 0;
            let mut seen_files: HashSet<PathBuf> = HashSet::with_capacity(raw.len());
            let mut seen_dirs: HashSet<PathBuf> = HashSet::new();
            for (len, comps, pad) in raw {
                if comps.is_empty() {
                    return Err(MetaError::UnsafePath {
                        component: String::new(),
                        reason: "empty path",
                    });
                }
                let mut path = PathBuf::new();
                for c in comps {
                    let c = sanitize_component(&String::from_utf8_lossy(c))?;
                    path.push(c);
                }
                // Padding is never written, so its path may repeat (".pad/N" for equal N).
                if !pad {
                    // Every proper ancestor is a directory.
                    let mut anc = path.parent();
                    while let Some(a) = anc {
                        if a.as_os_str().is_empty() {
                            break;
                        }
                        seen_dirs.insert(a.to_path_buf());
                        anc = a.parent();
                    }
                    if !seen_files.insert(path.clone()) {
                        return Err(MetaError::DuplicatePath(path));
                    }
                }
                files.push(FileEntry {
                    path,
                    length: len,
                    offset,
                    pad,
                });
                offset = offset.checked_add(len).ok_or(MetaError::LengthOverflow)?;
            }
            if let Some(f) = files.iter().find(|f| !f.pad && seen_dirs.contains(&f.path)) {
                return Err(MetaError::DuplicatePath(f.path.clone()));
            }
            (files, offset, true)
        }
        _ => return Err(MetaError::AmbiguousLayout),
    };
    if total_length == 0 {
        return Err(MetaError::Empty);
    }

    let expected = total_length.div_ceil(u64::from(piece_length));
    let actual = pieces_raw.len() / 20;
    if expected != actual as u64 || expected > u64::from(u32::MAX) {
        return Err(MetaError::PieceCount { expected, actual });
    }
    let pieces = pieces_raw
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();

    Ok(ParsedInfo {
        name,
        piece_length,
        pieces,
        files,
        total_length,
        private,
        multi_file,
    })
}

/// Checks one path component from a torrent and returns the name to use on disk.
///
/// Rejects empty, `.`, `..`, and components containing `/` or NUL; replaces `\`
/// and control characters with `_`; on Windows also sanitises reserved names
/// and characters (see the module docs).
pub fn sanitize_component(c: &str) -> Result<String, MetaError> {
    sanitize_component_for(c, cfg!(windows))
}

/// [`sanitize_component`] with the Windows rules switched on or off explicitly.
pub fn sanitize_component_for(c: &str, windows: bool) -> Result<String, MetaError> {
    let reject = |reason| {
        Err(MetaError::UnsafePath {
            component: c.to_owned(),
            reason,
        })
    };
    if c.is_empty() {
        return reject("empty path component");
    }
    if c == "." || c == ".." {
        return reject("relative path component");
    }
    if c.contains('\0') {
        return reject("contains NUL");
    }
    if c.contains('/') {
        return reject("contains '/'");
    }
    let mut s: String = c
        .chars()
        .map(|ch| {
            let bad = ch == '\\'
                || ch.is_control()
                || (windows && matches!(ch, '<' | '>' | ':' | '"' | '|' | '?' | '*'));
            if bad {
                '_'
            } else {
                ch
            }
        })
        .collect();
    if windows {
        let trimmed = s.trim_end_matches(['.', ' ']);
        if trimmed.len() != s.len() {
            s = if trimmed.is_empty() {
                "_".to_owned()
            } else {
                trimmed.to_owned()
            };
        }
        let stem_end = s.find('.').unwrap_or(s.len());
        let stem = s[..stem_end].trim_end_matches(' ').to_ascii_uppercase();
        let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                && stem.len() == 4
                && stem.as_bytes()[3].is_ascii_digit());
        if reserved {
            s.insert(stem_end, '_');
        }
    }
    // Belt and braces: the result must be exactly one normal component.
    let mut comps = Path::new(&s).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(_)), None) => Ok(s),
        _ => reject("not a single normal path component"),
    }
}

/// Piece length [`create`] picks for `total` bytes: a power of two giving about
/// [`TARGET_PIECES`] pieces, clamped to 16 KiB ..= 16 MiB.
pub fn auto_piece_length(total: u64) -> u32 {
    let want = (total / TARGET_PIECES).max(1);
    let p = want.checked_next_power_of_two().unwrap_or(u64::MAX);
    p.clamp(
        u64::from(MIN_CREATE_PIECE_LENGTH),
        u64::from(MAX_AUTO_PIECE_LENGTH),
    ) as u32
}

struct SourceFile {
    /// Components relative to the source directory (empty for single-file).
    comps: Vec<String>,
    fs_path: PathBuf,
    length: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetaError + '_ {
    move |source| MetaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn checked_name(os: &std::ffi::OsStr, at: &Path) -> Result<String, MetaError> {
    let s = os
        .to_str()
        .ok_or_else(|| MetaError::Create(format!("{}: file name is not UTF-8", at.display())))?;
    let clean = sanitize_component(s)?;
    if clean != s {
        return Err(MetaError::UnsafePath {
            component: s.to_owned(),
            reason: "name would be altered by sanitising; rename it first",
        });
    }
    Ok(clean)
}

/// Sorted recursive walk. Follows symlinks to files; skips symlinked
/// directories (no loops) and special files.
fn walk(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<SourceFile>) -> Result<(), MetaError> {
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let p = e.path();
        entries.push((checked_name(&e.file_name(), &p)?, p));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, p) in entries {
        let lmeta = fs::symlink_metadata(&p).map_err(io_err(&p))?;
        let is_link = lmeta.file_type().is_symlink();
        let meta = if is_link {
            match fs::metadata(&p) {
                Ok(m) => m,
                Err(_) => continue, // dangling link
            }
        } else {
            lmeta
        };
        prefix.push(name);
        if meta.is_file() {
            out.push(SourceFile {
                comps: prefix.clone(),
                fs_path: p,
                length: meta.len(),
            });
        } else if meta.is_dir() && !is_link {
            walk(&p, prefix, out)?;
        }
        prefix.pop();
    }
    Ok(())
}

/// Creates a `.torrent` for `source` (a file, or a directory walked in sorted
/// order including nested directories and empty files) and returns its bytes.
///
/// `piece_length`: `None` picks [`auto_piece_length`]; an explicit value must be
/// a power of two in 16 KiB ..= 256 MiB. The first `announce` URL becomes
/// `announce`; with more than one, all go into `announce-list`, one tier each.
pub fn create(
    source: &Path,
    piece_length: Option<u32>,
    announce: Vec<String>,
    private: bool,
    comment: Option<String>,
) -> Result<Vec<u8>, MetaError> {
    let meta = fs::metadata(source).map_err(io_err(source))?;
    let canon;
    let named = if source.file_name().is_some() {
        source
    } else {
        canon = fs::canonicalize(source).map_err(io_err(source))?;
        canon.as_path()
    };
    let name = named
        .file_name()
        .ok_or_else(|| MetaError::Create("source has no file name".into()))?;
    let name = checked_name(name, source)?;

    let mut files = Vec::new();
    let multi = if meta.is_file() {
        files.push(SourceFile {
            comps: Vec::new(),
            fs_path: source.to_path_buf(),
            length: meta.len(),
        });
        false
    } else if meta.is_dir() {
        walk(source, &mut Vec::new(), &mut files)?;
        if files.is_empty() {
            return Err(MetaError::Empty);
        }
        true
    } else {
        return Err(MetaError::Create(
            "source is neither a file nor a directory".into(),
        ));
    };

    let mut total: u64 = 0;
    for f in &files {
        total = total
            .checked_add(f.length)
            .ok_or(MetaError::LengthOverflow)?;
    }
    if total == 0 {
        return Err(MetaError::Empty);
    }
    let pl = match piece_length {
        None => auto_piece_length(total),
        Some(p) => {
            if !p.is_power_of_two() || !(MIN_CREATE_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&p) {
                return Err(MetaError::PieceLength(i64::from(p)));
            }
            p
        }
    };
    let pieces = hash_files(&files, pl, total)?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);

    let mut info = DictWriter::new();
    if multi {
        let mut list = ListWriter::new();
        for f in &files {
            let mut path = ListWriter::new();
            for c in &f.comps {
                path.bytes(c);
            }
            let mut fd = DictWriter::new();
            fd.int("length", to_i64(f.length)?).list("path", path);
            list.dict(fd);
        }
        info.list("files", list);
    } else {
        info.int("length", to_i64(total)?);
    }
    info.bytes("name", &name)
        .int("piece length", i64::from(pl))
        .bytes("pieces", &pieces);
    if private {
        info.int("private", 1);
    }
    let mut d = DictWriter::new();
    if let Some(first) = announce.first() {
        d.bytes("announce", first);
    }
    if announce.len() > 1 {
        let mut tiers = ListWriter::new();
        for url in &announce {
            let mut tier = ListWriter::new();
            tier.bytes(url);
            tiers.list(tier);
        }
        d.list("announce-list", tiers);
    }
    if let Some(c) = &comment {
        d.bytes("comment", c);
    }
    d.bytes(
        "created by",
        concat!("bittorrent-over-scion ", env!("CARGO_PKG_VERSION")),
    )
    .int("creation date", now)
    .dict("info", info);
    Ok(d.finish())
}

/// A length for bencode (an `i64`).
fn to_i64(n: u64) -> Result<i64, MetaError> {
    i64::try_from(n).map_err(|_| MetaError::LengthOverflow)
}

/// Hashes the concatenated files piece by piece. Fails if a file is shorter
/// than it was when listed.
fn hash_files(files: &[SourceFile], pl: u32, total: u64) -> Result<Vec<u8>, MetaError> {
    let n = total.div_ceil(u64::from(pl));
    let mut out = Vec::with_capacity((n as usize).saturating_mul(20));
    let mut buf = vec![0u8; (pl as usize).min(1 << 20)];
    let mut hasher = Sha1::new();
    let mut in_piece: u64 = 0;
    for f in files {
        let mut file = fs::File::open(&f.fs_path).map_err(io_err(&f.fs_path))?;
        let mut left = f.length;
        while left > 0 {
            let want = (buf.len() as u64).min(left).min(u64::from(pl) - in_piece) as usize;
            let got = file.read(&mut buf[..want]).map_err(io_err(&f.fs_path))?;
            if got == 0 {
                return Err(MetaError::Create(format!(
                    "{} shrank while hashing",
                    f.fs_path.display()
                )));
            }
            hasher.update(&buf[..got]);
            left -= got as u64;
            in_piece += got as u64;
            if in_piece == u64::from(pl) {
                out.extend_from_slice(&hasher.finalize_reset());
                in_piece = 0;
            }
        }
    }
    if in_piece > 0 {
        out.extend_from_slice(&hasher.finalize());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Minimal bencode value for building test inputs (dict order as given,
    /// so unsorted dictionaries can be produced on purpose).
    #[derive(Clone)]
    enum B {
        I(i64),
        S(Vec<u8>),
        L(Vec<B>),
        D(Vec<(&'static str, B)>),
    }

    fn s(x: &str) -> B {
        B::S(x.as_bytes().to_vec())
    }

    fn enc(b: &B, out: &mut Vec<u8>) {
        match b {
            B::I(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            B::S(v) => {
                out.extend_from_slice(format!("{}:", v.len()).as_bytes());
                out.extend_from_slice(v);
            }
            B::L(l) => {
                out.push(b'l');
                l.iter().for_each(|x| enc(x, out));
                out.push(b'e');
            }
            B::D(d) => {
                out.push(b'd');
                for (k, v) in d {
                    enc(&s(k), out);
                    enc(v, out);
                }
                out.push(b'e');
            }
        }
    }

    fn to_vec(b: &B) -> Vec<u8> {
        let mut v = Vec::new();
        enc(b, &mut v);
        v
    }

    /// Independent of the reader: returns the end offset of the value starting at `i`.
    fn skip(d: &[u8], mut i: usize) -> usize {
        match d[i] {
            b'i' => i + d[i..].iter().position(|&c| c == b'e').unwrap() + 1,
            b'l' | b'd' => {
                i += 1;
                while d[i] != b'e' {
                    i = skip(d, i);
                }
                i + 1
            }
            _ => {
                let colon = i + d[i..].iter().position(|&c| c == b':').unwrap();
                let n: usize = std::str::from_utf8(&d[i..colon]).unwrap().parse().unwrap();
                colon + 1 + n
            }
        }
    }

    /// Raw bytes of the top-level `info` value, found by a plain scan.
    fn raw_info_span(d: &[u8]) -> &[u8] {
        assert_eq!(d[0], b'd');
        let mut i = 1;
        while d[i] != b'e' {
            let kend = skip(d, i);
            let key = &d[d[i..].iter().position(|&c| c == b':').unwrap() + i + 1..kend];
            let vend = skip(d, kend);
            if key == b"info" {
                return &d[kend..vend];
            }
            i = vend;
        }
        panic!("no info");
    }

    fn info_dict(extra: Vec<(&'static str, B)>) -> B {
        B::D(extra)
    }

    fn single(len: i64, pl: i64, npieces: usize) -> B {
        B::D(vec![
            ("announce", s("http://t/a")),
            (
                "info",
                info_dict(vec![
                    ("length", B::I(len)),
                    ("name", s("f.bin")),
                    ("piece length", B::I(pl)),
                    ("pieces", B::S(vec![7u8; 20 * npieces])),
                ]),
            ),
        ])
    }

    fn multi(paths: Vec<Vec<&str>>, len: i64) -> B {
        let files = paths
            .into_iter()
            .map(|p| {
                B::D(vec![
                    ("length", B::I(len)),
                    ("path", B::L(p.into_iter().map(s).collect())),
                ])
            })
            .collect::<Vec<_>>();
        let n = files.len() as i64 * len;
        let np = (n as u64).div_ceil(16384) as usize;
        B::D(vec![(
            "info",
            B::D(vec![
                ("files", B::L(files)),
                ("name", s("dir")),
                ("piece length", B::I(16384)),
                ("pieces", B::S(vec![1u8; 20 * np])),
            ]),
        )])
    }

    /// mktorrent is installed by scripts/install-deps.sh; without it the test fails loudly.
    fn require_mktorrent() {
        assert!(
            Command::new("mktorrent").arg("-h").output().is_ok(),
            "mktorrent is not installed: run scripts/install-deps.sh"
        );
    }

    fn mktorrent(target: &Path, out: &Path, extra: &[&str]) -> Vec<u8> {
        let st = Command::new("mktorrent")
            .args(["-l", "15", "-a", "http://tracker.invalid/announce", "-o"])
            .arg(out)
            .args(extra)
            .arg(target)
            .output()
            .unwrap();
        assert!(st.status.success(), "{st:?}");
        fs::read(out).unwrap()
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn piece_hashes(data: &[u8], pl: usize) -> Vec<[u8; 20]> {
        data.chunks(pl).map(|c| Sha1::digest(c).into()).collect()
    }

    #[test]
    fn mktorrent_single_file() {
        require_mktorrent();
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(100_000, 3);
        let f = dir.path().join("file.dat");
        fs::write(&f, &data).unwrap();
        let raw = mktorrent(&f, &dir.path().join("s.torrent"), &["-p", "-c", "hello"]);

        let m = Metainfo::from_bytes(&raw).unwrap();
        let expect: [u8; 20] = Sha1::digest(raw_info_span(&raw)).into();
        assert_eq!(m.info_hash, expect);
        assert_eq!(&m.info_bytes[..], raw_info_span(&raw));
        assert!(!m.is_multi_file());
        assert_eq!(m.name, "file.dat");
        assert_eq!(m.piece_length, 32768);
        assert_eq!(m.total_length, 100_000);
        assert_eq!(m.num_pieces(), 4);
        assert_eq!(m.piece_len(3), 100_000 - 3 * 32768);
        assert_eq!(m.piece_len(4), 0);
        assert_eq!(m.pieces, piece_hashes(&data, 32768));
        assert_eq!(
            m.files,
            vec![FileEntry {
                path: "file.dat".into(),
                length: 100_000,
                offset: 0,
                pad: false,
            }]
        );
        assert!(m.private);
        assert_eq!(m.comment.as_deref(), Some("hello"));
        assert_eq!(
            m.announce.as_deref(),
            Some("http://tracker.invalid/announce")
        );

        // Our own creator agrees on everything inside info except what mktorrent adds.
        let ours = create(&f, Some(32768), vec!["http://x/a".into()], true, None).unwrap();
        let o = Metainfo::from_bytes(&ours).unwrap();
        assert_eq!(o.pieces, m.pieces);
        assert_eq!(o.files, m.files);
        assert_eq!(o.name, m.name);
        assert!(o.private);
        // mktorrent writes exactly {length,name,piece length,pieces,private}: same bytes.
        assert_eq!(o.info_hash, m.info_hash);
    }

    #[test]
    fn mktorrent_multi_file_and_create_roundtrip() {
        require_mktorrent();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("content");
        fs::create_dir_all(root.join("sub/deeper")).unwrap();
        fs::create_dir_all(root.join("zz")).unwrap();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("a.txt", pattern(40_000, 1)),
            ("empty", Vec::new()),
            ("sub/b.bin", pattern(70_001, 2)),
            ("sub/deeper/c", pattern(5, 3)),
            ("zz/d", pattern(32768, 4)),
        ];
        let mut stream = Vec::new();
        for (p, d) in &files {
            fs::write(root.join(p), d).unwrap();
            stream.extend_from_slice(d);
        }
        let raw = mktorrent(&root, &dir.path().join("m.torrent"), &[]);
        let m = Metainfo::from_bytes(&raw).unwrap();
        let expect: [u8; 20] = Sha1::digest(raw_info_span(&raw)).into();
        assert_eq!(m.info_hash, expect);
        assert!(m.is_multi_file());
        assert_eq!(m.name, "content");
        assert!(!m.private);
        assert_eq!(m.total_length, stream.len() as u64);
        assert_eq!(m.pieces, piece_hashes(&stream, 32768));
        let mut off = 0;
        // mktorrent may skip empty files; compare the non-empty ones in order.
        let got: Vec<_> = m.files.iter().filter(|f| f.length > 0).collect();
        let want: Vec<_> = files.iter().filter(|f| !f.1.is_empty()).collect();
        assert_eq!(got.len(), want.len());
        for (g, (p, d)) in got.iter().zip(want) {
            assert_eq!(g.path, PathBuf::from(p));
            assert_eq!(g.length, d.len() as u64);
            assert_eq!(g.offset, off);
            off += d.len() as u64;
        }

        // Round trip through our creator (includes the empty file).
        let ours = create(
            &root,
            Some(32768),
            vec!["http://a/1".into(), "http://b/2".into()],
            false,
            Some("c".into()),
        )
        .unwrap();
        let o = Metainfo::from_bytes(&ours).unwrap();
        assert_eq!(o.pieces, m.pieces);
        assert_eq!(o.name, "content");
        assert_eq!(o.files.len(), files.len());
        for (g, (p, d)) in o.files.iter().zip(&files) {
            assert_eq!(g.path, PathBuf::from(p));
            assert_eq!(g.length, d.len() as u64);
        }
        assert_eq!(o.announce.as_deref(), Some("http://a/1"));
        assert_eq!(
            o.announce_list,
            vec![
                vec!["http://a/1".to_string()],
                vec!["http://b/2".to_string()]
            ]
        );
        assert_eq!(o.comment.as_deref(), Some("c"));
        assert!(o.created_by.unwrap().starts_with("bittorrent-over-scion"));
        let expect: [u8; 20] = Sha1::digest(raw_info_span(&ours)).into();
        assert_eq!(o.info_hash, expect);
    }

    #[test]
    fn create_auto_piece_length_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        fs::write(&f, pattern(1000, 0)).unwrap();
        let m = Metainfo::from_bytes(&create(&f, None, vec![], false, None).unwrap()).unwrap();
        assert_eq!(m.piece_length, 16384);
        assert_eq!(m.num_pieces(), 1);
        assert_eq!(m.announce, None);
        assert!(matches!(
            create(&f, Some(3000), vec![], false, None),
            Err(MetaError::PieceLength(3000))
        ));
        let e = dir.path().join("empty");
        fs::write(&e, b"").unwrap();
        assert!(matches!(
            create(&e, None, vec![], false, None),
            Err(MetaError::Empty)
        ));
        let d = dir.path().join("emptydir");
        fs::create_dir(&d).unwrap();
        assert!(matches!(
            create(&d, None, vec![], false, None),
            Err(MetaError::Empty)
        ));
        assert!(matches!(
            create(&dir.path().join("nope"), None, vec![], false, None),
            Err(MetaError::Io { .. })
        ));
        let bad = dir.path().join("bad");
        fs::create_dir(&bad).unwrap();
        fs::write(bad.join("a\\b"), b"x").unwrap();
        assert!(matches!(
            create(&bad, None, vec![], false, None),
            Err(MetaError::UnsafePath { .. })
        ));
    }

    #[test]
    fn auto_piece_length_bounds() {
        assert_eq!(auto_piece_length(1), 16 << 10);
        assert_eq!(auto_piece_length(1500 * (1 << 20)), 1 << 20);
        assert_eq!(auto_piece_length(1501 * (1 << 20)), 2 << 20);
        assert_eq!(auto_piece_length(u64::MAX), 16 << 20);
        for t in [1u64, 10 << 20, 700 << 20, 4 << 30, 100 << 30] {
            assert!(auto_piece_length(t).is_power_of_two());
        }
    }

    #[test]
    fn handmade_single_and_multi() {
        let m = Metainfo::from_bytes(&to_vec(&single(40000, 16384, 3))).unwrap();
        assert_eq!(m.num_pieces(), 3);
        assert_eq!(m.piece_len(0), 16384);
        assert_eq!(m.piece_len(2), 40000 - 32768);
        assert_eq!(m.piece_offset(2), 32768);
        assert_eq!(m.piece_hash(2), Some(&[7u8; 20]));
        assert_eq!(m.piece_hash(3), None);

        let m = Metainfo::from_bytes(&to_vec(&multi(
            vec![vec!["a"], vec!["d", "b"], vec!["d", "c"]],
            10000,
        )))
        .unwrap();
        assert!(m.is_multi_file());
        let offs: Vec<u64> = m.files.iter().map(|f| f.offset).collect();
        assert_eq!(offs, vec![0, 10000, 20000]);
        assert_eq!(m.files[1].path, PathBuf::from("d/b"));
        assert_eq!(m.name, "dir");
    }

    fn err(b: &B) -> MetaError {
        Metainfo::from_bytes(&to_vec(b)).unwrap_err()
    }

    #[test]
    fn truncated_inputs_error() {
        let good = to_vec(&multi(vec![vec!["a"], vec!["b"]], 20000));
        Metainfo::from_bytes(&good).unwrap();
        for n in 0..good.len() {
            assert!(Metainfo::from_bytes(&good[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn wrong_types() {
        let cases = [
            (B::L(vec![]), "(root)"),
            (B::D(vec![("info", B::I(1))]), "info"),
        ];
        for (b, f) in cases {
            assert!(matches!(err(&b), MetaError::WrongType { field, .. } if field == f));
        }
        let mk = |k: &'static str, v: B| {
            let mut info = vec![
                ("length", B::I(10)),
                ("name", s("n")),
                ("piece length", B::I(16384)),
                ("pieces", B::S(vec![0; 20])),
            ];
            for e in info.iter_mut() {
                if e.0 == k {
                    e.1 = v.clone();
                }
            }
            B::D(vec![("info", B::D(info))])
        };
        assert!(matches!(
            err(&mk("name", B::I(1))),
            MetaError::WrongType { field: "name", .. }
        ));
        assert!(matches!(
            err(&mk("pieces", B::I(1))),
            MetaError::WrongType {
                field: "pieces",
                ..
            }
        ));
        assert!(matches!(
            err(&mk("piece length", s("x"))),
            MetaError::WrongType {
                field: "piece length",
                ..
            }
        ));
        assert!(matches!(
            err(&mk("length", B::I(-5))),
            MetaError::NegativeLength(-5)
        ));
        assert!(matches!(
            err(&mk("piece length", B::I(0))),
            MetaError::PieceLength(0)
        ));
        assert!(matches!(
            err(&mk("piece length", B::I(-1))),
            MetaError::PieceLength(-1)
        ));
        assert!(matches!(
            err(&mk("piece length", B::I(1 << 40))),
            MetaError::PieceLength(_)
        ));
        assert!(matches!(
            err(&mk("length", s("99999999999999999999999"))),
            MetaError::WrongType { .. }
        ));
        assert!(matches!(err(&mk("length", B::I(0))), MetaError::Empty));
        // Integer too large for i64 (but valid bencode).
        let raw = b"d4:infod6:lengthi99999999999999999999999e4:name1:n12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        assert!(matches!(
            Metainfo::from_bytes(raw),
            Err(MetaError::BadInteger("length"))
        ));
        assert!(matches!(
            err(&B::D(vec![("announce", s("x"))])),
            MetaError::MissingField("info")
        ));
        // Wrong-typed optional outer fields are ignored.
        let mut ok = single(10, 16384, 1);
        if let B::D(d) = &mut ok {
            d[0].1 = B::I(5); // announce as integer
        }
        assert_eq!(Metainfo::from_bytes(&to_vec(&ok)).unwrap().announce, None);
    }

    #[test]
    fn bad_pieces() {
        let mut b = single(40000, 16384, 3);
        if let B::D(d) = &mut b {
            if let B::D(info) = &mut d[1].1 {
                info[3].1 = B::S(vec![0; 61]);
            }
        }
        assert!(matches!(err(&b), MetaError::PiecesLength(61)));
        assert!(matches!(
            err(&single(40000, 16384, 2)),
            MetaError::PieceCount {
                expected: 3,
                actual: 2
            }
        ));
        assert!(matches!(
            err(&single(40000, 16384, 4)),
            MetaError::PieceCount { .. }
        ));
    }

    #[test]
    fn layout_ambiguity() {
        let b = B::D(vec![(
            "info",
            B::D(vec![
                ("name", s("n")),
                ("piece length", B::I(16384)),
                ("pieces", B::S(vec![0; 20])),
            ]),
        )]);
        assert!(matches!(err(&b), MetaError::AmbiguousLayout));
        let b = B::D(vec![(
            "info",
            B::D(vec![
                ("files", B::L(vec![])),
                ("length", B::I(1)),
                ("name", s("n")),
                ("piece length", B::I(16384)),
                ("pieces", B::S(vec![0; 20])),
            ]),
        )]);
        assert!(matches!(err(&b), MetaError::AmbiguousLayout));
        assert!(matches!(err(&multi(vec![], 1)), MetaError::Empty));
    }

    #[test]
    fn unsafe_and_duplicate_paths() {
        for p in [
            vec!["..", "evil"],
            vec!["a", ".."],
            vec!["."],
            vec![""],
            vec!["a/../../b"],
            vec!["/etc/passwd"],
            vec!["nul\0byte"],
        ] {
            let e = err(&multi(vec![p.clone()], 5));
            assert!(matches!(e, MetaError::UnsafePath { .. }), "{p:?}: {e:?}");
        }
        assert!(matches!(
            err(&multi(vec![vec![]], 5)),
            MetaError::UnsafePath { .. }
        ));
        assert!(matches!(
            err(&multi(vec![vec!["a", "b"], vec!["a", "b"]], 5)),
            MetaError::DuplicatePath(_)
        ));
        assert!(matches!(
            err(&multi(vec![vec!["a"], vec!["a", "b"]], 5)),
            MetaError::DuplicatePath(_)
        ));
        assert!(matches!(
            err(&multi(vec![vec!["x", "y", "z"], vec!["x", "y"]], 5)),
            MetaError::DuplicatePath(_)
        ));
        // Sanitising can't make two names collide silently.
        assert!(matches!(
            err(&multi(vec![vec!["a\\b"], vec!["a_b"]], 5)),
            MetaError::DuplicatePath(_)
        ));
        // Bad torrent name.
        let mut b = single(10, 16384, 1);
        if let B::D(d) = &mut b {
            if let B::D(info) = &mut d[1].1 {
                info[1].1 = s("..");
            }
        }
        assert!(matches!(err(&b), MetaError::UnsafePath { .. }));
        // Sanitised, accepted.
        let m = Metainfo::from_bytes(&to_vec(&multi(vec![vec!["a\\b", "c\x01d"]], 5))).unwrap();
        assert_eq!(m.files[0].path, PathBuf::from("a_b/c_d"));
        for f in &m.files {
            assert!(f.path.is_relative());
            assert!(f
                .path
                .components()
                .all(|c| matches!(c, Component::Normal(_))));
        }
    }

    #[test]
    fn windows_sanitising() {
        let w = |c| sanitize_component_for(c, true).unwrap();
        assert_eq!(w("CON"), "CON_");
        assert_eq!(w("aux.c"), "aux_.c");
        assert_eq!(w("com1.txt"), "com1_.txt");
        assert_eq!(w("COM"), "COM");
        assert_eq!(w("a:b?"), "a_b_");
        assert_eq!(w("name. . "), "name");
        assert_eq!(w("..."), "_");
        assert_eq!(w("C:"), "C_");
        assert!(sanitize_component_for("..", true).is_err());
        let u = |c| sanitize_component_for(c, false).unwrap();
        assert_eq!(u("aux.c"), "aux.c");
        assert_eq!(u("a:b"), "a:b");
        assert_eq!(u("trailing."), "trailing.");
    }

    /// What libtorrent accepts: unsorted keys at the top and inside `info`, and duplicate
    /// keys (the first wins). The info hash stays the SHA-1 of the raw bytes in the file.
    #[test]
    fn unsorted_and_duplicate_keys_are_accepted_and_hashed_raw() {
        let info = B::D(vec![
            ("pieces", B::S(vec![0; 20])),
            ("name", s("n")),
            ("piece length", B::I(16384)),
            ("length", B::I(10)),
            ("name", s("second-name-ignored")),
        ]);
        let raw_info = to_vec(&info);
        let file = to_vec(&B::D(vec![("info", info), ("announce", s("http://t/a"))]));
        let m = Metainfo::from_bytes(&file).unwrap();
        assert_eq!(m.name, "n");
        assert_eq!(m.total_length, 10);
        assert_eq!(m.announce.as_deref(), Some("http://t/a"));
        assert_eq!(m.info_bytes.as_ref(), &raw_info[..]);
        assert_eq!(m.info_hash, <[u8; 20]>::from(Sha1::digest(&raw_info)));
        // The same bytes as a bare info dictionary (BEP 9), and trailing data still refused.
        let bare = Metainfo::from_info_bytes(&raw_info).unwrap();
        assert_eq!(bare.info_hash, m.info_hash);
        let mut trailing = raw_info.clone();
        trailing.extend_from_slice(b"i1e");
        assert!(matches!(
            Metainfo::from_info_bytes(&trailing),
            Err(MetaError::TrailingData)
        ));
        // A lenient file is still validated: a bad piece count is refused.
        let bad = to_vec(&B::D(vec![(
            "info",
            B::D(vec![
                ("pieces", B::S(vec![0; 40])),
                ("name", s("n")),
                ("piece length", B::I(16384)),
                ("length", B::I(10)),
            ]),
        )]));
        assert!(matches!(
            Metainfo::from_bytes(&bad),
            Err(MetaError::PieceCount { .. })
        ));
    }

    /// Hand-written hostile torrents: path traversal, absolute paths and sizes that do not add
    /// up are refused (the CLI maps every MetaError to exit code 3), sorted or not.
    #[test]
    fn traversal_absolute_paths_and_inconsistent_sizes_are_refused() {
        for (comps, why) in [
            (vec!["..", "etc", "passwd"], "relative path component"),
            (vec!["a", "..", "..", "b"], "relative path component"),
            (vec!["/etc/passwd"], "contains '/'"),
            (vec!["", "etc"], "empty path component"),
            (vec!["a/../../b"], "contains '/'"),
        ] {
            let e = err(&multi(vec![comps.clone()], 10));
            assert!(
                matches!(&e, MetaError::UnsafePath { reason, .. } if *reason == why),
                "{comps:?}: {e}"
            );
        }
        // The name is a path component too.
        for name in ["..", "/abs", "a/b"] {
            let b = B::D(vec![(
                "info",
                info_dict(vec![
                    ("length", B::I(10)),
                    ("name", s(name)),
                    ("piece length", B::I(16384)),
                    ("pieces", B::S(vec![0; 20])),
                ]),
            )]);
            assert!(matches!(err(&b), MetaError::UnsafePath { .. }), "{name}");
        }
        // Sizes: too few and too many hashes, negative and overflowing lengths.
        assert!(matches!(
            err(&single(40000, 16384, 2)),
            MetaError::PieceCount { .. }
        ));
        assert!(matches!(
            err(&single(10, 16384, 2)),
            MetaError::PieceCount { .. }
        ));
        assert!(matches!(
            err(&single(-5, 16384, 1)),
            MetaError::NegativeLength(-5)
        ));
        let huge = i64::MAX.to_string();
        let overflow = format!(
            "d4:infod5:filesld6:lengthi{huge}e4:pathl1:aeed6:lengthi{huge}e4:pathl1:beed6:lengthi{huge}e4:pathl1:ceee4:name1:d12:piece lengthi16384e6:pieces20:{}ee",
            "x".repeat(20)
        );
        assert!(matches!(
            Metainfo::from_bytes(overflow.as_bytes()),
            Err(MetaError::LengthOverflow)
        ));
    }

    #[test]
    fn deep_inputs() {
        // Deep nesting in an ignored field must error, not overflow the stack.
        let mut raw = b"d7:comment".to_vec();
        raw.extend(std::iter::repeat_n(b'l', 100_000));
        raw.extend(std::iter::repeat_n(b'e', 100_000));
        raw.push(b'e');
        assert!(matches!(
            Metainfo::from_bytes(&raw),
            Err(MetaError::Bencode(_))
        ));
        assert!(Metainfo::from_bytes(b"").is_err());
        assert!(Metainfo::from_bytes(b"i1e").is_err());
        assert!(Metainfo::from_bytes(b"d4:infoi1ee").is_err());
        assert!(Metainfo::from_bytes(b"99999999999999999999:x").is_err());
    }

    #[test]
    fn from_info_bytes_rejects_trailing() {
        let full = to_vec(&single(10, 16384, 1));
        let m = Metainfo::from_bytes(&full).unwrap();
        let again = Metainfo::from_info_bytes(&m.info_bytes).unwrap();
        assert_eq!(again.info_hash, m.info_hash);
        let mut t = m.info_bytes.to_vec();
        t.extend_from_slice(b"i1e");
        assert!(matches!(
            Metainfo::from_info_bytes(&t),
            Err(MetaError::TrailingData)
        ));
    }

    #[test]
    fn random_mutations_never_panic() {
        let good = to_vec(&multi(vec![vec!["a"], vec!["b", "c"]], 20000));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut v = good.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % v.len();
                match next() % 3 {
                    0 => v[i] = next() as u8,
                    1 => {
                        v.remove(i);
                    }
                    _ => v.insert(i, b"0123456789ilde:-"[(next() % 16) as usize]),
                }
            }
            let _ = Metainfo::from_bytes(&v);
        }
        // Pure random bytes too.
        for _ in 0..5_000 {
            let len = (next() % 64) as usize;
            let v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = Metainfo::from_bytes(&v);
        }
    }

    /// The `nodes` key, in BEP 5's form and the original client's SCION form, is read; an
    /// unusable entry (host name) is left out, a `nodes` of the wrong type ignored.
    #[test]
    fn dht_nodes_of_both_kinds_are_read() {
        let B::D(mut root) = single(100, 64, 2) else {
            unreachable!()
        };
        root.push((
            "nodes",
            B::L(vec![
                B::L(vec![s("19-ffaa:1:c3f,[141.44.25.148]"), B::I(7000)]),
                B::L(vec![s("10.0.0.1"), B::I(6881)]),
                B::L(vec![s("router.example.org"), B::I(6881)]),
            ]),
        ));
        let m = Metainfo::from_bytes(&to_vec(&B::D(root.clone()))).unwrap();
        let want: Vec<crate::scion::PeerAddr> = vec![
            "19-ffaa:1:c3f,[141.44.25.148]:7000".parse().unwrap(),
            "10.0.0.1:6881".parse().unwrap(),
        ];
        assert_eq!(m.nodes, want);
        let last = root.len() - 1;
        root[last].1 = s("garbage");
        assert!(Metainfo::from_bytes(&to_vec(&B::D(root)))
            .unwrap()
            .nodes
            .is_empty());
    }
}
