"""Secrets (tokens, passwords) come from a file or the environment, never from logs."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SecretRef(BaseModel):
    """Exactly one of `file` (preferred), `env`, or `value` (only for trials)."""

    model_config = ConfigDict(extra="forbid")
    file: Path | None = Field(None, description="a file holding only the secret (mode 0600)")
    env: str | None = Field(None, description="an environment variable holding the secret")
    value: str | None = Field(None, description="the secret itself: only for trials", repr=False)

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if sum(x is not None for x in (self.file, self.env, self.value)) != 1:
            raise ValueError("give exactly one of file, env or value")
        return self

    def resolve(self) -> str:
        """The secret; raises ValueError naming where it should have been (never the secret)."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            got = os.environ.get(self.env)
            if not got:
                raise ValueError(f"environment variable {self.env} is not set")
            return got
        assert self.file is not None
        try:
            return self.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror or exc}") from None

    def __str__(self) -> str:
        where = f"file {self.file}" if self.file else f"env {self.env}" if self.env else "config"
        return f"<secret from {where}>"
