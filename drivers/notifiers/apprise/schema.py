"""Config of the Apprise notifier: service URLs (inline, from a file or an env var), title, timeouts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from daemon.ports.notify import NotifierBase
from daemon.ports.secrets import SecretRef


class UrlSource(SecretRef):
    """Apprise URLs kept out of the config file, since they usually carry tokens or passwords: `file` (one URL
    a line, '#' starts a comment) or `env` (URLs separated by blanks); `value` as for any secret."""


class AppriseConfig(NotifierBase):
    """Sends each message through every URL; `{address}` in a URL becomes the contact's phone number."""

    type: Literal["apprise"]
    urls: list[str | UrlSource] = Field(
        min_length=1, description="Apprise URLs, or {file: ...} / {env: ...} entries that hold them"
    )
    title: str | dict[str, str] = Field(
        default="", description="title for services that show one; a mapping picks by language (zh-CN, en)"
    )

    @field_validator("urls")
    @classmethod
    def _known(cls, urls: list[str | UrlSource]) -> list[str | UrlSource]:
        """Catch a mistyped inline URL at check-config time; the message names the scheme only."""
        import apprise  # heavy (loads every plugin): only when an apprise notifier is configured

        for i, url in enumerate(urls):
            if isinstance(url, str) and apprise.Apprise.instantiate(
                url.replace("{address}", "+8613800138000"), suppress_exceptions=True
            ) is None:
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise ValueError(f"urls[{i}]: Apprise does not understand this {scheme}:// URL")
        return urls

    def title_for(self, lang: str) -> str:
        """The title in `lang`, else the first one given (titles are optional, so no error)."""
        if isinstance(self.title, str):
            return self.title
        return self.title.get(lang) or next(iter(self.title.values()), "")
