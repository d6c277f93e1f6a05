"""The escalation chain: who each step pages, on which channels in order, and when the next step is due.

`escalation.steps` in the config lists the steps (contacts, channels, `after` seconds from firing);
past the last step it repeats every `escalation.repeat` seconds, if set. Without steps everyone
is paged at once. The timer itself lives in the alarm row (`esc_step`, `esc_next`), so a restart
resumes it; `AlertManager.escalate` (`lifecycle.py`) advances it.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.schema import AppConfig, ContactConfig


@dataclass(frozen=True, slots=True)
class Recipient:
    """One person (or the log) to page: `notifier` first, then `fallbacks` in order."""

    contact: str
    address: str
    notifier: str
    lang: str
    fallbacks: tuple[str, ...] = ()


class Escalation:
    """The chain as configured."""

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg
        self.contacts = {c.id: c for c in cfg.contacts}

    def lang(self, c: ContactConfig | None) -> str:
        """The contact's language, else the site's."""
        return (c.language if c and c.language else None) or self.cfg.site.language

    def recipients(self, step: int) -> list[Recipient]:
        """Who step `step` of the escalation chain pages, each with its channels in order."""
        notifiers = [n.id for n in self.cfg.notifiers] or ["log"]
        steps = self.cfg.escalation.steps
        if steps:
            s = steps[step]
            chosen = [self.contacts[c] for c in s.contacts]
            channels = tuple(s.notifiers or notifiers)
        else:
            chosen = list(self.contacts.values())
            channels = tuple(notifiers)
        if not chosen:
            return [Recipient("log", "-", channels[0], self.cfg.site.language, channels[1:])]
        return [Recipient(c.id, c.phone or c.id, channels[0], self.lang(c), channels[1:]) for c in chosen]

    def device_recipients(self) -> list[Recipient]:
        """Who hears of a device alarm (a low battery): the contacts marked `device_alarms`, else step 0's.
        Told once; a device alarm does not escalate (`next_due` is not used for it)."""
        chosen = [c for c in self.contacts.values() if c.device_alarms]
        if not chosen:
            return self.recipients(0)
        notifiers = [n.id for n in self.cfg.notifiers] or ["log"]
        return [Recipient(c.id, c.phone or c.id, notifiers[0], self.lang(c), tuple(notifiers[1:])) for c in chosen]

    def next_step(self, step: int) -> int:
        """The step after `step`; past the last step, the last again (it repeats)."""
        return step + 1 if step + 1 < len(self.cfg.escalation.steps) else step

    def next_due(self, fired: float, step: int, now: float) -> float | None:
        """When the step after `step` is due (steps count from `fired`, repeats from `now`); None: never."""
        steps, repeat = self.cfg.escalation.steps, self.cfg.escalation.repeat
        if step + 1 < len(steps):
            return fired + steps[step + 1].after
        return now + repeat if repeat else None
