#!/usr/bin/env bash
# coldchain-monitor installer: from a bare Raspberry Pi OS / Debian box to a supervised daemon.
#
#   sudo deploy/install.sh                      install or upgrade from this checkout
#   sudo deploy/install.sh --wheel FILE.whl     ... from a built wheel
#   sudo deploy/install.sh --uninstall          remove program and unit; keep config and journal
#   sudo deploy/install.sh --uninstall --purge  ... and delete config, journal and the user
#   deploy/install.sh --root /tmp/img           stage into a root (image build, CI): touches nothing outside it
#
# What lands where (a --root DIR is put in front of every path):
#   PREFIX (/opt/coldchain)            a Python virtual environment with the daemon; README/docs in PREFIX/share
#   /etc/coldchain/config.yaml         from config/example.yaml, only if absent (an upgrade writes config.yaml.new)
#   /etc/coldchain/environment         secrets as environment variables (0600 root), only if absent
#   /var/lib/coldchain                 the journal; owner coldchain, mode 0750
#   /etc/systemd/system/coldchain.service and its multi-user.target.wants link (enabled)
#   /etc/sysusers.d/coldchain.conf     the coldchain user (group dialout for the serial ports)
#   /etc/tmpfiles.d/coldchain.conf     owner and mode of the state folder and the config
# With --root, the user and the ownership are only recorded in those two files (systemd-sysusers and
# systemd-tmpfiles apply them on the target's first boot); without --root they are applied now.
# pip honours PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS and PIP_NO_INDEX (offline installs).
set -euo pipefail
umask 022   # the venv and unit must be readable by the coldchain user and by systemd, whatever root's umask is
# Only the environment's own packages: a PYTHONPATH (or user site) would hide missing dependencies from pip.
unset PYTHONPATH PYTHONHOME PYTHONUSERBASE VIRTUAL_ENV PIP_USER PIP_TARGET PIP_PREFIX
export PYTHONNOUSERSITE=1

PROG=${0##*/}
ARGS=$*
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
ROOT=${DESTDIR:-}
PREFIX=/opt/coldchain
PYTHON=python3
WHEEL=""
ACTION=install
PURGE=0
START=auto
USER_NAME=coldchain
CONF_DIR=/etc/coldchain
STATE_DIR=/var/lib/coldchain
UNIT_DIR=/etc/systemd/system
UNIT=coldchain.service
MARKER=.coldchain-install   # in PREFIX: proves a folder is ours before --uninstall deletes it
EXAMPLE=$SRC/config/example.yaml

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    cat <<EOF
usage: $PROG [--root DIR] [--prefix DIR] [--python PY] [--wheel FILE] [--no-start]
       $PROG --uninstall [--purge] [--root DIR] [--prefix DIR]

  --root DIR     install under DIR instead of / (also: DESTDIR=DIR); no user is created and
                 systemctl is not called: both are recorded for the target system instead
  --prefix DIR   where the virtual environment goes (default /opt/coldchain)
  --python PY    the Python (>= 3.11) to build the environment with (default python3)
  --wheel FILE   install this wheel instead of the checkout the script sits in ($SRC);
                 the example config comes from the wheel, the unit from the checkout
  --no-start     on an upgrade, do not restart a running service
  --uninstall    remove the program, the unit and its link; keep config, journal and user
  --purge        with --uninstall: also delete $CONF_DIR, $STATE_DIR and the user
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        --root) ROOT=${2:?--root needs a folder}; shift 2 ;;
        --root=*) ROOT=${1#*=}; shift ;;
        --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --python) PYTHON=${2:?--python needs a program}; shift 2 ;;
        --python=*) PYTHON=${1#*=}; shift ;;
        --wheel) WHEEL=${2:?--wheel needs a file}; shift 2 ;;
        --wheel=*) WHEEL=${1#*=}; shift ;;
        --no-start) START=no; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[ "$PURGE" = 0 ] || [ "$ACTION" = uninstall ] || die "--purge only goes with --uninstall"
case $PREFIX in
    /?*) PREFIX=${PREFIX%/} ;;
    *) die "--prefix must be an absolute folder other than /, not '$PREFIX'" ;;
esac
case $PREFIX in
    /|/usr|/usr/local|/opt|/etc|/var|/var/lib|/home|/root|/bin|/sbin|/lib) die "--prefix $PREFIX is a system folder" ;;
esac
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || ROOT=""
fi

# LIVE: installing onto this machine (useradd, chown); SYSTEMD: and systemd runs it (systemctl).
LIVE=0
if [ -z "$ROOT" ]; then
    [ "$(id -u)" = 0 ] || die "run as root (sudo $0 $ARGS), or stage into a folder with --root DIR"
    LIVE=1
fi
SYSTEMD=0
if [ "$LIVE" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    SYSTEMD=1
fi

VENV=$ROOT$PREFIX
CONF=$ROOT$CONF_DIR
STATE=$ROOT$STATE_DIR
UNITS=$ROOT$UNIT_DIR
SYSUSERS=$ROOT/etc/sysusers.d/coldchain.conf
TMPFILES=$ROOT/etc/tmpfiles.d/coldchain.conf

# ------------------------------------------------------------------ uninstall

uninstall() {
    if [ -e "$VENV" ] && [ ! -f "$VENV/$MARKER" ]; then
        die "$VENV was not made by this installer (no $MARKER); nothing removed"
    fi
    if [ "$SYSTEMD" = 1 ]; then
        say "stopping and disabling $UNIT"
        systemctl disable --now "$UNIT" >/dev/null 2>&1 || true
    elif [ -n "$ROOT" ]; then
        say "installing into a root: systemctl not called"
    else
        say "systemd is not running here: systemctl not called"
    fi
    rm -f "$UNITS/multi-user.target.wants/$UNIT" "$UNITS/$UNIT" "$TMPFILES"
    [ "$SYSTEMD" = 0 ] || systemctl daemon-reload
    if [ -e "$VENV" ]; then
        rm -rf "$VENV"
        say "removed $VENV"
    fi
    if [ "$PURGE" = 0 ]; then
        say "kept $CONF and $STATE (the journal); delete them with --uninstall --purge"
        return
    fi
    rm -rf "$CONF" "$STATE" "$SYSUSERS"
    say "purged $CONF and $STATE"
    if [ "$LIVE" = 1 ] && id "$USER_NAME" >/dev/null 2>&1; then
        if userdel "$USER_NAME"; then
            say "deleted user $USER_NAME"
        else
            say "could not delete user $USER_NAME (a process still runs as it?)"
        fi
    fi
}

if [ "$ACTION" = uninstall ]; then
    uninstall
    exit 0
fi

# ------------------------------------------------------------------ install

[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || die "no such wheel: $WHEEL"
[ -n "$WHEEL" ] || [ -f "$SRC/pyproject.toml" ] || die "no project at $SRC: give --wheel FILE"
[ -n "$WHEEL" ] || [ -f "$SRC/config/example.yaml" ] || die "missing $SRC/config/example.yaml"
[ -f "$SRC/deploy/systemd/$UNIT" ] || die "missing $SRC/deploy/systemd/$UNIT"

check_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found: apt-get install python3 python3-venv"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$PYTHON" -V 2>&1) is too old: Python 3.11 or newer is needed (Raspberry Pi OS / Debian 12 bookworm has it)"
    if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        if [ "$LIVE" = 1 ] && command -v apt-get >/dev/null; then
            say "installing python3-venv (Debian splits venv out of python3)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
        else
            die "$PYTHON cannot make virtual environments: apt-get install python3-venv"
        fi
    fi
    say "using $("$PYTHON" -V 2>&1) ($(command -v "$PYTHON"))"
}

# 32-bit ARM (armhf: Pi OS 32-bit, Pi Zero/1/2/3 on old images): pycryptodome (encrypted BTHome), cffi and
# argon2-cffi-bindings (sign-in passwords) publish no armhf wheel on PyPI, so pip compiles them. Raspberry Pi OS
# sets piwheels.org in /etc/pip.conf, which has them built; plain Debian armhf needs a C compiler. Say so before
# anything is installed, not after ten minutes of pip (tests/arm/check.sh armhf shows both paths).
check_armhf_build() {
    case $(uname -m) in armv6l|armv7l|armv8l) ;; *) return 0 ;; esac
    [ -z "${PIP_NO_INDEX:-}" ] || return 0  # an offline install (PIP_NO_INDEX + PIP_FIND_LINKS) brings its own wheels
    if grep -qs piwheels /etc/pip.conf "${PIP_CONFIG_FILE:-/nonexistent}" || [[ "${PIP_EXTRA_INDEX_URL:-}${PIP_INDEX_URL:-}" == *piwheels* ]]; then
        say "32-bit ARM: pip uses piwheels for the compiled dependencies"
        return 0
    fi
    local missing=()
    command -v cc >/dev/null || missing+=(build-essential)
    "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || missing+=(python3-dev)
    [ -e /usr/include/ffi.h ] || compgen -G "/usr/include/*/ffi.h" >/dev/null || missing+=(libffi-dev)
    [ ${#missing[@]} = 0 ] && { say "32-bit ARM: no piwheels; pip compiles pycryptodome, cffi and argon2 here (several minutes)"; return 0; }
    die "32-bit ARM (armhf) without piwheels: pycryptodome, cffi and argon2-cffi-bindings have no armhf wheel on PyPI and must be compiled here, which needs: ${missing[*]}.
  Fix, either:  sudo apt-get install -y build-essential python3-dev libffi-dev   and run this installer again,
  or use Raspberry Pi OS, whose /etc/pip.conf takes prebuilt armhf wheels from piwheels.org
  (or: PIP_EXTRA_INDEX_URL=https://www.piwheels.org/simple sudo -E $0 $ARGS)."
}

create_user() {
    mkdir -p "$(dirname "$SYSUSERS")"
    cat >"$SYSUSERS" <<EOF
# coldchain-monitor: the daemon's system user; dialout opens /dev/ttyUSB*, /dev/ttyAMA*. Written by $PROG.
u $USER_NAME - "coldchain-monitor daemon" $STATE_DIR /usr/sbin/nologin
m $USER_NAME dialout
EOF
    if [ "$LIVE" = 0 ]; then
        say "installing into a root: user $USER_NAME recorded in ${SYSUSERS#"$ROOT"} (systemd-sysusers creates it at boot), not created"
        return
    fi
    getent group dialout >/dev/null || groupadd --system dialout
    if id "$USER_NAME" >/dev/null 2>&1; then
        say "user $USER_NAME exists"
    else
        getent group "$USER_NAME" >/dev/null || groupadd --system "$USER_NAME"
        useradd --system --gid "$USER_NAME" --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "coldchain-monitor daemon" "$USER_NAME"
        say "created system user $USER_NAME"
    fi
    usermod -a -G dialout "$USER_NAME"
}

install_venv() {
    local fresh=0 pip wheel tmp
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        say "upgrading the environment in $VENV"
    else
        [ ! -e "$VENV" ] || [ -f "$VENV/$MARKER" ] || [ -z "$(ls -A "$VENV")" ] \
            || die "$VENV exists and was not made by this installer; remove it or choose --prefix"
        rm -rf "$VENV"
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
        fresh=1
        say "created the environment $VENV"
    fi
    touch "$VENV/$MARKER"
    pip=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064  # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    if [ -n "$WHEEL" ]; then
        wheel=$WHEEL
    else
        # the pages' chart library is built by npm (gitignored, not in git): build it now if npm is here
        if [ ! -f "$SRC/daemon/api/static/vendor/uPlot.iife.min.js" ]; then
            command -v npm >/dev/null \
                || die "the pages' assets are not built in $SRC: run 'make assets' there (needs nodejs npm), or give --wheel FILE"
            say "building the pages' assets (npm ci)"
            "$SRC/deploy/assets.sh"
        fi
        say "building the wheel from $SRC"
        "${pip[@]}" wheel --no-deps -w "$tmp" "$SRC"
        wheel=$(find "$tmp" -name 'coldchain_monitor-*.whl' | head -n 1)
        [ -n "$wheel" ] || die "building the wheel from $SRC gave no coldchain_monitor-*.whl"
    fi
    say "installing $(basename "$wheel") and its pinned dependencies (from PyPI, or piwheels on Raspberry Pi OS)"
    # The project itself always (same version number or not), then whatever pins changed.
    "${pip[@]}" install --no-deps --force-reinstall "$wheel"
    "${pip[@]}" install "$wheel"
    "${pip[@]}" check >/dev/null || die "pip check found broken dependencies in $VENV"
    if [ -n "$ROOT" ]; then
        # Scripts and activate files name $ROOT$PREFIX (#!$ROOT$PREFIX/bin/python); on the target it is $PREFIX.
        grep -rlI --null -F "$VENV" "$VENV/bin" | xargs -0 -r sed -i "s|$VENV|$PREFIX|g"
    fi
    mkdir -p "$VENV/share"
    cp "$SRC/README.md" "$VENV/share/README.md"
    [ ! -f "$SRC/docs/install.md" ] || cp "$SRC/docs/install.md" "$VENV/share/install.md"
    [ "$fresh" = 1 ] || say "the environment keeps its Python: to change it, --uninstall first"
    # The example config of the version just installed (a --wheel may be newer than this checkout).
    EXAMPLE=$("$VENV/bin/python" -I -c 'from daemon.config.catalog import default_catalog_path as p; print(p().parent / "example.yaml")')
    [ -f "$EXAMPLE" ] || EXAMPLE=$SRC/config/example.yaml
}

check_user_can_run() {
    [ "$LIVE" = 1 ] || return 0
    runuser -u "$USER_NAME" -- "$VENV/bin/python" -I -c 'import daemon' 2>/dev/null \
        || die "user $USER_NAME cannot run $VENV/bin/python: is $PYTHON under /root or a home folder? Use a system Python (--python /usr/bin/python3)"
}

install_config() {
    mkdir -p "$CONF"
    chmod 0755 "$CONF"
    if [ -f "$CONF/config.yaml" ]; then
        if cmp -s "$EXAMPLE" "$CONF/config.yaml"; then
            rm -f "$CONF/config.yaml.new"
        else
            install -m 0644 "$EXAMPLE" "$CONF/config.yaml.new"
            say "kept your ${CONF_DIR}/config.yaml; this version's example is beside it as config.yaml.new"
        fi
    else
        install -m 0640 "$EXAMPLE" "$CONF/config.yaml"
        say "wrote ${CONF_DIR}/config.yaml from the example: edit it (site, rooms, sensors, contacts)"
    fi
    if [ ! -f "$CONF/environment" ]; then
        install -m 0600 /dev/null "$CONF/environment"
        cat >"$CONF/environment" <<'EOF'
# Secrets for coldchain-monitor as NAME=value lines, read by systemd (as root) when the service starts.
# Refer to them in config.yaml as {env: NAME}, e.g.  token: {env: COLDCHAIN_TOKEN_ZHANG}
# COLDCHAIN_TOKEN_ZHANG=
EOF
        say "wrote ${CONF_DIR}/environment (mode 0600) for secrets given as environment variables"
    fi
    mkdir -p "$(dirname "$TMPFILES")"
    cat >"$TMPFILES" <<EOF
# coldchain-monitor: owner and mode of its state folder and config. Written by $PROG.
d $STATE_DIR 0750 $USER_NAME $USER_NAME -
z $CONF_DIR/config.yaml 0640 root $USER_NAME -
z $CONF_DIR/environment 0600 root root -
EOF
    mkdir -p "$STATE"
    chmod 0750 "$STATE"
    if [ "$LIVE" = 1 ]; then
        chown "$USER_NAME:$USER_NAME" "$STATE"
        chown "root:$USER_NAME" "$CONF/config.yaml"
        chmod 0640 "$CONF/config.yaml"
    else
        say "installing into a root: owners recorded in ${TMPFILES#"$ROOT"} (systemd-tmpfiles applies them at boot), not set"
    fi
}

# The unit runs the daemon with PYTHONOPTIMIZE=2 and PYTHONPYCACHEPREFIX=$PREFIX/pycache: compile, as root, what it
# loads (the environment and the standard library; Debian ships only plain .pyc files), since the service can write
# neither. Python keys each file on its source's path: under --root the tree is moved to where the target has it.
compile_for_unit() {
    local pyc=$VENV/pycache stdlib staged
    stdlib=$("$VENV/bin/python" -I -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
    if [ -n "$ROOT" ] && [ -d "$pyc$PREFIX" ] && [ ! -e "$pyc$VENV" ]; then
        mkdir -p "$(dirname "$pyc$VENV")"   # an upgrade: where this run compiles, so unchanged files are kept
        mv "$pyc$PREFIX" "$pyc$VENV"
    fi
    "$VENV/bin/python" -I -OO -X pycache_prefix="$pyc" -m compileall -q -j 0 \
        -x "^$stdlib/(site-packages|dist-packages)/|/(test|tests|idlelib|tkinter|turtledemo|lib2to3|ensurepip)/" \
        "$stdlib" "$VENV/lib" >/dev/null \
        || say "warning: some modules did not compile for PYTHONOPTIMIZE=2; the daemon compiles those at each start"
    if [ -n "$ROOT" ] && [ -d "$pyc$VENV" ]; then
        staged=$(mktemp -d "$VENV/.pycache.XXXXXX")
        mkdir -p "$staged/tree$(dirname "$PREFIX")"
        mv "$pyc$VENV" "$staged/tree$PREFIX"
        [ ! -d "$pyc$stdlib" ] || { mkdir -p "$staged/tree$(dirname "$stdlib")"; mv "$pyc$stdlib" "$staged/tree$stdlib"; }
        rm -rf "$pyc"
        mv "$staged/tree" "$pyc"
        rmdir "$staged"
    fi
    say "compiled the environment and the standard library for the unit's PYTHONOPTIMIZE=2 ($(du -sh "$pyc" | cut -f1))"
}

install_unit() {
    local was_active=0
    mkdir -p "$UNITS/multi-user.target.wants"
    if [ "$SYSTEMD" = 1 ] && systemctl is-active --quiet "$UNIT"; then
        was_active=1
    fi
    sed -e "s|/opt/coldchain/|$PREFIX/|g" "$SRC/deploy/systemd/$UNIT" >"$UNITS/$UNIT.tmp"
    chmod 0644 "$UNITS/$UNIT.tmp"
    mv -f "$UNITS/$UNIT.tmp" "$UNITS/$UNIT"
    if [ "$SYSTEMD" = 1 ]; then
        systemctl daemon-reload
        systemctl enable "$UNIT" >/dev/null 2>&1
        say "installed and enabled $UNIT_DIR/$UNIT"
        if [ "$was_active" = 1 ] && [ "$START" = auto ]; then
            systemctl restart "$UNIT"
            say "restarted the running service with the new version"
        fi
    else
        ln -sfn "$UNIT_DIR/$UNIT" "$UNITS/multi-user.target.wants/$UNIT"
        if [ -n "$ROOT" ]; then
            say "installing into a root: systemctl not called; $UNIT enabled by its multi-user.target.wants link"
        else
            say "systemd is not running here: systemctl not called; $UNIT enabled by its multi-user.target.wants link"
        fi
    fi
}

check_python
check_armhf_build
create_user
install_venv
compile_for_unit
check_user_can_run
install_config
install_unit

if ! "$VENV/bin/python" -I -m daemon check-config "$CONF/config.yaml" >/dev/null 2>&1; then
    say "note: ${CONF_DIR}/config.yaml does not pass check-config yet: run step 2 below to see why"
fi
cat <<EOF
$PROG: done: coldchain $("$VENV/bin/python" -I -m daemon --version 2>/dev/null | cut -d' ' -f2) in $PREFIX
next steps:
  1. edit ${CONF_DIR}/config.yaml (site, rooms, sensors, contacts); secrets go in ${CONF_DIR}/environment or files
  2. $PREFIX/bin/coldchain check-config ${CONF_DIR}/config.yaml
  3. sudo -u $USER_NAME $PREFIX/bin/coldchain doctor --config ${CONF_DIR}/config.yaml
  4. sudo systemctl start coldchain && journalctl -u coldchain -f
EOF
