#!/bin/sh
# Installs the Debian packages Cordon needs, or says exactly how to.
# Usage: scripts/deps.sh [--bench]
set -eu
pkgs="gcc make pkg-config libturbojpeg0-dev libpng-dev libavformat-dev
libavcodec-dev libavutil-dev libswscale-dev liblmdb-dev libssl-dev
libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev ffmpeg curl"
if [ "${1:-}" = "--bench" ]; then
    pkgs="$pkgs wrk"
fi
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "deps: missing Debian packages. Run:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
