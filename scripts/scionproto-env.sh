# Sourced by the scripts: where the pinned test tools live (installed by install-deps.sh into a
# cache outside the clone) — scionproto's and scion-apps' binaries for scion-testnet's
# scionproto backend and tests/bwtester.rs, schemathesis for tests/api_contract.rs.
SCIONPROTO_VERSION=v0.14.0
SCIONPROTO_BIN=${SCIONPROTO_BIN:-$HOME/.cache/bittorrent-over-scion/scionproto-$SCIONPROTO_VERSION/bin}
SCION_APPS_VERSION=v0.6.0
SCION_APPS_BIN=${SCION_APPS_BIN:-$HOME/.cache/bittorrent-over-scion/scion-apps-$SCION_APPS_VERSION/bin}
export SCIONPROTO_VERSION SCIONPROTO_BIN SCION_APPS_VERSION SCION_APPS_BIN
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS=${SCHEMATHESIS:-$HOME/.cache/bittorrent-over-scion/schemathesis-$SCHEMATHESIS_VERSION/bin/st}
export SCHEMATHESIS_VERSION SCHEMATHESIS
FUSEPY_VERSION=3.0.1
FUSEPY_PYTHON=${FUSEPY_PYTHON:-$HOME/.cache/bittorrent-over-scion/fusepy-$FUSEPY_VERSION/bin/python}
export FUSEPY_VERSION FUSEPY_PYTHON
QBITTORRENT_API_VERSION=2026.10.1
QBITTORRENT_API_PYTHON=${QBITTORRENT_API_PYTHON:-$HOME/.cache/bittorrent-over-scion/qbittorrent-api-$QBITTORRENT_API_VERSION/bin/python}
export QBITTORRENT_API_VERSION QBITTORRENT_API_PYTHON
