"""`type: apprise`: HTTP channels (Twilio, DingTalk, WeCom, Feishu, e-mail, webhooks) through Apprise URLs.

Apprise URLs carry tokens and passwords, so they never reach a log line, an error or `health()`:
services are named by Apprise's service name plus `scheme://host`, and the host only when it
is a DNS name or an IP (for many services the "host" is the token itself).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections import OrderedDict
from importlib import resources
from typing import ClassVar
from urllib.parse import quote, unquote, urlsplit

from daemon.ports.errors import NotifierError
from daemon.ports.notify import Message, Notifier, NotifierBase, NotifierContext
from drivers.notifiers.apprise.schema import AppriseConfig, UrlSource
from drivers.registry import notifier

__all__ = ["SAMPLE_YAML", "AppriseConfig", "AppriseNotifier", "UrlSource", "service_label"]

SAMPLE_YAML: str = resources.files(__name__).joinpath("sample.yaml").read_text(encoding="utf-8")
"""A commented `notifiers:` list item showing every option with its default."""

ADDRESS = "{address}"
_REMEMBER = 1000  # outbox ids whose partial deliveries we remember (a retry skips URLs that took it)


class _Redactor(logging.Filter):
    """Apprise's own warnings can quote a token ("invalid Twilio Authentication Token (…)"): cut them out."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()  # replaced whole, never mutated: read from worker threads

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        hits = [s for s in self.secrets if s in text]
        if hits:
            for s in sorted(hits, key=len, reverse=True):
                text = text.replace(s, "***")
            record.msg, record.args = text, None
        return True

    def learn(self, url: str) -> None:
        """Remember every piece of `url` that could be a secret: all but the scheme, DNS names and IPs.

        Split on URL delimiters rather than parsed, because `urlsplit` lowercases the host, and in
        `tgram://123456:TOKEN/...` the token sits where a port would be.
        """
        rest = url.split("://", 1)[-1]
        pieces = [p for p in re.split(r"[:@/?&=#,]", rest) if len(p) >= 4 and p != ADDRESS and _shown_host(p) != p]
        found = {v for p in pieces for v in (p, unquote(p), quote(p, safe=""))}
        if not found <= self.secrets:
            self.secrets = self.secrets | found


_REDACTOR = _Redactor()
logging.getLogger("apprise").addFilter(_REDACTOR)


def _shown_host(host: str | None) -> str:
    """The host if it is a DNS name or an IP; anything else may be a token and is hidden."""
    if not host:
        return ""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    if host == "localhost" or ("." in host and all(c.isalnum() or c in ".-" for c in host)):
        return host
    return "***"


def service_label(url: str) -> str:
    """`Name scheme://host` for errors and health; never user, password, path or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "unparsable URL"
    try:
        port = parts.port
    except ValueError:  # `tgram://123456:TOKEN/...`: the "port" is part of a token
        port = None
    import apprise  # imported on first use: loading its ~130 plugins takes seconds on a small Pi

    plugin = apprise.Apprise.instantiate(url.replace(ADDRESS, "0"), suppress_exceptions=True)
    name = f"{plugin.service_name} " if plugin is not None else ""
    shown = _shown_host(host)
    if port and shown != "***":
        shown = f"{shown}:{port}"
    return f"{name}{parts.scheme or '?'}://{shown}"


def _notify_type(key: str) -> str:
    """Alarms show as failures, resolve notices as successes, in services that colour them."""
    if key.startswith("alert."):
        return "failure"
    if key == "resolve":
        return "success"
    return "info"


def _notify_one(url: str, body: str, title: str, kind: str, attach: list[str] | None = None) -> str:
    """Blocking: send through one URL; returns '' on success, else a detail free of secrets."""
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        return "URL not understood by Apprise (unknown scheme or missing part)"
    try:
        result = ap.notify(body=body, title=title, notify_type=kind, attach=attach or None)
    except Exception as exc:  # noqa: BLE001 - plugins are third-party code: any crash is this channel failing
        return f"{type(exc).__name__} inside Apprise"
    return "" if result else f"service did not accept it ({result.status.name.lower()})"


@notifier("apprise")
class AppriseNotifier(Notifier):
    """One message → every configured URL, each in a worker thread (Apprise blocks)."""

    Config = AppriseConfig
    sample_yaml: ClassVar[str] = SAMPLE_YAML

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, AppriseConfig)
        self.cfg: AppriseConfig = config
        self._delivered: OrderedDict[int, set[str]] = OrderedDict()
        self.last_error = ""

    def urls(self) -> list[str]:
        """Read the URL list now (files and env vars may change without a restart)."""
        out: list[str] = []
        for entry in self.cfg.urls:
            out.extend([entry] if isinstance(entry, str) else self._read_source(entry))
        for url in out:
            _REDACTOR.learn(url)
        return out

    def _read_source(self, src: UrlSource) -> list[str]:
        try:
            text = src.resolve()
        except ValueError as exc:
            raise NotifierError(self.source, f"URLs: {exc}") from None
        if src.file is None:
            return text.split()
        urls = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if not urls:
            raise NotifierError(self.source, f"URL file {src.file} holds no URL")
        return urls

    async def send(self, message: Message) -> str | None:
        """Send through every URL; URLs that already took this outbox id are skipped on a retry."""
        try:
            urls = self.urls()
        except NotifierError as exc:
            self.last_error = str(exc)
            raise
        done = self._delivered.setdefault(message.outbox_id, set())
        self._delivered.move_to_end(message.outbox_id)
        while len(self._delivered) > _REMEMBER:
            self._delivered.popitem(last=False)
        address = quote(message.address, safe="")  # `+` would read as a space in a query
        title = self.cfg.title_for(message.lang)
        kind = _notify_type(message.key)
        failed: list[str] = []
        files = [f for f in message.params.get("attach", "").split("\n") if f]
        for template in urls:
            if template in done:
                continue
            url = template.replace(ADDRESS, address)
            # files (a scheduled report's PDF) go to e-mail only; chat services get the links in the text
            attach = files if template.lower().startswith(("mailto://", "mailtos://")) else None
            detail = await asyncio.to_thread(_notify_one, url, message.text, title, kind, attach)
            if detail:
                failed.append(f"{service_label(template)}: {detail}")
            else:
                done.add(template)
        if failed:
            sent = len(done)
            note = f" ({sent} of {len(urls)} services took it)" if sent else ""
            self.last_error = "; ".join(failed) + note
            raise NotifierError(self.source, self.last_error)
        self._delivered.pop(message.outbox_id, None)
        return f"apprise-{message.outbox_id}"

    async def health(self) -> dict[str, object]:
        """Which services are configured (masked) and the last error, for `doctor` and /healthz."""
        facts: dict[str, object] = {"source": self.source, "last_error": self.last_error}
        try:
            facts["services"] = [service_label(u) for u in self.urls()]
        except NotifierError as exc:
            facts["services"] = []
            facts["error"] = str(exc)
        return facts
