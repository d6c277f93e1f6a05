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
