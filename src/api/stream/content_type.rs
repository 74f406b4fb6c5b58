//! The `Content-Type` of a streamed file, from its extension: media players need it (a
//! `<video>` element plays `video/mp4`, not `application/octet-stream`). Types that a browser
//! would run as a page of the daemon's own origin (HTML, SVG, XML, JavaScript) are never
//! given: a torrent's file could then read the API with the user's token. Those, and anything
//! unknown, are `application/octet-stream` (downloaded, not shown).

/// The content type for a file named `path`.
pub fn of(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return OCTETS;
    };
    let ext = ext.to_ascii_lowercase();
    TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or(OCTETS, |(_, t)| t)
}

const OCTETS: &str = "application/octet-stream";

const TYPES: &[(&str, &str)] = &[
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("mkv", "video/x-matroska"),
    ("webm", "video/webm"),
    ("ogv", "video/ogg"),
    ("mov", "video/quicktime"),
    ("avi", "video/x-msvideo"),
    ("mpg", "video/mpeg"),
    ("mpeg", "video/mpeg"),
    ("ts", "video/mp2t"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("flac", "audio/flac"),
    ("ogg", "audio/ogg"),
    ("oga", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("wav", "audio/wav"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain; charset=utf-8"),
    ("nfo", "text/plain; charset=utf-8"),
    ("srt", "text/plain; charset=utf-8"),
    ("vtt", "text/vtt"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_by_extension_and_never_a_page() {
        assert_eq!(of("Season 1/Ep 01.MKV"), "video/x-matroska");
        assert_eq!(of("a.b/movie.mp4"), "video/mp4");
        assert_eq!(of("song.flac"), "audio/flac");
        for unsafe_or_unknown in [
            "index.html",
            "x.htm",
            "pic.svg",
            "feed.xml",
            "app.js",
            "noext",
            "dir.mp4/file",
            "x.bin",
        ] {
            assert_eq!(of(unsafe_or_unknown), OCTETS, "{unsafe_or_unknown}");
        }
    }
}
