"""Before any MD, a run says which known polymorphs its subcells cannot become, and stops when none
can (or when no subcell size holds a whole formula unit)."""

from __future__ import annotations

import json

import numpy as np
from ase.build import bulk
from ase.io import write


def test_subcell_range_without_a_formula_unit_is_refused_at_once(cli, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu3Au", "--potential", "emt", "--preset", "smoke", "--n-max", "3", "--out", str(out))
    assert code == 2 and stderr.count("\n") == 1
    assert "cannot hold whole formula units of Cu3Au (4 atoms each)" in stderr and "--n-max 4" in stderr
    assert not out.exists()


def test_unreachable_polymorphs_are_named_before_md(cli, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Au", "--potential", "emt", "--preset", "smoke", "--n-min", "1", "--n-max", "1",
                          "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert "subcells of at most 1 atoms cannot become: hcp (2 atoms), 4h (4 atoms)" in stderr


def test_no_reachable_polymorph_stops_before_md(cli, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    write(refs / "hcp.cif", bulk("Cu", "hcp", a=2.55, c=4.17))  # 2 atoms: the only known polymorph
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--n-max", "1", "--out", str(out), "--quiet")
    assert code == 2 and stderr.count("\n") == 1
    assert "no known polymorph of Cu fits in subcells of at most 1 atoms (primitive cells: hcp (2 atoms))" in stderr
    assert "--n-max 2" in stderr
    assert not (out / "start.extxyz").exists() and not (out / "melt_quench.csv").exists()


def test_size_limit_rule():
    from amorph.motifs.subcells import size_limit

    assert size_limit(12, True, 48, [6, 6, 12, 24]).n_max == 24  # brookite's 24-atom cell fits
    assert size_limit(12, True, 48, [6, 6, 12, 24]).raised_from == 12
    assert size_limit(12, True, 48, [4, 12, 32]).n_max == 24  # capped at half the 48-atom cell
    assert size_limit(12, True, 100, [4, 12, 32]).n_max == 32
    assert size_limit(12, True, 48, [2, 4]).n_max == 12 and size_limit(12, True, 48, [2, 4]).raised_from is None  # never lowered
    assert size_limit(12, False, 48, [6, 24]).n_max == 12  # an explicit --n-max is kept
    assert size_limit(30, True, 48, [40]).n_max == 30  # a setting above the cap is not lowered to it


def _distorted_supercell_db(tmp_path):
    """A --db folder with fcc Cu (1 atom) and a 12-atom Cu cell whose primitive cell is all 12 atoms."""
    refs = tmp_path / "refs"
    refs.mkdir()
    write(refs / "fcc.cif", bulk("Cu", "fcc", a=3.61))
    big = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 3))
    big.positions += np.random.default_rng(0).normal(0.0, 0.08, big.positions.shape)  # P1: nothing repeats
    write(refs / "big.cif", big)
    return refs


def test_preset_n_max_is_raised_to_fit_the_known_polymorphs(cli, tmp_path):
    refs = _distorted_supercell_db(tmp_path)
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert "subcells of up to 12 atoms (not 8)" in stderr
    limit = json.loads((out / "known_polymorphs.json").read_text())["subcell_size_limit"]
    assert limit == {"n_max": 12, "raised_from": 8, "cap": 16}  # smoke: 8 atoms at most, a 32-atom cell
    assert json.loads((out / "subcell_census.json").read_text())["n_max"] == 12


def test_explicit_n_max_is_kept(cli, tmp_path):
    refs = _distorted_supercell_db(tmp_path)
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--n-max", "8", "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert "subcells of at most 8 atoms cannot become: big (12 atoms)" in stderr
    assert json.loads((out / "subcell_census.json").read_text())["n_max"] == 8
