"""Generated input, thrown at argument parsing and formula handling: every answer is exit code 0 or 2,
never a traceback, and at most a few lines on stderr. `--out` points where no folder can be made, so
an input that passes every check is still refused before any run starts."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TRICKY = ["", " ", "tio2", "TIO2", "Ti0O2", "TiO-2", "Ti-1O2", "Ti1.5O3", "TiO2.5", "Fe2+", "Fe+3O", "Ca(OH)2", "CuSO4·5H2O",
          "CuSO4*5H2O", "H2O", "Ti O2", "Ti\tO2", "TiO2\n", "Ｔｉ", "Tiö2", "Xx2", "Uuo", "D2O", "Ti" * 2000, "9" * 400,
          "Cu" + "9" * 400, "Og2", "e-", "()", "Ti(O2", "[TiO2]", "TiO2; rm -rf /", "--help"]
formulas = st.one_of(
    st.sampled_from(TRICKY),
    st.from_regex(r"\A(?:[A-Z][a-z]?(?:\d{1,4}(?:\.\d{1,2})?)?){1,4}\Z"),
    st.text(max_size=40),
)
numbers = st.one_of(
    st.integers(-10**9, 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "1e400", "nan", "inf", "-1", "0.5", "1,5", "", "auto", "5000", "5001", "1e-30"]),
    st.text(max_size=8),
)
FLAGS = ["--atoms", "--t-high", "--t-low", "--md-steps", "--timestep", "--replicas", "--d-frac", "--n-min", "--n-max",
         "--max-subcells", "--fmax", "--relax-steps", "--volume-factor", "--seed", "--friction", "--thermostat"]
NOWHERE = "/proc/amorph-fuzz/run"  # the file system refuses any folder there, even to root


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(formula=formulas, options=st.lists(st.tuples(st.sampled_from(FLAGS), numbers), max_size=4),
       command=st.sampled_from(["predict", "db-list", "compare"]))
def test_generated_input_gets_one_line_and_exit_0_or_2(cli, formula, options, command):
    flags = [word for pair in options for word in pair]
    if command == "predict":
        args = ["predict", formula, "--potential", "emt", "--preset", "smoke", *flags, "--out", NOWHERE]
    elif command == "db-list":
        args = ["db", "list", formula]
    else:
        args = ["compare", formula, "--potential", "emt", "--out", NOWHERE]
    code, _, stderr = cli(*args)
    assert code in (0, 2), (args, code, stderr)
    assert "Traceback" not in stderr, (args, stderr)
    assert len(stderr.strip().splitlines()) <= 3, (args, stderr)
