"""Secrets (tokens, passwords) come from a file or the environment, never from logs.

Every secret is held as a `SecretRef` and read with `resolve()`. Two spellings reach it: the nested one
(`token: {file: ...}` / `{env: ...}` / `{value: ...}`) and, where a driver had them first, flat keys beside
the field (`password: ...` + `password_file: ...`, `token_file`, `token_env`), which `from_keys` maps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    SerializerFunctionWrapHandler,
    WrapSerializer,
    model_validator,
)
from pydantic_core import to_jsonable_python


class SecretRef(BaseModel):
    """Exactly one of `file` (preferred), `env`, or `value` (only for trials).

    A relative `file` is relative to the config file's folder (`parse_config` makes it absolute), not to the
    directory the daemon was started from: systemd starts it in `/`."""

    model_config = ConfigDict(extra="forbid")
    file: Path | None = Field(None, description="a file holding only the secret (mode 0600)")
    env: str | None = Field(None, description="an environment variable holding the secret")
    value: SecretStr | None = Field(None, description="the secret itself: only for trials")
    _key: str = PrivateAttr("")  # the flat key it was spelled with (`token_file`), for messages
    _first_line: bool = PrivateAttr(False)  # a flat `*_file` of the sinks holds the secret on its first line

    @classmethod
    def from_keys(cls, key: str, given: SecretRef | None, file: Path | None = None, env: str | None = None, *,
                  first_line: bool = False) -> SecretRef | None:
        """The secret that `<key>_file`, `<key>_env` or `<key>` itself names, in that order; None if none does.

        `first_line`: only the file's first line is the secret (what the InfluxDB and uplink sinks read)."""
        if file is None and env is None:
            return given
        ref = cls(file=file) if file is not None else cls(env=env)
        ref._key = f"{key}_file" if file is not None else f"{key}_env"
        ref._first_line = first_line
        return ref

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
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read {self.where()}: {exc.strerror or exc}") from None
            got = (text.splitlines() or [""])[0].strip() if self._first_line else text.strip()
        if not got:
            raise ValueError(f"{self.where()} is empty or unset")
        return got

    def where(self) -> str:
        """Where the secret comes from, for messages (never the secret itself)."""
        if self.file is not None:
            return f"{self._key or 'secret file'} {self.file}"
        if self.env is not None:
            return f"environment variable {self.env}" + (f" ({self._key})" if self._key else "")
        return "the secret in the config"

    def __str__(self) -> str:
        where = f"file {self.file}" if self.file else f"env {self.env}" if self.env else "config"
        return f"<secret from {where}>"


def _plain_is_value(v: object) -> object:
    return {"value": v} if isinstance(v, str | SecretStr) else v


def _value_as_plain(ref: SecretRef, handler: SerializerFunctionWrapHandler) -> Any:
    return ref.value if ref.value is not None else handler(ref)


InlineSecret = Annotated[SecretRef, BeforeValidator(_plain_is_value), WrapSerializer(_value_as_plain)]
"""A secret field that also takes the secret itself as a plain string (`password: hunter2`, the old flat
spelling), and dumps it back as one (masked, a SecretStr), so a dump keeps the shape it had."""


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
