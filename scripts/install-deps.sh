#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine (run as root).
# pocketscion builds BoringSSL: cmake, clang, libclang-dev. Tests use mktorrent and iproute2;
# the interop tests use real BitTorrent clients. Only missing packages are installed.
set -euo pipefail

packages=(cmake clang libclang-dev pkg-config mktorrent iproute2 python3)
# The web UI's browser test: Debian's Chromium driven by playwright-core (npm), never a
# downloaded browser. Node 20+ and npm are taken from Debian only when no node/npm is installed
# (a NodeSource nodejs already ships npm, and Debian's npm package would conflict with it).
packages+=(chromium chromium-driver)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
if [ "${WITH_CLIENTS:-1}" = 1 ]; then
  packages+=(python3-libtorrent transmission-cli transmission-daemon aria2 opentracker)
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
