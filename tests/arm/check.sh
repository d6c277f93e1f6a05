#!/usr/bin/env bash
# The Pi's own architectures without a Pi: a Debian bookworm root for arm64 or armhf, run under
# qemu-user-static (binfmt_misc), in which deploy/install.sh installs a wheel built from this checkout
# exactly as on a box, then `coldchain check-config` and `coldchain demo` must do their job.
#
#   sudo tests/arm/check.sh arm64|armhf        (`make test-arm` runs both)
#
# Needs root (debootstrap, chroot, mounts in a private namespace), the Debian packages debootstrap,
# qemu-user-static and binfmt-support, and the Debian and PyPI registries. The bare root is cached as
# ARM_CACHE/bookworm-ARCH.tar (default .arm/ in the checkout); every run unpacks a fresh copy of it, so a
# cached root never hides an install step. Report: ARM_CACHE/ARCH/report.txt (wheels, memory, timings).
set -euo pipefail

ARCH=${1:?usage: $0 arm64|armhf}
case $ARCH in
    arm64) QEMU=aarch64; DEFAULT_PORT=18641 ;;
    armhf) QEMU=arm; DEFAULT_PORT=18642 ;;
    *) echo "unknown architecture $ARCH (arm64 or armhf)" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
CACHE=${ARM_CACHE:-$SRC/.arm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PORT=${ARM_PORT:-$DEFAULT_PORT}
DEMO_SECONDS=${ARM_DEMO_SECONDS:-420}  # emulated Python starts slowly: imports take tens of seconds
BASE=$CACHE/bookworm-$ARCH.tar
ROOT=$CACHE/$ARCH/root
OUT=$CACHE/$ARCH
REPORT=$OUT/report.txt
# The root's packages: what Raspberry Pi OS Lite has that the installer relies on (python3, venv,
# ca-certificates for PyPI over https); procps only for this check's memory reading.
PACKAGES=python3,python3-venv,ca-certificates,procps

say() { printf 'test-arm %s: %s\n' "$ARCH" "$*"; }
fail() { printf 'test-arm %s: FAILED: %s\n' "$ARCH" "$*" >&2; exit 1; }
now() { date +%s; }

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, chroot and mounts need it)"
for tool in debootstrap unshare chroot curl; do
    command -v "$tool" >/dev/null || fail "$tool not found: apt-get install debootstrap qemu-user-static binfmt-support curl"
done
[ -x "/usr/bin/qemu-$QEMU-static" ] || fail "/usr/bin/qemu-$QEMU-static missing: apt-get install qemu-user-static"

binfmt() {
    local entry=/proc/sys/fs/binfmt_misc/qemu-$QEMU
    [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || fail "binfmt_misc cannot be mounted here: $ARCH programs cannot run"
    [ -e "$entry" ] || update-binfmts --enable "qemu-$QEMU" >/dev/null 2>&1 || true
    [ -e "$entry" ] || fail "no binfmt entry qemu-$QEMU: apt-get install binfmt-support qemu-user-static"
    grep -q enabled "$entry" || fail "binfmt entry qemu-$QEMU is disabled (update-binfmts --enable qemu-$QEMU)"
    # F (fix binary): the kernel holds the interpreter open, so it works inside a chroot without a copy.
    grep -q '^flags:.*F' "$entry" || fail "binfmt entry qemu-$QEMU lacks the F flag; a chroot cannot find qemu"
}

bare_root() {
    [ -s "$BASE" ] && { say "bare root from cache $BASE"; return; }
    local tmp=$CACHE/$ARCH.debootstrap t0
    t0=$(now)
    rm -rf "$tmp"
    mkdir -p "$tmp"
    say "debootstrap bookworm $ARCH from $MIRROR (first run only)"
    debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" bookworm "$tmp" "$MIRROR" \
        >"$CACHE/debootstrap-$ARCH.log" 2>&1 || fail "debootstrap failed, see $CACHE/debootstrap-$ARCH.log"
    tar -C "$tmp" -cf "$BASE.part" . && mv "$BASE.part" "$BASE"
    rm -rf "$tmp"
    echo "debootstrap: $(( $(now) - t0 )) s" >>"$REPORT"
}

fresh_root() {
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xf "$BASE"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"  # PyPI is reached through the host's resolver
    mkdir -p "$ROOT/tmp/cc"
    # A site whose uplink goes through a TLS-inspecting proxy adds its CA as on any Debian box; so does this
    # check when the build machine has one (the root then trusts what the host trusts, nothing more).
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
        in_root /usr/sbin/update-ca-certificates >/dev/null 2>&1 || fail "update-ca-certificates in the root"
    fi
}

wheel() {
    local dist=$OUT/dist
    rm -rf "$dist"
    # the wheel ships the pages' chart library, built by npm on this machine, as deploy/install.sh does
    [ -f "$SRC/daemon/api/static/vendor/uPlot.iife.min.js" ] || "$SRC/deploy/assets.sh" || fail "deploy/assets.sh"
    python3 -m pip wheel -q --no-deps -w "$dist" "$SRC" >/dev/null || fail "building the wheel from $SRC"
    WHEEL=$(find "$dist" -name 'coldchain_monitor-*.whl' | head -n 1)
    [ -n "$WHEEL" ] || fail "no coldchain_monitor-*.whl from $SRC"
    cp "$WHEEL" "$ROOT/tmp/cc/"
    # the checkout as an installer on a Pi has it (git clone): the tracked files, no venv or caches
    (cd "$SRC" && git ls-files -z | tar --null -T - -cf -) | tar -C "$ROOT/tmp/cc" -xf -
}

# In a private mount namespace, so nothing stays mounted if this script dies.
# shellcheck disable=SC2016  # the inner sh expands them
in_root() {
    unshare -m -- /bin/sh -c '
        set -e
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount -t sysfs sys "$r/sys"
        mount --rbind /dev "$r/dev"
        exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
            ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} "$@"
    ' sh "$ROOT" "$@"
}

# armhf without piwheels: the installer must refuse before it installs anything and name the fix; then the
# fix it names is applied, as an installer would, and the real install follows.
armhf_refusal() {
    local t0 log=$OUT/install-refused.log
    [ "$ARCH" = armhf ] || return 0
    if in_root /tmp/cc/deploy/install.sh --wheel "/tmp/cc/$(basename "$WHEEL")" >"$log" 2>&1; then
        fail "install.sh went ahead on armhf with no compiler and no piwheels (see $log)"
    fi
    grep -q "32-bit ARM (armhf) without piwheels" "$log" || { cat "$log" >&2; fail "install.sh failed without naming the fix"; }
    [ ! -e "$ROOT/opt/coldchain" ] || fail "install.sh refused only after creating /opt/coldchain"
    say "install.sh refused first, naming the fix: $(grep -o 'apt-get install -y [a-z0-9 .-]*' "$log" | head -n 1)"
    t0=$(now)
    in_root /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$OUT/apt.log" 2>&1 \
        || fail "apt-get update in the root, see $OUT/apt.log"
    in_root /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        build-essential python3-dev libffi-dev >>"$OUT/apt.log" 2>&1 || fail "apt-get install in the root, see $OUT/apt.log"
    echo "armhf: install.sh refused with no compiler (as it must); apt-get install build-essential python3-dev libffi-dev: $(( $(now) - t0 )) s (emulated)" >>"$REPORT"
}

install_wheel() {
    local t0
    t0=$(now)
    say "deploy/install.sh --wheel $(basename "$WHEEL") inside the $ARCH root"
    in_root /tmp/cc/deploy/install.sh --wheel "/tmp/cc/$(basename "$WHEEL")" >"$OUT/install.log" 2>&1 \
        || { tail -n 30 "$OUT/install.log" >&2; fail "deploy/install.sh failed, see $OUT/install.log"; }
    echo "install.sh: $(( $(now) - t0 )) s (emulated)" >>"$REPORT"
    in_root /usr/bin/uname -m >>"$REPORT"
    in_root /opt/coldchain/bin/coldchain check-config /etc/coldchain/config.yaml >"$OUT/check-config.log" 2>&1 \
        || { cat "$OUT/check-config.log" >&2; fail "coldchain check-config /etc/coldchain/config.yaml"; }
    say "check-config passed: $(tail -n 1 "$OUT/check-config.log")"
}

wheel_list() {
    echo "wheels installed in /opt/coldchain (name version: tags; 'built here' = no wheel on PyPI, compiled from the sdist):" >>"$REPORT"
    in_root /opt/coldchain/bin/python -I /tmp/cc/tests/arm/wheels.py >>"$REPORT"
}

demo() {
    local log=$OUT/demo.log pid t0 up="" sms="" zones rss
    t0=$(now)
    say "coldchain demo on 127.0.0.1:$PORT for up to $DEMO_SECONDS s"
    in_root /opt/coldchain/bin/coldchain demo --port "$PORT" --speed 120 --duration "$DEMO_SECONDS" \
        --data-dir /var/tmp/demo >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ $(( $(now) - t0 )) -lt "$DEMO_SECONDS" ]; do
        [ -n "$up" ] || ! curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" || up=$(( $(now) - t0 ))
        grep -q '【冷库告警】' "$log" && { sms=$(( $(now) - t0 )); break; }
        sleep 2
    done
    [ -n "$sms" ] || { kill "$pid" 2>/dev/null; tail -n 30 "$log" >&2; fail "the demo printed no alarm SMS"; }
    curl -fsS "http://127.0.0.1:$PORT/" | grep -q app.js || fail "the page on 127.0.0.1:$PORT has no app.js"
    zones=$(curl -fsS "http://127.0.0.1:$PORT/api/v1/zones")
    python3 -c 'import json, sys
z = {x["id"]: x for x in json.loads(sys.argv[1])["zones"]}
assert z["mandarin"]["state"] == "firing", z["mandarin"]["state"]' "$zones" || fail "mandarin is not firing: $zones"
    rss=$(ps -o rss= -p "$(pgrep -f "coldchain demo --port $PORT" | tail -n 1)" 2>/dev/null || echo "?")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    python3 -c 'import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("select count(*) from readings").fetchone()[0]
assert n > 0, "no readings"
print(n)' "$ROOT/var/tmp/demo/journal.db" >"$OUT/readings.txt" || fail "the demo journal holds no readings"
    grep '【冷库告警】' "$log" | head -n 1 >>"$REPORT"
    {
        echo "demo: page up after ${up:-?} s, alarm SMS after $sms s (emulated, --speed 120)"
        echo "demo: $(cat "$OUT/readings.txt") readings in the journal"
        echo "demo: resident memory ${rss} KiB (qemu-user's own translator and code cache included; not a Pi's figure)"
    } >>"$REPORT"
    say "demo raised its alarm after $sms s; the page answered; $(cat "$OUT/readings.txt") readings journaled"
}

mkdir -p "$OUT"
: >"$REPORT"
echo "test-arm $ARCH, $(date -u +%FT%TZ), host $(uname -m), qemu $(/usr/bin/qemu-$QEMU-static --version | head -n 1)" >>"$REPORT"
binfmt
bare_root
fresh_root
wheel
armhf_refusal
install_wheel
wheel_list
demo
say "passed; report in $REPORT"
cat "$REPORT"
