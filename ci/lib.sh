#!/usr/bin/env bash
# ci/lib.sh — shared helpers for the ci/ scripts. Source it, don't run it:
#
#   source "$(dirname "$0")/lib.sh"
#
# Everything here is idempotent and quick when the machine already has what is asked for, so
# the scripts can be run again and again on a developer's machine as well as on a fresh Debian 12
# CI machine.
#
#   ensure_apt PKG...   install the Debian packages that are not installed yet (apt-get update
#                       once per script run, only if something is missing; sudo only if not root)
#   ensure_rust         make `cargo` available (rustup, stable, minimal profile, if missing)
#   ensure_node         make `node` and `npm` available (Debian's nodejs + npm, if missing)
#   ensure_moto         moto (the S3 test server) in target/tools/ (a venv, pinned versions)
#   ensure_ipfs         js-ipfs (the IPFS test node) in target/tools/ (`npm ci` of ci/ipfs/, pinned)
#   repo_root           print the repository root (the folder above ci/)
#   FFMPEG_DEV_PKGS     the Debian packages the ffmpeg-next crate builds against

set -euo pipefail

# The FFmpeg libraries (headers + runtime libs come with the -dev packages) and what bindgen in
# ffmpeg-sys-next needs (clang, libclang) to build the `selfcast` binary.
# shellcheck disable=SC2034  # used by the scripts that source this file
FFMPEG_DEV_PKGS="libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev clang libclang-dev pkg-config"

# log MSG... — a progress line on stderr, easy to spot in a long CI log.
log() {
    if [ -t 2 ]; then
        printf '\033[1m==> %s\033[0m\n' "$*" >&2
    else
        printf '==> %s\n' "$*" >&2
    fi
}

repo_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
}

# Run a command as root: directly if we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

_APT_UPDATED=0

# ensure_apt PKG... — install whichever of the packages are not installed.
ensure_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        # `dpkg -s` says "Status: install ok installed" for a package that is fully installed.
        if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    log "apt-get install ${missing[*]}"
    if [ "$_APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

# ensure_rust — cargo on PATH, installing rustup's stable toolchain if there is none.
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if command -v cargo >/dev/null 2>&1; then
        return 0
    fi
    ensure_apt curl ca-certificates build-essential
    log "installing Rust (rustup, stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --profile minimal --default-toolchain stable
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
}

# ensure_node — node and npm on PATH (Debian's packages when missing; Node 18+ is enough).
ensure_node() {
    if ! command -v node >/dev/null 2>&1; then
        ensure_apt nodejs npm
    elif ! command -v npm >/dev/null 2>&1; then
        ensure_apt npm
    fi
}

# The S3-compatible server the storage tests run against: moto in server mode, from PyPI, in a
# venv of Debian's python3. Its location is what tests/common/s3.rs looks for.
MOTO_VERSION=5.2.1
MOTO_VENV="${SELFCAST_MOTO_VENV:-$(repo_root)/target/tools/moto-$MOTO_VERSION}"

# ensure_moto — $MOTO_VENV/bin/moto_server, installing it when missing (pinned versions).
ensure_moto() {
    if [ -x "$MOTO_VENV/bin/moto_server" ]; then
        return 0
    fi
    ensure_apt python3 python3-venv
    log "installing moto $MOTO_VERSION (S3 test server) into $MOTO_VENV"
    rm -rf "$MOTO_VENV"
    /usr/bin/python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "moto[s3]==$MOTO_VERSION" "flask==3.1.3" "flask-cors==6.0.5"
}

# The IPFS node the IPFS storage tests run against: js-ipfs (npm's `ipfs`; Kubo's npm packages
# download their binary at install time), pinned by ci/ipfs/package-lock.json, installed with
# `npm ci` outside the source tree. Its location is what tests/common/ipfs.rs looks for.
IPFS_VERSION=0.66.1
IPFS_DIR="${SELFCAST_IPFS_DIR:-$(repo_root)/target/tools/ipfs-$IPFS_VERSION}"

# ensure_ipfs — $IPFS_DIR/node_modules/ipfs/src/cli.js, running `npm ci` when node_modules is
# missing or ci/ipfs/package-lock.json differs from the one it was installed from.
ensure_ipfs() {
    local src stamp
    src="$(repo_root)/ci/ipfs"
    stamp="$IPFS_DIR/node_modules/.selfcast-lock"
    ensure_node
    if [ -f "$IPFS_DIR/node_modules/ipfs/src/cli.js" ] && cmp -s "$src/package-lock.json" "$stamp"; then
        return 0
    fi
    log "installing js-ipfs $IPFS_VERSION (IPFS test node) into $IPFS_DIR"
    mkdir -p "$IPFS_DIR"
    cp "$src/package.json" "$src/package-lock.json" "$IPFS_DIR/"
    (cd "$IPFS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$src/package-lock.json" "$stamp"
}
