"""The demo's past: so a newcomer sees the whole HACCP follow-up, `coldchain demo` starts with an alarm of the
last hours handled in full (acknowledged with a comment, a corrective action, closed by the manager), and with
two people to sign in as on the pages (printed at start; the names and tokens of `config/demo.yaml`).

The story: 1号库's door was left ajar 2.5 h ago; the kiwifruit room rose to 2.4 °C for 45 minutes.
"""

from __future__ import annotations

from daemon.alarms.lifecycle import AlertManager
from daemon.alarms.rules import RuleEvent
from daemon.api.passwords import hash_password
from daemon.config.schema import AppConfig
from daemon.ports.clock import ManualClock
from daemon.ports.model import Quantity, Reading
from daemon.ports.stats import Stats
from daemon.storage.journal import Journal
from daemon.storage.users import By

ZONE, SENSOR = "kiwi", "kiwi-t1"
TOKENS = {"staff": "demo-staff", "manager": "demo-manager"}
# the pages sign people in (no token box): the demo's users are its tokens' names, each token as the password
USERS = {"zhang": ("staff", TOKENS["staff"]), "li": ("manager", TOKENS["manager"])}


def demo_users(journal: Journal, now: float) -> None:
    """The demo's people, unless the journal has them already (a demo started again on its --data-dir)."""
    for name, (role, password) in USERS.items():
        if journal.users.get(name) is None:
            journal.users.add(name, role, hash_password(password), now, By("demo", "installer"))


def _readings(cfg: AppConfig, now: float) -> list[Reading]:
    """Three hours of one-minute readings: 0.25 °C, and 2.4 °C from 150 to 105 minutes ago."""
    return [Reading(cfg.site.id, ZONE, SENSOR, Quantity.TEMPERATURE, 2.4 if 30 <= i < 75 else 0.25,
                    now - 180 * 60 + i * 60) for i in range(180)]


def seed_history(cfg: AppConfig, journal: Journal, now: float) -> int | None:
    """Write the handled alarm (and its readings) unless the journal has alarms already; its id, or None."""
    if journal.alerts.find(limit=1) or ZONE not in {z.id for z in cfg.zones}:
        return None
    journal.readings.append(_readings(cfg, now))
    clock = ManualClock(now - 140 * 60)
    am = AlertManager(cfg, journal, clock, Stats())
    started = now - 150 * 60
    high = cfg.commodity(ZONE).temp_max if cfg.commodity(ZONE) else None  # type: ignore[union-attr]

    def ev(action: str, minutes_ago: int, value: float) -> RuleEvent:
        return RuleEvent(action, f"{ZONE}/{SENSOR}/temp_high", ZONE, SENSOR, "temp_high",  # type: ignore[arg-type]
                         "warning", now - minutes_ago * 60, started, value, high, 2.4)

    am.apply([ev("pending", 150, 2.4), ev("fire", 140, 2.4)])
    aid = journal.alerts.find(limit=1)[0].id
    clock.advance(5 * 60)
    am.acknowledge(aid, "zhang", "门没关严，已关好", via="web")
    am.apply([ev("clear", 100, 0.3)])
    clock.advance(40 * 60)
    am.record_action(aid, "zhang", "kept_after_check", "抽检3箱果温0.6℃，无冻害、无软化，继续储存")
    clock.advance(35 * 60)
    am.close(aid, "li", "复核：处理及时，记录完整")
    for m in journal.outbox.find(alert_id=aid):  # the past's messages went out then; do not send them now
        journal.outbox.finish(m.id, "sent", None, None, None)
    return aid
