#!/usr/bin/env bash
# The test suite: unit tests, and integration tests that start the real local SCION network
# (pocketscion) and the real binaries. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --all-targets
