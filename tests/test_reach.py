"""Before any MD, a run says which known polymorphs its subcells cannot become, and stops when none
can (or when no subcell size holds a whole formula unit)."""

from __future__ import annotations

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
