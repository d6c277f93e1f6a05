"""The config file: schema (pydantic) and loading with errors that name file, line and key.

Driver-specific options live beside each driver (`drivers/*/.../schema.py`); this module
assembles them by `type:` and checks the rules that span entries (unique ids, zones that
exist, commodities in the catalog).
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from daemon.catalog import Commodity, load_catalog
from daemon.durations import Duration
from daemon.errors import ConfigError
from daemon.notify import NotifierBase
from daemon.secrets import SecretRef
from daemon.sinks import SinkBase
from daemon.sources import SENSOR_ID, SensorBase

LANGS = ("zh-CN", "en")
Lang = Literal["zh-CN", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteConfig(_Strict):
    id: str = Field(pattern=SENSOR_ID, description="short id, used as the InfluxDB `site` tag")
    name: str = Field(description="shown in SMS and pages, e.g. 奉节县草堂镇冷库")
    timezone: str = "Asia/Shanghai"
    language: Lang = "zh-CN"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}; e.g. 'Asia/Shanghai'") from exc
        return v


class StorageConfig(_Strict):
    journal: Path = Field(Path("/var/lib/coldchain/journal.db"), description="SQLite journal file")
    min_free_mb: int = Field(200, ge=1, description="box-health alarm below this much free disk")
    reserve_mb: int = Field(
        8, ge=0, le=1024,
        description="disk space held beside the journal and given back when the disk is full, so alarms and "
        "their SMS can still be stored (readings may use half of it); 0 = off",
    )
    raw_retention: Duration = Field(90 * 86400.0, description="keep raw readings this long")
    rollup_retention: Duration = Field(
        731 * 86400.0,
        description="keep the 5-minute and hourly min/mean/max of readings this long (EN 12830: >= 1 year)",
    )
    flush_interval: Duration = Field(
        0.2, ge=0, le=5,
        description="longest wait before a batch of quiet readings is written (a reading that changes an alarm "
        "is written at once); 0 = as soon as the previous commit is done (group commit: fastest MQTT "
        "acknowledgements, many more writes to the SD card at low rates)",
    )
    batch_max: int = Field(1000, ge=1, le=100_000)


class TlsConfig(_Strict):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str | None = Field(None, description="stable id of the persistent session; default coldchain-<site>")
    username: str | None = None
    password: str | None = Field(None, repr=False, description="prefer password_file: this file is often shared")
    password_file: Path | None = None
    keepalive: int = Field(60, ge=5, le=3600)
    tls: TlsConfig | None = None
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version")
    qos: Literal[0, 1] = Field(1, description="QoS of the sensor subscriptions; 1 = acknowledged after journaling")
    persistent_session: bool = Field(
        True, description="keep the session (and QoS 1 messages) while the daemon is down"
    )
    session_expiry: Duration = Field(
        7 * 86400.0, gt=0, description="MQTT 5: how long the broker keeps the session after a disconnect"
    )
    reconnect_min: Duration = Field(1.0, ge=1, description="first reconnect delay; doubles up to reconnect_max")
    reconnect_max: Duration = Field(120.0, ge=1)
    discover: list[str] | None = Field(
        None, description="extra topic filters whose unmapped topics `doctor` lists; None = derived, [] = off"
    )


class TemperatureAlarms(_Strict):
    """None means 'from the commodity'; set a number to override it."""

    high: float | None = None
    low: float | None = None
    freeze: float | None = Field(None, description="critical low limit; default: the freezing point")
    delay: Duration = Field(600.0, description="out of range this long before an alarm fires")
    freeze_delay: Duration = 120.0
    clear_delay: Duration = Field(300.0, description="back in range this long before it clears")
    hysteresis: float = Field(0.5, ge=0)


class HumidityAlarms(_Strict):
    enabled: bool = True
    high: float | None = None
    low: float | None = None
    delay: Duration = 3600.0
    clear_delay: Duration = 600.0
    hysteresis: float = Field(2.0, ge=0)


class DefrostWindow(_Strict):
    """A scheduled defrost: the air warms on purpose, so high-temperature and rate alarms wait."""

    start: str = Field(pattern=r"^([01]?\d|2[0-3]):[0-5]\d$", description="HH:MM, site time zone")
    duration: Duration = Field(gt=0)
    recovery: Duration = Field(900.0, description="grace after the window while the room cools again")


class ExposureRule(_Strict):
    """Cumulative exposure (WHO PQS E006 style): total time beyond a value within a rolling window."""

    above: float | None = None
    below: float | None = None
    total: Duration = Field(gt=0, description="alarm when the time beyond the value reaches this")
    window: Duration = Field(86400.0, gt=0)

    @model_validator(mode="after")
    def _one(self) -> ExposureRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.total > self.window:
            raise ValueError("total cannot exceed window")
        return self


class RateRule(_Strict):
    """A steady climb (a failing compressor) shows before any limit is reached."""

    rise_per_hour: float = Field(gt=0, description="°C per hour")
    over: Duration = Field(1800.0, gt=0, description="measured over this long")


class BandRule(_Strict):
    """A damage band inside the 'warm' side, e.g. plums break down between 2 and 7 °C."""

    low: float
    high: float
    delay: Duration = 3600.0
    source: str | None = None


class ZoneAlarms(_Strict):
    temperature: TemperatureAlarms = Field(default_factory=TemperatureAlarms)
    humidity: HumidityAlarms = Field(default_factory=HumidityAlarms)
    no_data: bool = Field(True, description="alarm when a sensor stops reporting (its stale_after)")
    stuck_after: Duration | None = Field(
        3 * 3600.0, description="a sensor repeating the exact same value this long is faulty"
    )
    fault_after: int = Field(3, ge=1, description="consecutive error values before a sensor-fault alarm")
    defrost: list[DefrostWindow] = Field(default_factory=list)
    exposure: list[ExposureRule] = Field(default_factory=list)
    rate: RateRule | None = None
    bands: list[BandRule] | None = Field(None, description="default: the commodity's bands (commodity_rules.yaml)")


class ZoneConfig(_Strict):
    id: str = Field(pattern=SENSOR_ID)
    name: str
    name_en: str | None = None
    commodity: str | None = None
    alarms: ZoneAlarms = Field(default_factory=ZoneAlarms)

    def display_name(self, lang: str) -> str:
        return self.name_en if (self.name_en and not lang.startswith("zh")) else self.name


class ContactConfig(_Strict):
    id: str = Field(pattern=SENSOR_ID)
    name: str
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{5,16}$")
    language: Lang | None = None


class EscalationStep(_Strict):
    after: Duration = Field(0.0, description="time since the alarm fired before this step")
    contacts: list[str]
    notifiers: list[str] = Field(default_factory=list, description="channels, tried in order")


class EscalationConfig(_Strict):
    steps: list[EscalationStep] = Field(default_factory=list)
    repeat: Duration | None = Field(None, description="repeat the last step this often while unacknowledged")
    notify_ack: bool = Field(True, description="tell everyone who was paged when someone acknowledges")
    reply_to_ack: bool = Field(True, description="confirm an SMS acknowledgement with a short reply")
    max_attempts: int = Field(8, ge=1, le=100, description="tries on the last channel before giving up")
    retry_after: Duration = Field(30.0, gt=0, description="first retry delay; doubles up to 15 min")

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        afters = [s.after for s in steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return steps


class ApiToken(_Strict):
    """A person or system allowed to change things through the API."""

    name: str = Field(description="recorded in the audit log as who did it")
    role: Literal["staff", "manager", "installer"]
    token: SecretRef


class ApiConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list, description="without tokens the API is read-only")
    public_url: str | None = Field(None, pattern=r"^https?://", description="base URL buyers reach, for QR codes")


class AppConfig(_Strict):
    site: SiteConfig
    storage: StorageConfig = Field(default_factory=StorageConfig)
    mqtt: MqttConfig | None = None
    sensors: list[SerializeAsAny[SensorBase]]
    zones: list[ZoneConfig]
    sinks: list[SerializeAsAny[SinkBase]] = Field(default_factory=list)
    notifiers: list[SerializeAsAny[NotifierBase]] = Field(default_factory=list)
    contacts: list[ContactConfig] = Field(default_factory=list)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)

    def zone(self, zone_id: str) -> ZoneConfig:
        return next(z for z in self.zones if z.id == zone_id)

    def commodity(self, zone_id: str) -> Commodity | None:
        key = self.zone(zone_id).commodity
        return load_catalog()[key] if key else None

    def sensors_of(self, zone_id: str) -> list[SensorBase]:
        return [s for s in self.sensors if s.zone == zone_id]


# ---------------------------------------------------------------- loading


def suggest(word: str, options: Iterable[str]) -> str:
    """'; did you mean X?' for the closest option, or ''."""
    opts = list(options)
    best = [o for o in opts if o.startswith(word) or word.startswith(o)] if word else []
    best = best or difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    return f"; did you mean {best[0]!r}?" if best else ""


def key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if not isinstance(part, int) and not str(part).isprintable():
            part = repr(str(part))  # a stray CR or escape in a key must not garble the terminal
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Lines:
    """Finds the line of a key path in the composed YAML tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, loc: Sequence[int | str]) -> int:
        node = self.root
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for k, v in node.value:
                    if k.value == part:
                        line, child = k.start_mark.line + 1, v
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                continue  # a key pydantic adds (a union tag) or a missing key: stay on the parent
            node = child
        return line

    def duplicates(self) -> list[tuple[int, str]]:
        """Keys written twice in one mapping (PyYAML would silently keep the last)."""
        out: list[tuple[int, str]] = []

        def walk(node: yaml.Node, path: list[int | str]) -> None:
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for k, v in node.value:
                    if k.value in seen:
                        out.append((k.start_mark.line + 1, key_path([*path, k.value])))
                    seen.add(k.value)
                    walk(v, [*path, k.value])
            elif isinstance(node, yaml.SequenceNode):
                for i, v in enumerate(node.value):
                    walk(v, [*path, i])

        if self.root is not None:
            walk(self.root, [])
        return out


def _message(err: Any, model: type[BaseModel] | None) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        field = str(err["loc"][-1])
        known = model.model_fields.keys() if model else []
        return f"unknown key {field!r}{suggest(field, known)}"
    if kind == "missing":
        return "required key is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of `loc` (for 'did you mean')."""
    import typing

    current: Any = model
    for part in list(loc)[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        while True:
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                break
            if not args:
                break
            ann = args[-1] if typing.get_origin(ann) is dict else args[0]
        current = ann
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _validate_entries(
    raw: Any, section: str, table: dict[str, Any], fname: str, lines: _Lines, problems: list[str]
) -> list[Any]:
    """Validate each entry of `sensors:`/`sinks:`/`notifiers:` with its driver's Config."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{fname}:{lines.line([section])}: {section}: expected a list")
        return []
    out = []
    for i, entry in enumerate(raw):
        where = [section, i]
        if not isinstance(entry, dict):
            problems.append(f"{fname}:{lines.line(where)}: {key_path(where)}: expected a mapping")
            continue
        kind = entry.get("type")
        if not isinstance(kind, str) or kind not in table:  # `type: []` too: not hashable, not a type
            known = ", ".join(sorted(table)) or "none"
            hint = suggest(str(kind), table) if kind else ""
            what = f"unknown {section[:-1]} type {kind!r}" if kind else "required key 'type' is missing"
            problems.append(
                f"{fname}:{lines.line([*where, 'type'])}: {key_path([*where, 'type'])}: {what}{hint} "
                f"(known: {known})"
            )
            continue
        cls = table[kind].Config
        try:
            out.append(cls.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors():
                loc = [*where, *err["loc"]]
                model = _model_at(cls, list(err["loc"]))
                problems.append(f"{fname}:{lines.line(loc)}: {key_path(loc)}: {_message(err, model)}")
    return out


def _dups(items: Sequence[Any], section: str, fname: str, lines: _Lines, problems: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in seen:
            problems.append(
                f"{fname}:{lines.line([section, i, 'id'])}: {section}[{i}].id: "
                f"{item.id!r} is used twice (first at {section}[{seen[item.id]}])"
            )
        else:
            seen[item.id] = i


def _cross_checks(cfg: AppConfig, raw: dict[str, Any], fname: str, lines: _Lines, problems: list[str]) -> None:
    catalog = load_catalog()
    for section in ("sensors", "zones", "sinks", "notifiers", "contacts"):
        _dups(getattr(cfg, section), section, fname, lines, problems)
    zone_ids = [z.id for z in cfg.zones]
    sensor_idx = {id(s): i for i, s in enumerate(cfg.sensors)}
    for s in cfg.sensors:
        i = sensor_idx[id(s)]
        if s.zone not in zone_ids:
            problems.append(
                f"{fname}:{lines.line(['sensors', i, 'zone'])}: sensors[{i}].zone: "
                f"unknown zone {s.zone!r}{suggest(s.zone, zone_ids)}"
            )
    for i, z in enumerate(cfg.zones):
        if z.commodity is not None and z.commodity not in catalog:
            problems.append(
                f"{fname}:{lines.line(['zones', i, 'commodity'])}: zones[{i}].commodity: "
                f"unknown commodity {z.commodity!r}{suggest(z.commodity, catalog)}"
            )
        t = z.alarms.temperature
        if z.commodity is None and t.high is None and t.low is None:
            problems.append(
                f"{fname}:{lines.line(['zones', i])}: zones[{i}]: no commodity and no "
                "alarms.temperature.high/low: this zone could never raise a temperature alarm"
            )
        if not cfg.sensors_of(z.id):
            problems.append(f"{fname}:{lines.line(['zones', i])}: zones[{i}]: zone {z.id!r} has no sensors")
    _driver_groups(cfg, fname, lines, problems)
    contact_ids = [c.id for c in cfg.contacts]
    notifier_ids = [n.id for n in cfg.notifiers]
    for i, step in enumerate(cfg.escalation.steps):
        for j, c in enumerate(step.contacts):
            if c not in contact_ids:
                loc: list[int | str] = ["escalation", "steps", i, "contacts", j]
                problems.append(
                    f"{fname}:{lines.line(loc)}: {key_path(loc)}: unknown contact {c!r}{suggest(c, contact_ids)}"
                )
        for j, n in enumerate(step.notifiers):
            if n not in notifier_ids:
                loc = ["escalation", "steps", i, "notifiers", j]
                problems.append(
                    f"{fname}:{lines.line(loc)}: {key_path(loc)}: unknown notifier {n!r}{suggest(n, notifier_ids)}"
                )


def _driver_groups(cfg: AppConfig, fname: str, lines: _Lines, problems: list[str]) -> None:
    """Rules across sensors of one driver (one RS485 bus, one line setting) and one port, one driver."""
    from drivers.registry import SENSORS

    index = {id(s): i for i, s in enumerate(cfg.sensors)}
    by_type: dict[str, list[SensorBase]] = {}
    for s in cfg.sensors:
        by_type.setdefault(s.type, []).append(s)
    for kind, sensors in by_type.items():
        try:
            SENSORS[kind].group(sensors)
        except ConfigError as exc:
            where = index[id(sensors[0])]
            problems += [f"{fname}:{lines.line(['sensors', where])}: sensors: {p}" for p in exc.problems]
    by_port: dict[str, list[SensorBase]] = {}
    for s in cfg.sensors:
        if (port := getattr(s, "port", None)) is not None:
            by_port.setdefault(str(port), []).append(s)
    for port, sensors in by_port.items():
        kinds = sorted({s.type for s in sensors})
        if len(kinds) > 1:
            second = next(s for s in sensors if s.type != sensors[0].type)
            i = index[id(second)]
            problems.append(
                f"{fname}:{lines.line(['sensors', i, 'port'])}: sensors[{i}].port: {port} is used by "
                f"{' and '.join(kinds)} sensors; one port can speak only one protocol"
            )


def parse_config(text: str, fname: str = "config.yaml", base_dir: Path | None = None) -> AppConfig:
    """Validate config text; raises ConfigError listing every problem as `file:line: key: message`."""
    from drivers import load_all
    from drivers.registry import NOTIFIERS, SENSORS, SINKS

    load_all()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{fname}:{line}: YAML syntax error: {exc.problem or exc}"]) from None
    except yaml.reader.ReaderError as exc:  # a control character (a paste from a PDF, a stray NUL)
        line = text.count("\n", 0, exc.position) + 1
        ch = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError([f"{fname}:{line}: YAML syntax error: control character {ch} is not allowed"]) from None
    lines = _Lines(root)
    if not isinstance(raw, dict):
        raise ConfigError([f"{fname}:1: the file must be a mapping with keys site, sensors, zones ..."])
    problems = [f"{fname}:{ln}: {path}: key written twice" for ln, path in lines.duplicates()]
    core = dict(raw)
    core["sensors"] = _validate_entries(raw.get("sensors"), "sensors", SENSORS, fname, lines, problems)
    core["sinks"] = _validate_entries(raw.get("sinks"), "sinks", SINKS, fname, lines, problems)
    core["notifiers"] = _validate_entries(raw.get("notifiers"), "notifiers", NOTIFIERS, fname, lines, problems)
    if "sensors" not in raw:
        core.pop("sensors")
    cfg = None
    try:
        cfg = AppConfig.model_validate(core)
    except ValidationError as exc:
        for err in exc.errors():
            loc = list(err["loc"])
            if loc and loc[0] in ("sensors", "sinks", "notifiers") and len(loc) > 1:
                continue  # already reported by _validate_entries
            problems.append(f"{fname}:{lines.line(loc)}: {key_path(loc)}: {_message(err, _model_at(AppConfig, loc))}")
    if cfg is not None and not problems:
        _cross_checks(cfg, raw, fname, lines, problems)
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    if base_dir is not None:
        _paths_from(base_dir, cfg)
    return cfg


def _paths_from(base_dir: Path, node: Any) -> None:
    """Make every relative path in the config (journal, secret files, password_file, TLS files ...) relative to
    `base_dir`, the config file's folder: systemd starts the daemon in `/`, not beside its config."""
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if isinstance(value, Path):
                if not value.is_absolute():
                    setattr(node, name, (base_dir / value).resolve())
            else:
                _paths_from(base_dir, value)
    elif isinstance(node, list | tuple):
        for item in node:
            _paths_from(base_dir, item)
    elif isinstance(node, dict):
        for item in node.values():
            _paths_from(base_dir, item)


def load_config(path: str | Path) -> AppConfig:
    """Read and validate a config file; relative paths in it are relative to its folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read config: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}: not UTF-8 text: {exc}"]) from None
    return parse_config(text, str(p), base_dir=p.resolve().parent)
