"""Secrets (tokens, passwords) come from a file or the environment, never from logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import to_jsonable_python


class SecretRef(BaseModel):
    """Exactly one of `file` (preferred), `env`, or `value` (only for trials).

    A relative `file` is relative to the config file's folder (`parse_config` makes it absolute), not to the
    directory the daemon was started from: systemd starts it in `/`."""

    model_config = ConfigDict(extra="forbid")
    file: Path | None = Field(None, description="a file holding only the secret (mode 0600)")
    env: str | None = Field(None, description="an environment variable holding the secret")
    value: SecretStr | None = Field(None, description="the secret itself: only for trials")

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if sum(x is not None for x in (self.file, self.env, self.value)) != 1:
            raise ValueError("give exactly one of file, env or value")
        return self

    def resolve(self) -> str:
        """The secret, read now (a rotated file is picked up); surrounding blanks dropped.

        Raises ValueError naming where it should have been (never the secret), also when it is empty:
        an empty secret would let an empty password or bearer token through."""
        if self.value is not None:
            got = self.value.get_secret_value().strip()
        elif self.env is not None:
            got = os.environ.get(self.env, "").strip()
        else:
            assert self.file is not None
            try:
                got = self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read secret file {self.file}: {exc.strerror or exc}") from None
        if not got:
            raise ValueError(f"{self.where()} is empty or unset")
        return got

    def where(self) -> str:
        """Where the secret comes from, for messages (never the secret itself)."""
        if self.file is not None:
            return f"secret file {self.file}"
        return f"environment variable {self.env}" if self.env is not None else "the secret in the config"

    def __str__(self) -> str:
        where = f"file {self.file}" if self.file else f"env {self.env}" if self.env else "config"
        return f"<secret from {where}>"


MASK = "***"
# A field whose name has one of these words (split at "_"), or ends in "_key", holds a secret.
# "*_file", "*_path" and "*_env" name where a secret is, not the secret; a bare `key` is a lookup key.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "apikey", "credentials", "pin", "puk"}
)


def is_secret_name(name: str) -> bool:
    """`password`, `auth_token`, `api_key`, `secret_key` ...; not `tokens`, `keepalive`, `key` or `key_file`."""
    words = name.lower().split("_")
    if words[-1] in ("file", "path", "env"):
        return False
    return any(w in _SECRET_WORDS for w in words) or (len(words) > 1 and words[-1] == "key")


def masked(obj: Any) -> Any:
    """Plain data (for YAML/JSON) of a config model with every secret replaced by `***`.

    A SecretRef becomes `*** (file PATH)` / `*** (env NAME)` / `***`: where the secret is, never what.
    """
    if isinstance(obj, SecretRef):
        where = f" (file {obj.file})" if obj.file else f" (env {obj.env})" if obj.env else ""
        return MASK + where
    if isinstance(obj, BaseModel):
        out: dict[str, Any] = {}
        fields = dict.fromkeys(type(obj).model_fields)
        fields.update(dict.fromkeys(obj.model_extra or {}))
        for name in fields:
            value = getattr(obj, name)
            if is_secret_name(name) and value is not None and not isinstance(value, SecretRef | BaseModel):
                out[name] = MASK
            else:
                out[name] = masked(value)
        return out
    if isinstance(obj, dict):
        return {str(k): MASK if is_secret_name(str(k)) and v is not None else masked(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [masked(v) for v in obj]
    return to_jsonable_python(obj)
