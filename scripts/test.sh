#!/usr/bin/env bash
# The test suite: unit tests, and integration tests that start the real local SCION network
# (pocketscion) and the real binaries. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/scionproto-env.sh
cargo test --workspace --all-targets

# Fuzz targets (fuzz/, FUZZING.md): a few seconds each, so they keep compiling and the committed
# corpora keep passing. Stable toolchain only (fuzz.sh sets RUSTC_BOOTSTRAP=1 for cargo-fuzz's
# -Z flags). Installs cargo-fuzz if missing; fails (never skips) if it cannot.
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
FUZZ_SANITIZER=none scripts/fuzz.sh --dev --seconds 5 --no-merge
