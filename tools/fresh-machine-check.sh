#!/usr/bin/env bash
# Fresh-machine check: builds a clean Debian root with mmdebstrap (minbase: the required packages and apt, plus
# the .NET SDK's own prerequisites: ca-certificates, ICU, OpenSSL, zlib, libstdc++), copies this machine's .NET SDK
# in, puts the committed tree of this repository (git archive HEAD, as a fresh clone has it) at /src, and runs
# the README's Quick start commands in it with chroot, one after the other, printing the tail of each.
# Needs root, mmdebstrap (apt-get install mmdebstrap) and Debian's mirror; takes long on a small machine.
#
# Usage: sudo bash tools/fresh-machine-check.sh [--suite bookworm] [--work DIR] [--keep] [--reuse-root]
#   --work DIR  where the root and the logs go (default /var/tmp/microexpr-fresh); the root is made anew each time
#   --keep      keep the root afterwards (default: deleted; the logs stay)
#   --reuse-root  use the root already in DIR (made with --keep) instead of a new one: the SDK and the tree are
#               copied in again, what earlier runs installed or built stays (not a fresh machine any more)
# Exit code: 0 when every Quick start command exited 0.
set -euo pipefail

suite=bookworm
work=/var/tmp/microexpr-fresh
keep=0
reuse=0
while [ $# -gt 0 ]; do
    case "$1" in
        --suite) suite="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        --reuse-root) reuse=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "fresh-machine-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "fresh: $(date -u +%H:%M:%S) $*"; }

[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: run as root (chroot and mounts)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "fresh-machine-check: mmdebstrap is missing: apt-get install mmdebstrap" >&2; exit 1; }
dotnet_dir="$(dirname "$(readlink -f "$(command -v dotnet)")")"
[ -x "$dotnet_dir/dotnet" ] || { echo "fresh-machine-check: no .NET SDK found on PATH" >&2; exit 1; }

case "$suite" in
    bookworm) icu=libicu72 ;;
    trixie) icu=libicu76 ;;
    *) icu="$(apt-cache depends dotnet-host 2>/dev/null | grep -o 'libicu[0-9]*' | head -n1 || true)"; icu="${icu:-libicu72}" ;;
esac

root="$work/root"
logs="$work/logs"
mkdir -p "$work" "$logs"

mounted=()
cleanup() {
    local m i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m="${mounted[$i]}"
        umount -l "$m" 2>/dev/null || true
    done
    if [ "$keep" -eq 0 ] && [ -d "$root" ]; then
        rm -rf --one-file-system "$root"
    fi
}
trap cleanup EXIT

if [ "$reuse" -eq 1 ] && [ -d "$root/usr" ]; then
    say "reusing the root in $root (not a fresh machine: what earlier runs installed stays)"
else
    rm -rf --one-file-system "$root"
    say "mmdebstrap $suite (minbase + the SDK's prerequisites) into $root"
    mmdebstrap --variant=minbase --include="ca-certificates,$icu,libssl3,zlib1g,libstdc++6" "$suite" "$root" \
        >"$logs/mmdebstrap.log" 2>&1 || { tail -n 30 "$logs/mmdebstrap.log"; exit 1; }
fi

say "copying the .NET SDK ($("$dotnet_dir/dotnet" --version)) and the repository (git archive HEAD: $(git -C "$repo_root" rev-parse --short HEAD))"
mkdir -p "$root/usr/share/dotnet" "$root/src"
cp -a "$dotnet_dir/." "$root/usr/share/dotnet/"
ln -sf /usr/share/dotnet/dotnet "$root/usr/bin/dotnet"
git -C "$repo_root" archive --format=tar HEAD | tar -x -C "$root/src"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Network plumbing of this machine, not set-up of the project: behind a TLS-inspecting proxy, the clean root must
# trust the same local CAs (/usr/local/share/ca-certificates) as this machine, or no package registry answers.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || say "warning: update-ca-certificates failed in the root"
fi
passthrough=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY NUGET_CERT_REVOCATION_MODE; do
    [ -n "${!v:-}" ] && passthrough+=("$v=${!v}")
done

mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --rbind /sys "$root/sys" && mounted+=("$root/sys")
mount --rbind /dev "$root/dev" && mounted+=("$root/dev")

# The README's Quick start commands: the lines of the first ```bash block after "## Quick start".
mapfile -t commands < <(awk '/^## Quick start/ {q = 1} q && /^```bash/ {b = 1; next} b && /^```/ {exit} b && NF {print}' "$root/src/README.md")
[ "${#commands[@]}" -gt 0 ] || { echo "fresh-machine-check: no Quick start commands found in README.md" >&2; exit 1; }

status=0
i=0
for cmd in "${commands[@]}"; do
    i=$((i + 1))
    say "command $i: $cmd"
    start=$(date +%s)
    set +e
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
        LANG=C.UTF-8 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 "${passthrough[@]}" \
        bash -c "cd /src && $cmd" </dev/null >"$logs/command-$i.log" 2>&1
    rc=$?
    set -e
    say "command $i exited $rc after $(( $(date +%s) - start )) s; its last lines:"
    tail -n 15 "$logs/command-$i.log" | sed 's/^/    /'
    [ "$rc" -eq 0 ] || status=1
done
say "done: $([ "$status" -eq 0 ] && echo "every command succeeded" || echo "a command failed"); logs in $logs"
exit "$status"
