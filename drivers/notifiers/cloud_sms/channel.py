"""What the Aliyun and Tencent notifiers share: credentials, template parameters, one POST, its errors.

Neither API is idempotent, so nothing here retries: every failure becomes a `CloudSmsError` and the
core's outbox decides (retry later, or fall back to the next channel). `maybe_sent` marks failures after
the request may have reached the server (a timeout while waiting for the answer), where a retry can
send the SMS twice.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from daemon.ports.errors import NotifierError
from daemon.ports.notify import Message, Notifier, NotifierBase, NotifierContext
from daemon.ports.secrets import SecretRef
from drivers.notifiers.cloud_sms.schema import CloudSmsBase

if TYPE_CHECKING:  # httpx (with h11, anyio, httpcore) is imported on first send: load_all() imports every driver
    import httpx


class CloudSmsError(NotifierError):
    """An SMS cloud refused or did not answer; `code` is its error code ('' if none)."""

    def __init__(self, source: str, message: str, *, code: str = "", retryable: bool, maybe_sent: bool = False,
                 ) -> None:
        super().__init__(source, message)
        self.code = code
        self.retryable = retryable
        self.maybe_sent = maybe_sent


def _short(text: object, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


class CloudSmsNotifier(Notifier):
    """Base of the two cloud notifiers; subclasses build, sign and parse one SendSms call."""

    provider: ClassVar[str] = ""
    sample_yaml: ClassVar[str] = ""

    def __init__(self, config: NotifierBase, ctx: NotifierContext | None = None) -> None:
        super().__init__(config, ctx)
        assert isinstance(config, CloudSmsBase)
        self.base_cfg: CloudSmsBase = config
        self.now: Callable[[], float] = time.time  # tests pin the clock and nonce to pin the signature
        self.nonce: Callable[[], str] = lambda: uuid.uuid4().hex
        self.last_error = ""
        self.last_ref = ""
        self._client: httpx.AsyncClient | None = None

    # -- helpers for subclasses

    @property
    def endpoint(self) -> str:
        raise NotImplementedError

    def endpoint_label(self) -> str:
        """`scheme://host[:port]` of the endpoint, for errors."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"

    def fail(self, message: str, *, code: str = "", retryable: bool, maybe_sent: bool = False) -> CloudSmsError:
        """Build (and remember for health) an error; the caller raises it."""
        err = CloudSmsError(self.source, message, code=code, retryable=retryable, maybe_sent=maybe_sent)
        self.last_error = str(err)
        return err

    def credential(self, value: str | SecretRef, what: str) -> str:
        """A credential read now, so a rotated key file is picked up without a restart."""
        if isinstance(value, str):
            return value
        try:
            return value.resolve()
        except ValueError as exc:
            raise self.fail(f"{what}: {exc}", retryable=False) from None

    @staticmethod
    def param_values(names: list[str], message: Message) -> list[str] | None:
        """Values for `names` from the message (strings; '-' for empty ones), or None if one is missing."""
        values: dict[str, str] = {**{k: str(v) for k, v in message.params.items()}, "text": message.text}
        if any(n not in values for n in names):
            return None
        return [values[n] or "-" for n in names]  # carriers reject empty template variables

    def missing(self, message: Message, names: list[str]) -> CloudSmsError:
        absent = sorted(n for n in names if n not in message.params and n != "text")
        why = f"has no parameter(s) {', '.join(absent)}" if message.key else "has no key (Message.key is empty)"
        return self.fail(f"message {message.outbox_id} ({message.key or 'no key'}) {why} and no fallback "
                         "template is configured", retryable=False)

    # -- HTTP

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            timeout = httpx.Timeout(self.base_cfg.timeout, connect=self.base_cfg.connect_timeout)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return self._client

    async def post(self, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """One POST, never repeated; transport failures become CloudSmsError."""
        import httpx

        where = self.endpoint_label()
        try:
            return await self.client().post(self.endpoint, content=content, headers=dict(headers))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self.fail(f"cannot connect to {where}: {type(exc).__name__}", retryable=True) from None
        except httpx.TransportError as exc:  # read timeout, connection dropped after the request went out
            raise self.fail(f"no answer from {where} ({type(exc).__name__}); the SMS may have been sent",
                            retryable=True, maybe_sent=True) from None

    def json_body(self, resp: httpx.Response) -> dict[str, Any]:
        """The answer as a JSON object; a non-JSON answer (a proxy's error page) becomes CloudSmsError."""
        try:
            data = json.loads(resp.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self.fail(f"{self.endpoint_label()} answered HTTP {resp.status_code} without a JSON object: "
                            f"{_short(resp.text, 80)!r}", retryable=resp.status_code >= 500,
                            maybe_sent=resp.status_code >= 500)
        return data

    def refused(self, code: str, detail: object, request_id: object, retryable: bool) -> CloudSmsError:
        """The provider answered with an error code."""
        rid = f" (RequestId {request_id})" if request_id else ""
        return self.fail(f"{self.provider} refused: {code}: {_short(detail)}{rid}", code=code, retryable=retryable)

    # -- delivery receipts

    def receipts_every(self) -> float | None:
        """Seconds between receipt polls, None when the config turns them off."""
        return None

    async def poll_receipts(self) -> int:
        """Fetch carrier receipts once and hand each to `ctx.on_delivery`; returns how many."""
        return 0

    def deliver(self, ref: str, delivered: bool, detail: str) -> None:
        """One receipt to the core (ref = what `send` returned)."""
        self.ctx.on_delivery(ref, delivered, detail)

    # -- Notifier

    async def run(self) -> None:
        """Poll receipts every `receipts_every`; a failed poll is logged and tried again next time."""
        every = self.receipts_every()
        if every is None:
            return
        while True:
            await asyncio.sleep(every)
            try:
                await self.poll_receipts()
            except CloudSmsError as exc:
                self.ctx.log.warning("%s: receipts: %s", self.source, exc)

    async def health(self) -> dict[str, object]:
        """Endpoint, whether credentials can be read, last reference and error."""
        facts: dict[str, object] = {"source": self.source, "endpoint": self.endpoint_label(),
                                    "last_ref": self.last_ref, "last_error": self.last_error}
        try:
            self.check_credentials()
            facts["credentials"] = "ok"
        except CloudSmsError as exc:
            facts["credentials"] = str(exc)
        return facts

    def check_credentials(self) -> None:
        """Raise CloudSmsError if a credential cannot be read."""

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
