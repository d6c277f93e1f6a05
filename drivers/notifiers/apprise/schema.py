"""Config of the Apprise notifier: service URLs (inline, from a file or an env var), title, timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.notify import NotifierBase


class UrlSource(BaseModel):
    """Apprise URLs kept out of the config file, since they usually carry tokens or passwords."""

    model_config = ConfigDict(extra="forbid")

    file: Path | None = Field(default=None, description="file with one URL per line; '#' starts a comment")
    env: str | None = Field(default=None, description="environment variable with URLs separated by spaces/lines")

    @model_validator(mode="after")
    def _one(self) -> UrlSource:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of file or env")
        return self


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
