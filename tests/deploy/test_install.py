"""deploy/install.sh into a temporary root: what lands where, upgrade, uninstall, purge; the unit verifies.

One real install (a venv with the pinned dependencies, built from this checkout) is shared by the module;
tests that change the tree work on a copy of it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.ports.model import Quality, Quantity, Reading
from daemon.storage.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install.sh"
UNIT = "etc/systemd/system/coldchain.service"


@dataclass
class Staged:
    root: Path
    out: str


def run_installer(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "VIRTUAL_ENV")}
    p = subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=900)
    if check:
        assert p.returncode == 0, f"install.sh {args} failed:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    root = tmp_path_factory.mktemp("root")
    p = run_installer("--root", root, "--python", sys.executable)
    return Staged(root, p.stdout + p.stderr)


@pytest.fixture
def copy(staged: Staged, tmp_path: Path) -> Path:
    dest = tmp_path / "root"
    shutil.copytree(staged.root, dest, symlinks=True)
    return dest


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def installed_python(root: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(root / "opt/coldchain/bin/python"), "-I", "-m", "daemon", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_files_and_permissions_land_under_the_root(staged: Staged) -> None:
    r = staged.root
    example = (ROOT / "config/example.yaml").read_bytes()
    assert (r / "etc/coldchain/config.yaml").read_bytes() == example
    assert mode(r / "etc/coldchain/config.yaml") == 0o640
    assert mode(r / "etc/coldchain/environment") == 0o600
    assert not (r / "etc/coldchain/config.yaml.new").exists()
    assert mode(r / "var/lib/coldchain") == 0o750
    assert mode(r / UNIT) == 0o644
    link = r / "etc/systemd/system/multi-user.target.wants/coldchain.service"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/coldchain.service"
    assert (r / "opt/coldchain/share/README.md").is_file() and (r / "opt/coldchain/share/install.md").is_file()
    # the pages' chart library (npm, gitignored) is in the wheel: hatch's `artifacts` ships it
    assert list((r / "opt/coldchain/lib").glob("python3*/site-packages/daemon/api/static/vendor/uPlot.iife.min.js"))
    # The scripts point at the venv as the target sees it, not at the staging folder.
    assert (r / "opt/coldchain/bin/coldchain").read_text().splitlines()[0] == "#!/opt/coldchain/bin/python"
    assert not [p for p in (r / "opt/coldchain/bin").iterdir() if p.is_file() and str(r) in p.read_text(errors="replace")]
    # Nothing was written outside the root: the user and owners are recorded, not applied.
    assert "u coldchain - " in (r / "etc/sysusers.d/coldchain.conf").read_text()
    assert "m coldchain dialout" in (r / "etc/sysusers.d/coldchain.conf").read_text()
    assert "d /var/lib/coldchain 0750 coldchain coldchain -" in (r / "etc/tmpfiles.d/coldchain.conf").read_text()
    assert "user coldchain recorded in /etc/sysusers.d/coldchain.conf" in staged.out
    assert "installing into a root: systemctl not called" in staged.out
    assert not (r / "etc/passwd").exists()


def test_recorded_user_and_owners_apply_with_systemds_own_tools(copy: Path) -> None:
    """What the target's first boot does: systemd-sysusers and systemd-tmpfiles, here with --root."""
    subprocess.run(["systemd-sysusers", f"--root={copy}"], check=True, capture_output=True)
    passwd = {line.split(":")[0]: line.split(":") for line in (copy / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":") for line in (copy / "etc/group").read_text().splitlines()}
    uid, gid = int(passwd["coldchain"][2]), int(passwd["coldchain"][3])
    assert passwd["coldchain"][5:] == ["/var/lib/coldchain", "/usr/sbin/nologin"]
    assert "coldchain" in groups["dialout"][3].split(",")
    subprocess.run(["systemd-tmpfiles", f"--root={copy}", "--create"], check=True, capture_output=True)
    st = (copy / "var/lib/coldchain").stat()
    assert (st.st_uid, st.st_gid, mode(copy / "var/lib/coldchain")) == (uid, gid, 0o750)
    cf = (copy / "etc/coldchain/config.yaml").stat()
    assert (cf.st_uid, cf.st_gid) == (0, gid)


def test_installed_daemon_checks_the_installed_config(staged: Staged) -> None:
    p = installed_python(staged.root, "check-config", staged.root / "etc/coldchain/config.yaml")
    assert p.returncode == 0, p.stderr
    assert "OK — site fengjie-caotang" in p.stdout
    v = installed_python(staged.root, "--version")
    assert v.stdout.startswith("coldchain ")


PROBE = """
import importlib, importlib.util, os, pkgutil, sys
import daemon, drivers
for pkg in (daemon, drivers):  # every module of ours, as the daemon and its drivers import them
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if m.name.endswith("__main__"):  # the command line: importing it runs it
            continue
        try:
            importlib.import_module(m.name)
        except ImportError:  # a driver's optional dependency (not installed by default)
            pass
root = sys.argv[1]
for name, mod in sorted(sys.modules.items()):
    origin = getattr(getattr(mod, "__spec__", None), "origin", None) or ""
    if origin.endswith(".py"):  # where the target has the file, where the unit's Python will look for its code
        cached = importlib.util.cache_from_source(origin.removeprefix(root))
        print(("ok " if os.path.exists(cached) else "missing ") + name)
"""


def unit_env(root: Path) -> dict[str, str]:
    lines = (root / UNIT).read_text().splitlines()
    return dict(ln.removeprefix("Environment=").split("=", 1) for ln in lines if ln.startswith("Environment="))


def test_the_units_optimised_code_is_compiled_for_every_module_it_loads(staged: Staged) -> None:
    """The unit runs Python with -OO from PREFIX/pycache, which the service cannot write: a module missing there is
    compiled at every start (slow on a Pi, and ~3 MB more RSS measured), so the installer must have compiled all."""
    env = unit_env(staged.root)
    assert env["PYTHONOPTIMIZE"] == "2" and env["PYTHONPYCACHEPREFIX"] == "/opt/coldchain/pycache"
    prefix = f"{staged.root}{env['PYTHONPYCACHEPREFIX']}"
    p = subprocess.run([str(staged.root / "opt/coldchain/bin/python"), "-I", "-B", "-OO", "-X",
                        f"pycache_prefix={prefix}", "-c", PROBE, str(staged.root)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    found = dict(reversed(ln.split(" ", 1)) for ln in p.stdout.splitlines())
    assert found.get("daemon.app.runtime") == "ok" and found.get("fastapi") == "ok" and found.get("json") == "ok"
    assert [m for m, state in found.items() if state != "ok"] == []
    assert len(found) > 300


def unit_with_root(root: Path, dest: Path) -> Path:
    """The installed unit with its program paths moved into the staging root, so the checks find them."""
    text = (root / UNIT).read_text().replace("/opt/coldchain/", f"{root}/opt/coldchain/")
    dest.write_text(text)
    return dest


def test_unit_is_what_systemd_expects(staged: Staged, tmp_path: Path) -> None:
    text = (staged.root / UNIT).read_text()
    for line in ("Type=notify", "WatchdogSec=60", "Restart=always", "User=coldchain", "SupplementaryGroups=dialout",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/coldchain", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "ExecStart=/opt/coldchain/bin/coldchain run --config /etc/coldchain/config.yaml",
                 "EnvironmentFile=-/etc/coldchain/environment", "WantedBy=multi-user.target"):
        assert line in text.splitlines(), line
    assert "PrivateDevices=yes" not in text  # the serial ports must stay reachable
    assert os.access(staged.root / "opt/coldchain/bin/coldchain", os.X_OK)
    # systemd-analyze (Debian `systemd`, installed by `make test`) is required, not optional: a missing one fails.
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze not found: apt-get install systemd"
    unit = unit_with_root(staged.root, tmp_path / "coldchain.service")
    p = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    # The same check does catch mistakes: it warns (and still exits 0), hence the empty-output assertion above.
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    p = subprocess.run([exe, "verify", str(bad)], capture_output=True, text=True)
    assert "Unknown key 'WatchdogSecs'" in p.stderr


def test_second_run_upgrades_and_keeps_config_and_journal(copy: Path, tmp_path: Path) -> None:
    """The upgrade comes as a built wheel here (the other way an installer gets a release)."""
    conf = copy / "etc/coldchain/config.yaml"
    mine = conf.read_text().replace("fengjie-caotang", "my-center")
    conf.write_text(mine)
    (copy / "etc/coldchain/environment").write_text("COLDCHAIN_TOKEN_ZHANG=abc\n")
    j = Journal(copy / "var/lib/coldchain/journal.db")
    j.readings.append([Reading("my-center", "room1", "t1", Quantity.TEMPERATURE, 0.4, 1_700_000_000.0, Quality.GOOD)])
    j.close()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("coldchain_monitor-*.whl")
    p = run_installer("--root", copy, "--python", sys.executable, "--wheel", wheel)
    out = p.stdout + p.stderr
    assert f"installing {wheel.name}" in out
    assert "upgrading the environment" in out and "kept your /etc/coldchain/config.yaml" in out
    assert conf.read_text() == mine
    assert (copy / "etc/coldchain/config.yaml.new").read_bytes() == (ROOT / "config/example.yaml").read_bytes()
    assert (copy / "etc/coldchain/environment").read_text() == "COLDCHAIN_TOKEN_ZHANG=abc\n"
    j = Journal(copy / "var/lib/coldchain/journal.db")
    assert [r.value for r in j.readings.read_after(0, 10)] == [0.4] and j.quick_check() == "ok"
    j.close()
    assert installed_python(copy, "check-config", conf).returncode == 0


def test_uninstall_keeps_data_and_purge_removes_it(copy: Path) -> None:
    (copy / "var/lib/coldchain/journal.db").write_bytes(b"readings")
    p = run_installer("--uninstall", "--root", copy)
    assert "kept /" in p.stdout and "--purge" in p.stdout
    assert not (copy / "opt/coldchain").exists()
    assert not (copy / UNIT).exists()
    assert not (copy / "etc/systemd/system/multi-user.target.wants/coldchain.service").is_symlink()
    assert (copy / "etc/coldchain/config.yaml").is_file()
    assert (copy / "var/lib/coldchain/journal.db").read_bytes() == b"readings"
    run_installer("--uninstall", "--purge", "--root", copy)
    assert not (copy / "etc/coldchain").exists() and not (copy / "var/lib/coldchain").exists()
    assert not (copy / "etc/sysusers.d/coldchain.conf").exists()


def test_uninstall_leaves_a_prefix_it_did_not_make(tmp_path: Path) -> None:
    foreign = tmp_path / "opt/coldchain"
    foreign.mkdir(parents=True)
    (foreign / "precious").write_text("x")
    unit = tmp_path / UNIT
    unit.parent.mkdir(parents=True)
    unit.write_text("[Unit]\n")
    p = run_installer("--uninstall", "--root", tmp_path, check=False)
    assert unit.exists()  # refused before anything was removed
    assert p.returncode == 1 and "was not made by this installer (no .coldchain-install); nothing removed" in p.stderr
    assert (foreign / "precious").exists()


def test_refuses_an_old_python_and_bad_options(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 3.9.2"\nexit 1\n')
    old.chmod(0o755)
    p = run_installer("--root", tmp_path / "r", "--python", old, check=False)
    assert p.returncode == 1 and "Python 3.9.2 is too old: Python 3.11 or newer is needed" in p.stderr
    assert not (tmp_path / "r/opt").exists()
    p = run_installer("--root", tmp_path / "r", "--prefix", "/usr", check=False)
    assert p.returncode == 1 and "--prefix /usr is a system folder" in p.stderr
    p = run_installer("--purge", "--root", tmp_path / "r", check=False)
    assert p.returncode == 1 and "--purge only goes with --uninstall" in p.stderr


def test_scripts_are_shellcheck_clean() -> None:
    """The installer, and the ARM check that runs it under emulation (`make test-arm`, too slow for CI)."""
    exe = shutil.which("shellcheck")
    assert exe, "shellcheck not found: apt-get install shellcheck (make test does)"
    for script in (SCRIPT, SCRIPT.parents[1] / "tests" / "arm" / "check.sh"):
        p = subprocess.run([exe, str(script)], capture_output=True, text=True)
        assert p.returncode == 0, f"{script}: {p.stdout}"


LIVE = r"""
set -euo pipefail
# Private copies of everything the installer writes to; the machine itself is left as it was.
for d in etc opt var/lib var/log; do
    n=${d//\//_}
    mkdir -p "$T/$n/up" "$T/$n/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/$n/up,workdir=$T/$n/work" "/$d"
done
"$SCRIPT" --python /usr/bin/python3
echo "== state"
id coldchain
stat -c '%U:%G %a %n' /etc/coldchain/config.yaml /etc/coldchain/environment /var/lib/coldchain \
    /opt/coldchain/bin/coldchain /etc/systemd/system/coldchain.service
/opt/coldchain/bin/coldchain check-config /etc/coldchain/config.yaml >/dev/null  # the shipped example is valid
# The example names real RS485/MQTT sensors this machine lacks: doctor runs on a simulated room here.
cat > /etc/coldchain/config.yaml <<'YAML'
site: {id: t1, name: 奉节县草堂镇冷库}
storage: {journal: /var/lib/coldchain/journal.db}
zones: [{id: r1, name: 1号库, commodity: mandarin}]
sensors: [{id: s1, zone: r1, type: simulated, setpoint: 6.5, interval: 1s}]
notifiers: [{id: console, type: console}]
YAML
echo "== doctor"
runuser -u coldchain -- /opt/coldchain/bin/coldchain doctor --config /etc/coldchain/config.yaml --seconds 1.5 --lang en
echo "== upgrade"
echo "# edited on site" >> /etc/coldchain/config.yaml
runuser -u coldchain -- /opt/coldchain/bin/coldchain doctor --config /etc/coldchain/config.yaml --seconds 1.5 >/dev/null
"$SCRIPT" --python /usr/bin/python3
tail -n 1 /etc/coldchain/config.yaml
stat -c '%U:%G %a %n' /var/lib/coldchain/journal.db 2>/dev/null || echo "no journal (doctor does not create it)"
echo "== purge"
"$SCRIPT" --uninstall --purge
id coldchain 2>&1 || true
ls /etc/coldchain /var/lib/coldchain /opt/coldchain 2>&1 || true
"""


@pytest.mark.root
def test_live_install_as_root_in_a_private_mount_namespace(tmp_path: Path) -> None:
    """The path a Pi takes (useradd, chown, runuser), with /etc, /opt, /var/lib, /var/log overlaid in a mount
    namespace (`unshare -m`, as root) so that this machine keeps its own."""
    assert os.geteuid() == 0, "this test runs the installer as root, as on the Pi (CI runs as root)"
    assert shutil.which("unshare") and os.access("/usr/bin/python3", os.X_OK)
    env = {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "VIRTUAL_ENV")}
    env |= {"T": str(tmp_path), "SCRIPT": str(SCRIPT)}
    host = [Path(x) for x in ("/etc/coldchain", "/var/lib/coldchain", "/opt/coldchain", "/etc/passwd")]
    before = [p.exists() and p.stat().st_mtime for p in host]
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", LIVE], capture_output=True,
                       text=True, env=env, timeout=900, cwd=tmp_path)
    out = p.stdout
    assert p.returncode == 0, out + p.stderr
    assert "created system user coldchain" in out and "systemd is not running here: systemctl not called" in out
    state = out.split("== state")[1].split("== doctor")[0]
    assert "groups=" in state and "(dialout)" in state
    assert "root:coldchain 640 /etc/coldchain/config.yaml" in state
    assert "root:root 600 /etc/coldchain/environment" in state
    assert "coldchain:coldchain 750 /var/lib/coldchain" in state
    assert "root:root 755 /opt/coldchain/bin/coldchain" in state
    assert "root:root 644 /etc/systemd/system/coldchain.service" in state
    doctor = out.split("== doctor")[1].split("== upgrade")[0]
    assert "✓ journal /var/lib/coldchain/journal.db: writable" in doctor and "All good" in doctor
    upgrade = out.split("== upgrade")[1].split("== purge")[0]
    assert "user coldchain exists" in upgrade and "kept your /etc/coldchain/config.yaml" in upgrade
    assert "# edited on site" in upgrade
    purge = out.split("== purge")[1]
    assert "deleted user coldchain" in purge and "no such user" in purge
    assert purge.count("No such file or directory") == 3
    assert [p.exists() and p.stat().st_mtime for p in host] == before  # outside the namespace nothing changed


def test_destdir_works_like_root(tmp_path: Path) -> None:
    env = {**os.environ, "DESTDIR": str(tmp_path)}
    p = subprocess.run(["bash", str(SCRIPT), "--uninstall"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "into a root" in p.stdout and f"kept {tmp_path}/etc/coldchain" in p.stdout
