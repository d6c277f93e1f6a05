"""The HTTP notifiers as the daemon builds them: from config text, driven by the core's outbox."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from daemon.alarms.dispatcher import Dispatcher
from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent
from daemon.ports.clock import ManualClock
from daemon.ports.errors import ConfigError
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from drivers.registry import NOTIFIERS
from tests.conftest import MINIMAL, make_config
from tests.drivers.notifiers.conftest import RecordingServer

T0 = 1_700_000_000.0
CONSOLE = "  - {id: out, type: console}\n"


def config_with(tmp_path: Path, notifiers: str):  # type: ignore[no-untyped-def]
    import drivers

    drivers.load_all()
    assert CONSOLE in MINIMAL
    return make_config(tmp_path, MINIMAL.replace(CONSOLE, notifiers))


@pytest.mark.asyncio
async def test_alarm_reaches_a_webhook_through_the_outbox(http_server: RecordingServer, tmp_path: Path) -> None:
    cfg = config_with(tmp_path, f"  - {{id: out, type: apprise, urls: ['json://{http_server.base}/sms/{{address}}']}}\n")
    journal = Journal(tmp_path / "j.db")
    am = AlertManager(cfg, journal, ManualClock(T0 + 600), Stats())
    am.apply([RuleEvent("fire", "z1/s1/temp_high", "z1", "s1", "temp_high", "warning", T0 + 600, T0, 9.0, 8.0, 9.0)])  # type: ignore[arg-type]
    notifiers = {n.id: NOTIFIERS[n.type](n) for n in cfg.notifiers}
    assert await Dispatcher(journal, notifiers, am.stats, am.outbox_ready).drain() == 1
    [req] = http_server.requests
    [row] = journal.outbox.find()
    assert unquote(req.path) == "/sms/+8613800138000"
    assert json.loads(req.body)["message"] == row.text and row.text.startswith("【冷库告警】测试冷库1号库温度9.0℃")
    assert (row.state, row.ref) == ("sent", f"apprise-{row.id}")


def test_config_errors_name_the_line_and_hide_the_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config_with(tmp_path, "  - id: out\n    type: apprise\n    urls: ['bogus://user:s3cret@example.com/x']\n")
    [problem] = err.value.problems
    assert "notifiers[0].urls" in problem and "bogus://" in problem and "s3cret" not in problem
    with pytest.raises(ConfigError) as err:
        config_with(tmp_path, "  - {id: out, type: tencent_sms, secret_id: x, secret_key: {env: K}, sdk_app_id: '1400',"
                              " sign_name: s, templates: {alert.temp_hi: {id: '1'}}}\n")
    assert any("alert.temp_hi" in p for p in err.value.problems)
