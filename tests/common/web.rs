//! The browser tests' runner: Node scripts in tests/web drive Debian's Chromium through
//! playwright-core, installed from the committed lock file (never a downloaded browser).

use std::path::{Path, PathBuf};
use std::process::Command;

fn web_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// `node tests/web/<script>`, ready for its arguments, after `npm ci` once.
pub fn node_script(script: &str) -> Command {
    ensure_node_modules();
    let mut cmd = Command::new("node");
    cmd.arg(web_tests_dir().join(script));
    cmd
}

fn ensure_node_modules() {
    let dir = web_tests_dir();
    if dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("npm is needed for the web UI tests (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "npm ci in tests/web failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
