#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine (run as root).
# pocketscion builds BoringSSL: cmake, clang, libclang-dev. Tests use mktorrent and iproute2;
# the interop tests use real BitTorrent clients. Only missing packages are installed.
set -euo pipefail

packages=(cmake clang libclang-dev pkg-config mktorrent iproute2 python3 python3-venv)
# tests/flush_error.rs mounts a FUSE filesystem (fusepy, below) over libfuse2; fusermount unmounts it.
packages+=(libfuse2 fuse)
# The web UI's browser test: Debian's Chromium driven by playwright-core (npm), never a
# downloaded browser. Node 20+ and npm are taken from Debian only when no node/npm is installed
# (a NodeSource nodejs already ships npm, and Debian's npm package would conflict with it).
packages+=(chromium chromium-driver)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
if [ "${WITH_CLIENTS:-1}" = 1 ]; then
  packages+=(python3-libtorrent transmission-cli transmission-daemon aria2 opentracker)
  # tests/https_trackers.rs: opentracker behind stunnel with a test CA (openssl CLI).
  packages+=(stunnel4 openssl)
  # tests/web_seeds.rs: web seeds (BEP 19) served by nginx.
  packages+=(nginx)
  # tests/port_mapping.rs: miniupnpd (nftables backend) as the home router; nft sets up and reads
  # its chains (the package's own init script lacks the file it sources).
  packages+=(miniupnpd-nftables nftables)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo (Rust toolchain) is required" >&2; exit 1; }

# scionproto's own router, control service, daemon, dispatcher, scion-pki and `scion` tool at one
# pinned release, for the second backend of the local SCION network (testnet/README.md). Built
# once into a cache outside the clone. Not `go install pkg@version`: the module proxy refuses
# the version list that it asks for first; building inside the downloaded module uses only the
# pinned versions of its go.sum.
. "$(dirname "$0")/scionproto-env.sh"
scion_tools=(router control daemon dispatcher scion-pki scion)
missing_tools=()
for t in "${scion_tools[@]}"; do
  [ -x "$SCIONPROTO_BIN/$t" ] || missing_tools+=("$t")
done
if [ ${#missing_tools[@]} -gt 0 ]; then
  command -v go >/dev/null || { echo "go (1.22 or newer) is required to build scionproto" >&2; exit 1; }
  echo "building scionproto $SCIONPROTO_VERSION: ${missing_tools[*]}" >&2
  go mod download "github.com/scionproto/scion@$SCIONPROTO_VERSION"
  src="$(go env GOMODCACHE)/github.com/scionproto/scion@$SCIONPROTO_VERSION"
  mkdir -p "$SCIONPROTO_BIN"
  (cd "$src" && GOFLAGS=-buildvcs=false GOBIN="$SCIONPROTO_BIN" go install \
    ./router/cmd/router ./control/cmd/control ./daemon/cmd/daemon \
    ./dispatcher/cmd/dispatcher ./scion-pki/cmd/scion-pki ./scion/cmd/scion)
fi

# scion-apps' bwtester client and server at a pinned release, for tests/bwtester.rs (our bwtest
# against theirs, both ways, on the scionproto network). v0.6.0 is the newest release the
# module proxy serves (it refuses commit pseudo-versions); its scionproto binds plain UDP in
# the AS's port range, which scionproto v0.14's routers deliver to.
if [ ! -x "$SCION_APPS_BIN/bwtestclient" ] || [ ! -x "$SCION_APPS_BIN/bwtestserver" ]; then
  echo "building scion-apps $SCION_APPS_VERSION bwtester" >&2
  go mod download "github.com/netsec-ethz/scion-apps@$SCION_APPS_VERSION"
  (cd "$(go env GOMODCACHE)/github.com/netsec-ethz/scion-apps@$SCION_APPS_VERSION" &&
    GOFLAGS=-buildvcs=false GOBIN="$SCION_APPS_BIN" go install ./bwtester/bwtestclient ./bwtester/bwtestserver)
fi

# schemathesis (PyPI) at a pinned version in a virtualenv of its own, for tests/api_contract.rs:
# the daemon's API checked against docs/openapi.yaml.
if [ ! -x "$SCHEMATHESIS" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION" >&2
  venv="$(dirname "$(dirname "$SCHEMATHESIS")")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

# fusepy (PyPI) at a pinned version in a virtualenv of its own, for tests/flush_error.rs: a FUSE
# filesystem whose fsync fails (tests/fuse/failing_sync.py). ctypes bindings, nothing to build.
if [ ! -x "$FUSEPY_PYTHON" ]; then
  echo "installing fusepy $FUSEPY_VERSION" >&2
  venv="$(dirname "$(dirname "$FUSEPY_PYTHON")")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "fusepy==$FUSEPY_VERSION"
fi

# qbittorrent-api (PyPI) at a pinned version in a virtualenv of its own, for
# tests/qbittorrent_api.rs: the client *arr tools' scripts use, driving our qBittorrent Web API.
if [ ! -x "$QBITTORRENT_API_PYTHON" ]; then
  echo "installing qbittorrent-api $QBITTORRENT_API_VERSION" >&2
  venv="$(dirname "$(dirname "$QBITTORRENT_API_PYTHON")")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "qbittorrent-api==$QBITTORRENT_API_VERSION"
fi
