# Sourced by the scripts: where the pinned scionproto and scion-apps binaries live (built by install-deps.sh
# into a cache outside the clone), exported for scion-testnet's scionproto backend.
SCIONPROTO_VERSION=v0.14.0
SCIONPROTO_BIN=${SCIONPROTO_BIN:-$HOME/.cache/bittorrent-over-scion/scionproto-$SCIONPROTO_VERSION/bin}
SCION_APPS_VERSION=v0.6.0
SCION_APPS_BIN=${SCION_APPS_BIN:-$HOME/.cache/bittorrent-over-scion/scion-apps-$SCION_APPS_VERSION/bin}
export SCIONPROTO_VERSION SCIONPROTO_BIN SCION_APPS_VERSION SCION_APPS_BIN
