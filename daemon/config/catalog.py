"""The commodity catalog: storage ranges per product, with the sources they came from."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

_REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


@dataclass(frozen=True, slots=True)
class Commodity:
    """One row of config/commodities.csv; blank cells are None (no limit known)."""

    key: str
    name_en: str
    name_zh: str
    temp_min: float | None
    temp_max: float | None
    rh_min: float | None
    rh_max: float | None
    storage_life: str
    freezing_point: float | None
    chilling_below: float | None
    source: str

    @property
    def unverified(self) -> bool:
        """True when the source column flags a value as unverified or uncertain."""
        s = self.source.upper()
        return "UNVERIFIED" in s or "UNCERTAIN" in s

    def name(self, lang: str) -> str:
        return self.name_zh if lang.startswith("zh") else self.name_en


def default_catalog_path() -> Path:
    """The shipped catalog: `config/` in a checkout, `daemon/_config/` in an installed wheel."""
    local = _REPO_CONFIG / "commodities.csv"
    if local.is_file():
        return local
    return Path(str(files("daemon").joinpath("_config", "commodities.csv")))


def _num(cell: str) -> float | None:
    cell = cell.strip()
    return float(cell) if cell else None


def parse_catalog(path: Path) -> dict[str, Commodity]:
    """Read a catalog CSV; raises ValueError naming file and line for a bad row."""
    out: dict[str, Commodity] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                c = Commodity(
                    key=row["key"].strip(),
                    name_en=row["name_en"].strip(),
                    name_zh=row["name_zh"].strip(),
                    temp_min=_num(row["temp_min_c"]),
                    temp_max=_num(row["temp_max_c"]),
                    rh_min=_num(row["rh_min_pct"]),
                    rh_max=_num(row["rh_max_pct"]),
                    storage_life=row["storage_life"].strip(),
                    freezing_point=_num(row["freezing_point_c"]),
                    chilling_below=_num(row["chilling_injury_below_c"]),
                    source=row["source"].strip(),
                )
            except (KeyError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}: row for {row.get('key')!r}: {exc}") from exc
            if c.key in out:
                raise ValueError(f"{path}: commodity {c.key!r} listed twice")
            out[c.key] = c
    return out


@functools.cache
def load_catalog(path: Path | None = None) -> dict[str, Commodity]:
    """The catalog keyed by commodity key (cached per path)."""
    return parse_catalog(path or default_catalog_path())


@functools.cache
def commodity_rules(path: Path | None = None) -> dict[str, dict[str, object]]:
    """Extra rules per commodity (damage bands ...) from commodity_rules.yaml."""
    import yaml

    p = path or default_catalog_path().parent / "commodity_rules.yaml"
    data = yaml.safe_load(p.read_text(encoding="utf-8")) if p.is_file() else {}
    return data or {}


@dataclass(frozen=True, slots=True)
class PrecoolTarget:
    """How fast a commodity's precooling should go (a row of config/precooling.csv), with its source."""

    key: str
    method: str  # forced_air, hydro, vacuum, room: the cooling the target assumes
    half_h: float | None
    seven_eighths_h: float
    source: str

    @property
    def unverified(self) -> bool:
        s = self.source.upper()
        return "UNVERIFIED" in s or "UNCERTAIN" in s


def parse_precool_targets(path: Path, catalog: dict[str, Commodity]) -> dict[str, PrecoolTarget]:
    """Read the precooling targets; raises ValueError naming the file, line and key of a bad row."""
    out: dict[str, PrecoolTarget] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}:{line}: {row.get('key')!r}"
            try:
                t = PrecoolTarget(row["key"].strip(), row["method"].strip(), _num(row["half_cooling_target_h"]),
                                  float(row["seven_eighths_target_h"]), row["source"].strip())
            except (KeyError, ValueError, AttributeError) as exc:
                raise ValueError(f"{where}: {exc}") from exc
            if t.key not in catalog:
                raise ValueError(f"{where}: not a commodity of the catalog")
            if t.seven_eighths_h <= 0 or not t.source:
                raise ValueError(f"{where}: seven_eighths_target_h must be > 0 and the source given")
            out[t.key] = t
    return out


@functools.cache
def precool_targets(path: Path | None = None) -> dict[str, PrecoolTarget]:
    """Precooling targets by commodity key (config/precooling.csv beside the catalog); commodities without a row
    have no target, and a run of them is measured but never called too slow."""
    p = path or default_catalog_path().parent / "precooling.csv"
    return parse_precool_targets(p, load_catalog()) if p.is_file() else {}
