//! Confining paths named by API callers to the download root: nothing a caller sends can make
//! the daemon write (or read a .torrent) outside it — no `..`, no absolute path elsewhere, no
//! symlink inside the root that leads out of it.

use std::io;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {0:?} must not contain '..'")]
    ParentDir(String),
    #[error("path {0:?} is outside the download root {1}")]
    Outside(String, String),
    #[error("path {0:?} leads outside the download root through a symlink")]
    SymlinkEscape(String),
    #[error("path {0:?} is not valid here: {1}")]
    Invalid(String, String),
}

/// The directory everything the daemon downloads goes under, canonical (symlinks resolved).
#[derive(Debug, Clone)]
pub struct DownloadRoot {
    root: PathBuf,
}

impl DownloadRoot {
    /// Creates the directory if needed.
    pub fn new(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The absolute path a caller's `requested` path (relative to the root, or absolute inside
    /// it; empty = the root) stands for, with its existing part's symlinks resolved — so the
    /// path returned is the one that was checked.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, PathError> {
        let invalid = |why: &str| PathError::Invalid(requested.into(), why.into());
        if requested.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let asked = Path::new(requested);
        if asked.components().any(|c| c == Component::ParentDir) {
            return Err(PathError::ParentDir(requested.into()));
        }
        let relative = if asked.is_absolute() {
            asked.strip_prefix(&self.root).map_err(|_| {
                PathError::Outside(requested.into(), self.root.display().to_string())
            })?
        } else {
            asked
        };
        let mut resolved = self.root.clone();
        let mut exists = true;
        for c in relative.components() {
            match c {
                Component::Normal(name) => resolved.push(name),
                Component::CurDir => continue,
                _ => return Err(invalid("unexpected path component")),
            }
            if !exists {
                continue; // below a missing directory nothing can be a symlink yet
            }
            match std::fs::symlink_metadata(&resolved) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = resolved
                        .canonicalize()
                        .map_err(|_| PathError::SymlinkEscape(requested.into()))?;
                    if !target.starts_with(&self.root) {
                        return Err(PathError::SymlinkEscape(requested.into()));
                    }
                    resolved = target;
                }
                Ok(_) => {}
                Err(_) => exists = false,
            }
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, DownloadRoot) {
        let d = tempfile::tempdir().unwrap();
        let root = DownloadRoot::new(&d.path().join("downloads")).unwrap();
        (d, root)
    }

    #[test]
    fn relative_paths_land_inside() {
        let (_d, root) = setup();
        assert_eq!(root.resolve("").unwrap(), root.path());
        assert_eq!(root.resolve(".").unwrap(), root.path());
        assert_eq!(root.resolve("a/b").unwrap(), root.path().join("a/b"));
        assert_eq!(root.resolve("./a/./b/").unwrap(), root.path().join("a/b"));
    }

    #[test]
    fn parent_components_are_refused_anywhere() {
        let (_d, root) = setup();
        for p in ["..", "../x", "a/../../x", "a/..", "a/b/../../.."] {
            assert!(
                matches!(root.resolve(p), Err(PathError::ParentDir(_))),
                "{p}"
            );
        }
        let inside_then_up = format!("{}/a/../..", root.path().display());
        assert!(root.resolve(&inside_then_up).is_err());
    }

    #[test]
    fn absolute_paths_only_inside_the_root() {
        let (d, root) = setup();
        let inside = root.path().join("movies");
        assert_eq!(root.resolve(inside.to_str().unwrap()).unwrap(), inside);
        for p in ["/etc", "/", d.path().to_str().unwrap()] {
            assert!(
                matches!(root.resolve(p), Err(PathError::Outside(..))),
                "{p}"
            );
        }
        // A sibling whose name starts like the root is not inside it.
        let sibling = format!("{}-evil/x", root.path().display());
        assert!(matches!(
            root.resolve(&sibling),
            Err(PathError::Outside(..))
        ));
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let (d, root) = setup();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, root.path().join("escape")).unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        symlink(root.path().join("real"), root.path().join("alias")).unwrap();
        symlink("/nonexistent/target", root.path().join("dangling")).unwrap();

        for p in ["escape", "escape/sub/dir", "dangling/x"] {
            assert!(
                matches!(root.resolve(p), Err(PathError::SymlinkEscape(_))),
                "{p}"
            );
        }
        // A symlink that stays inside resolves to its target.
        assert_eq!(
            root.resolve("alias/x").unwrap(),
            root.path().join("real").join("x")
        );
    }

    #[test]
    fn a_root_behind_a_symlink_is_handled() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real-root")).unwrap();
        symlink(d.path().join("real-root"), d.path().join("link-root")).unwrap();
        let root = DownloadRoot::new(&d.path().join("link-root")).unwrap();
        assert_eq!(
            root.path(),
            d.path().join("real-root").canonicalize().unwrap()
        );
        assert!(root.resolve("x").unwrap().starts_with(root.path()));
    }

    #[test]
    fn nul_bytes_are_refused() {
        let (_d, root) = setup();
        assert!(matches!(root.resolve("a\0b"), Err(PathError::Invalid(..))));
    }
}
