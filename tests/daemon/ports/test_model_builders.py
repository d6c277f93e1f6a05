"""new_sample / new_reading make what the dataclasses' own constructors make, field for field."""

from __future__ import annotations

import dataclasses

import pytest

from daemon.ports.model import Flag, Quality, Quantity, Reading, Sample, new_reading, new_sample


def test_new_sample_equals_the_constructor() -> None:
    args = ("s1", "temperature", 4.25, "C", 1700000000.5, None, True)
    a, b = new_sample(*args), Sample(*args)
    assert type(a) is Sample
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert dataclasses.astuple(a) == args
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.value = 1.0  # type: ignore[misc]


def test_new_reading_equals_the_constructor() -> None:
    args = ("site", "z1", "s1", Quantity.HUMIDITY, 55.5, 1700000000.25, Quality.FAULT, "why", 42,
            Flag.RECEIVED | Flag.REPLAYED)
    a, b = new_reading(*args), Reading(*args)
    assert type(a) is Reading
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)
    assert [getattr(a, f.name) for f in dataclasses.fields(Reading)] == list(args)
    assert a.good is False and dataclasses.replace(a, quality=Quality.GOOD).good is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.ts = 0.0  # type: ignore[misc]


def test_every_field_is_set() -> None:
    """A field added to the dataclass later is a parameter of the builder too (no slot left unset)."""
    for cls, build in ((Sample, new_sample), (Reading, new_reading)):
        names = [f.name for f in dataclasses.fields(cls)]
        obj = build(*range(len(names)))
        assert [getattr(obj, n) for n in names] == list(range(len(names)))
