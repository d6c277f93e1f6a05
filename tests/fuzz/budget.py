"""Hypothesis budgets for the fuzz suite: a few hundred inputs per format by default,
10,000 with `COLDCHAIN_LONG=1` (the issue's figure), no deadline (CI machines stall)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("COLDCHAIN_LONG") == "1"
EXAMPLES = 10_000 if LONG else 300

settings.register_profile(
    "fuzz", max_examples=EXAMPLES, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")

# A whole config parse (catalog, every driver's schema) costs ~10 ms more than a payload parse.
CONFIG_EXAMPLES = 3_000 if LONG else 150
CONFIG_FUZZ = settings(FUZZ, max_examples=CONFIG_EXAMPLES)

# A whole byte stream through `exchange` waits out its line timeout when nothing matches.
STREAM_FUZZ = settings(FUZZ, max_examples=2_000 if LONG else 150)
