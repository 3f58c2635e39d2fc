#!/usr/bin/env bash
# Installs what the engine needs beyond the .NET SDK on a Debian or Ubuntu machine, when it is missing:
#   libgtk-3-0, libdrm2, libatomic1
#                OpenCV's native library (OpenCvSharp4.official.runtime.linux-x64) links against them (a minimal
#                Debian has none of them; GTK 3 does not bring the other two); the demo's synthetic faces, frame
#                decoding and Farneback flow go through it.
#   opencv-data  the Haar face cascades used to detect faces on real data (/usr/share/opencv4/haarcascades).
# Runs apt-get as root, or through password-less sudo; otherwise it prints the command to run and exits 1.
# Everything else (NuGet packages, the ScottPlot/SkiaSharp native assets, the report font) comes with the build.
# Usage: bash tools/setup.sh        (the README's first command runs it before the demo)
set -euo pipefail

say() { echo "setup: $*"; }

installed() {
    local pkg
    for pkg in "$@"; do
        if dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
            return 0
        fi
    done
    return 1
}

if ! command -v dotnet >/dev/null 2>&1; then
    echo "setup: error: 'dotnet' was not found on PATH; install the .NET 10 SDK first (version in global.json)" >&2
    exit 1
fi
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian-like system (no dpkg/apt-get): install GTK 3 (for OpenCV) and OpenCV's Haar cascades yourself"
    exit 0
fi

# Debian 13 and Ubuntu 24.04 name the GTK package libgtk-3-0t64; apt resolves the old name to it.
missing=()
installed libgtk-3-0 libgtk-3-0t64 || missing+=(libgtk-3-0)
installed libdrm2 || missing+=(libdrm2)
installed libatomic1 || missing+=(libatomic1)
installed opencv-data || missing+=(opencv-data)
if [ "${#missing[@]}" -eq 0 ]; then
    say "libgtk-3-0, libdrm2, libatomic1 and opencv-data are installed; nothing to do"
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "setup: error: ${missing[*]} missing; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

say "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq </dev/null || say "apt-get update failed; trying the existing package lists"
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null; then
    echo "setup: error: could not install ${missing[*]}; run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
say "installed ${missing[*]}"
