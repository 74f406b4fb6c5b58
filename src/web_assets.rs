//! The web UI's static files (`web/`), embedded in the binary so the daemon serves the UI with
//! nothing else installed. The UI is plain HTML, CSS and ES modules with no build step, so the
//! files here are exactly the files in the repository.

macro_rules! assets {
    ($($path:literal => $mime:expr,)*) => {
        /// Every embedded file: (path under `web/`, bytes, content type).
        pub const ASSETS: &[(&str, &[u8], &str)] = &[
            $(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)), $mime),)*
        ];
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

assets! {
    "index.html" => HTML,
    "style.css" => CSS,
    "icon.svg" => SVG,
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/format.js" => JS,
    "js/files.js" => JS,
    "js/live.js" => JS,
    "js/paths.js" => JS,
    "js/toast.js" => JS,
    "js/pages/list.js" => JS,
    "js/pages/detail.js" => JS,
    "js/pages/pathsPage.js" => JS,
    "js/pages/settings.js" => JS,
}

/// The file at `path` and its content type. Accepts the request path with or without the
/// leading `/` and `ui/` (the daemon serves `/` and `/ui/<file>`); `""` is the page itself.
pub fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("ui/").unwrap_or(path);
    let path = if path.is_empty() || path == "ui" {
        "index.html"
    } else {
        path
    };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, bytes, mime)| (*bytes, *mime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files_under(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files_under(&p, base, out);
            } else {
                out.push(
                    p.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }

    #[test]
    fn every_file_in_web_is_embedded() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut files = Vec::new();
        files_under(&web, &web, &mut files);
        for f in &files {
            assert!(
                asset(f).is_some(),
                "web/{f} is not listed in src/web_assets.rs"
            );
        }
        assert_eq!(files.len(), ASSETS.len(), "ASSETS lists a file web/ lacks");
    }

    #[test]
    fn page_and_files_are_found_by_request_path() {
        for p in ["", "/", "index.html", "/ui/", "ui/index.html"] {
            assert_eq!(asset(p).unwrap().1, HTML, "{p:?}");
        }
        assert_eq!(asset("/ui/js/app.js").unwrap().1, JS);
        assert_eq!(asset("ui/style.css").unwrap().1, CSS);
        assert!(asset("/ui/nope.js").is_none());
        assert!(asset("../Cargo.toml").is_none());
    }

    /// Module imports are relative (`./x.js`, `../x.js`): each must name an embedded file, or
    /// the browser fails at load time.
    #[test]
    fn every_module_import_resolves() {
        for (path, bytes, mime) in ASSETS {
            if *mime != JS {
                continue;
            }
            let text = std::str::from_utf8(bytes).unwrap();
            for spec in text
                .split("from '")
                .skip(1)
                .filter_map(|s| s.split('\'').next())
            {
                let mut parts: Vec<&str> = path.split('/').collect();
                parts.pop();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(asset(&target).is_some(), "{path} imports {spec} ({target})");
            }
        }
    }

    /// The page loads its files from `/ui/`; each must be embedded.
    #[test]
    fn index_references_embedded_files() {
        let (html, _) = asset("index.html").unwrap();
        let html = std::str::from_utf8(html).unwrap();
        let refs: Vec<&str> = html
            .split("\"/ui/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        assert!(refs.len() >= 3, "{refs:?}");
        for r in refs {
            assert!(asset(r).is_some(), "index.html references /ui/{r}");
        }
    }
}
