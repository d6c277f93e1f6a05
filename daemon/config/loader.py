"""Loading a config file: YAML with line numbers, driver entries validated by `type:`, cross-entry rules.

Every problem is reported as `file:line: key: message`. The driver registry is passed in
(`daemon.app.plugins` finds the installed drivers), so the core never imports a driver.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from daemon.config.catalog import load_catalog
from daemon.config.schema import AppConfig
from daemon.ports.errors import ConfigError
from daemon.ports.registry import Registry
from daemon.ports.sources import SensorBase


def suggest(word: str, options: Iterable[str]) -> str:
    """'; did you mean X?' for the closest option, or ''."""
    opts = list(options)
    best = [o for o in opts if o.startswith(word) or word.startswith(o)] if word else []
    best = best or difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    return f"; did you mean {best[0]!r}?" if best else ""


def key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        # a stray CR or escape in a key must not garble the terminal
        shown = part if isinstance(part, int) or str(part).isprintable() else repr(str(part))
        out += f"[{shown}]" if isinstance(shown, int) else (f".{shown}" if out else str(shown))
    return out


_C_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


class _CheckedLoader(_C_LOADER or yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's safe loader that notes a key written twice in a mapping while it builds the data, so the
    node tree for line numbers is composed only when there is something to report."""

    duplicated = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if len(keys) != len(set(keys)):
            self.duplicated = True
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]


class _Lines:
    """Finds the line of a key path in the composed YAML tree. The tree is composed from `text` on the first
    question: a valid config never needs it, and composing a 200-sensor config left ~1.1 MB more RSS in the
    daemon when ready (docs/benchmarks.md, "Memory in session 14")."""

    def __init__(self, text: str, loader: type[Any], duplicated: bool = True) -> None:
        self._text, self._loader, self._duplicated = text, loader, duplicated
        self._root: yaml.Node | None = None
        self._composed = False

    @property
    def root(self) -> yaml.Node | None:
        if not self._composed:
            self._root, self._composed = yaml.compose(self._text, Loader=self._loader), True
        return self._root

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

        if self._duplicated and self.root is not None:
            walk(self.root, [])
        return out


def _message(err: ErrorDetails, model: type[BaseModel] | None) -> str:
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
    raw: Any, section: str, table: Mapping[str, Any], fname: str, lines: _Lines, problems: list[str]
) -> list[Any]:
    """Validate each entry of `sensors:`/`sinks:`/`notifiers:` with its driver's Config."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{fname}:{lines.line([section])}: {section}: expected a list")
        return []
    out = []
    for i, entry in enumerate(raw):
        where: list[int | str] = [section, i]
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
                loc: list[int | str] = [*where, *err["loc"]]
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


def _cross_checks(
    cfg: AppConfig, raw: dict[str, Any], registry: Registry, fname: str, lines: _Lines, problems: list[str]
) -> None:
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
        if z.precool is not None and cfg.site.kind == "vehicle":
            problems.append(
                f"{fname}:{lines.line(['zones', i, 'precool'])}: zones[{i}].precool: a vehicle's compartments do not "
                "precool (site.kind is vehicle); precool at the center before loading"
            )
        elif z.precool is not None:
            _precool_sensors(cfg, i, fname, lines, problems)
        elif z.commodity is None and t.high is None and t.low is None:
            problems.append(
                f"{fname}:{lines.line(['zones', i])}: zones[{i}]: no commodity and no "
                "alarms.temperature.high/low: this zone could never raise a temperature alarm"
            )
        if not cfg.sensors_of(z.id):
            problems.append(f"{fname}:{lines.line(['zones', i])}: zones[{i}]: zone {z.id!r} has no sensors")
    _driver_groups(cfg, registry, fname, lines, problems)
    _schedule_refs(cfg, fname, lines, problems)
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


def _precool_sensors(cfg: AppConfig, i: int, fname: str, lines: _Lines, problems: list[str]) -> None:
    """A precooling room's pulp and air sensors are sensors of that room, and not both."""
    z = cfg.zones[i]
    assert z.precool is not None
    own = [s.id for s in cfg.sensors_of(z.id)]
    for role in ("pulp", "supply_air"):
        for j, sid in enumerate(getattr(z.precool, role)):
            if sid not in own:
                loc: list[int | str] = ["zones", i, "precool", role, j]
                problems.append(f"{fname}:{lines.line(loc)}: {key_path(loc)}: {sid!r} is not a sensor of zone "
                                f"{z.id!r}{suggest(sid, own)}")
    for sid in set(z.precool.pulp) & set(z.precool.supply_air):
        loc = ["zones", i, "precool"]
        problems.append(f"{fname}:{lines.line(loc)}: {key_path(loc)}: {sid!r} cannot be both pulp and supply_air")


def _schedule_refs(cfg: AppConfig, fname: str, lines: _Lines, problems: list[str]) -> None:
    """Scheduled reports name rooms and channels that exist."""
    zone_ids, notifier_ids = [z.id for z in cfg.zones], [n.id for n in cfg.notifiers]
    for i, sch in enumerate(cfg.reports.schedules):
        for key, names, known in (("zones", sch.zones, zone_ids), ("notifiers", sch.notifiers, notifier_ids)):
            for j, name in enumerate(names):
                if name not in known:
                    loc: list[int | str] = ["reports", "schedules", i, key, j]
                    problems.append(f"{fname}:{lines.line(loc)}: {key_path(loc)}: unknown {key[:-1]} {name!r}"
                                    f"{suggest(name, known)}")


def _driver_groups(cfg: AppConfig, registry: Registry, fname: str, lines: _Lines, problems: list[str]) -> None:
    """Rules across sensors of one driver (one RS485 bus, one line setting) and one port, one driver."""
    index = {id(s): i for i, s in enumerate(cfg.sensors)}
    by_type: dict[str, list[SensorBase]] = {}
    for s in cfg.sensors:
        by_type.setdefault(s.type, []).append(s)
    for kind, sensors in by_type.items():
        try:
            registry.sensors[kind].group(sensors)
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


def _load_yaml(text: str) -> tuple[_Lines, Any]:
    """The data, and the line finder that composes the node tree from the text when first asked (constructing
    the data flattens `<<` merges in the tree it is built from, so the tree is a parse of its own).
    libyaml's parser when PyYAML has it: with the pure-Python one the parse of a 200-sensor config took 7.2 MB
    of RSS against 5.1, and the daemon was 0.5 MB bigger when ready (docs/benchmarks.md, "Memory and ingest in
    session 12"). Whatever libyaml refuses is parsed again by the pure-Python loader, whose errors (positions
    counted in characters, not bytes; PyYAML's messages) are the ones installers see."""
    if _C_LOADER is not None:
        try:
            loader = _CheckedLoader(text)
            try:
                raw = loader.get_single_data()
            finally:
                loader.dispose()
            return _Lines(text, _C_LOADER, loader.duplicated), raw
        except (yaml.YAMLError, UnicodeError):
            pass
    raw = yaml.safe_load(text)
    return _Lines(text, yaml.SafeLoader), raw


def parse_config(text: str, registry: Registry, fname: str = "config.yaml", base_dir: Path | None = None) -> AppConfig:
    """Validate config text; raises ConfigError listing every problem as `file:line: key: message`."""
    try:
        lines, raw = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{fname}:{line}: YAML syntax error: {exc.problem or exc}"]) from None
    except yaml.reader.ReaderError as exc:  # a control character (a paste from a PDF, a stray NUL)
        line = text.count("\n", 0, exc.position) + 1
        ch = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError([f"{fname}:{line}: YAML syntax error: control character {ch} is not allowed"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{fname}:1: the file must be a mapping with keys site, sensors, zones ..."])
    problems = [f"{fname}:{ln}: {path}: key written twice" for ln, path in lines.duplicates()]
    core = dict(raw)
    core["sensors"] = _validate_entries(raw.get("sensors"), "sensors", registry.sensors, fname, lines, problems)
    core["sinks"] = _validate_entries(raw.get("sinks"), "sinks", registry.sinks, fname, lines, problems)
    core["notifiers"] = _validate_entries(raw.get("notifiers"), "notifiers", registry.notifiers, fname, lines, problems)
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
        _cross_checks(cfg, raw, registry, fname, lines, problems)
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


def load_config(path: str | Path, registry: Registry) -> AppConfig:
    """Read and validate a config file; relative paths in it are relative to its folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read config: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}: not UTF-8 text: {exc}"]) from None
    return parse_config(text, registry, str(p), base_dir=p.resolve().parent)
