"""Before any MD, a run says which known polymorphs its subcells cannot become, and stops when none
can (or when no subcell size holds a whole formula unit)."""

from __future__ import annotations

import json

import numpy as np
from ase.build import bulk
from ase.io import read, write


def test_subcell_range_without_a_formula_unit_is_refused_at_once(cli, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu3Au", "--potential", "emt", "--preset", "smoke", "--n-max", "3", "--out", str(out))
    assert code == 2 and stderr.count("\n") == 1
    assert "cannot hold whole formula units of Cu3Au (4 atoms each)" in stderr and "--n-max 4" in stderr
    assert not out.exists()


def test_unreachable_polymorphs_are_named_before_md(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = cli("predict", "Au", "--potential", "emt", "--preset", "smoke", "--n-min", "1", "--n-max", "1",
                               "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert "subcells of at most 1 atoms cannot become: hcp (2 atoms), 4h (4 atoms)" in stderr
    # and by shape: 4H's c (9.4 A) is longer than the 32-atom cell's edge (8.5 A)
    assert "are too short to become: 4h" in " ".join(stderr.split())
    room = json.loads((out / "subcell_range.json").read_text())["cell_room"]
    assert [r["name"] for r in room["too_short_for"]] == ["4h"] and room["too_short_for"][0]["needed"] > room["edge"]
    # and after the run, beside the answer: what formed nowhere, and why it could not
    report = json.loads((out / "report.json").read_text())
    missing = {m["name"]: m["out_of_reach"] for m in report["known_polymorphs"]["not_formed"]}
    assert missing["hcp"] == "a primitive cell of 2 atoms, subcells of at most 1" and missing["4h"].startswith("a primitive cell of 4 atoms")
    formed = {r["name"] for r in report["polymorphs"] if r["known"] and r["count"]}
    assert formed.isdisjoint(missing) and formed | set(missing) == set(report["known_polymorphs"]["names"])
    assert "out of reach: hcp (a primitive cell of 2 atoms, subcells of at most 1)" in " ".join(stdout.split())


def test_why_a_polymorph_that_formed_nowhere_was_out_of_reach():
    """A subcell of N atoms can only become a crystal whose primitive cell divides N; one longer than
    the starting cell is unlikely to form. The first reason found is the one given."""
    from amorph.reach import out_of_reach
    from amorph.start import OutOfRoom

    roomless = [OutOfRoom("brookite", 9.17, 9.61, 75), OutOfRoom("long", 9.5, 9.96, 81)]
    why = out_of_reach({"rutile": 6, "brookite": 24, "four": 4, "long": 6}, {3, 6, 9}, 8.3, roomless)
    assert set(why) == {"brookite", "four", "long"}  # rutile's 6 atoms divide the 6-atom subcells
    assert why["brookite"] == "a primitive cell of 24 atoms, subcells of at most 9"
    assert why["four"] == "a primitive cell of 4 atoms, no subcell a multiple of it (3, 6, 9 atoms)"
    assert why["long"] == "a cell edge of 9.5 A, 10.0 A at the amorphous density; --atoms 81: longer than the 8.3 A starting cell"


def test_a_polymorph_longer_than_the_cell_is_out_of_room():
    """A box cut from the cubic cell is never longer than its edge, and every cell of a crystal has an
    edge at least as long as its most compact cell's longest: brookite's 9.17 A a does not fit the quick
    preset's 48-atom TiO2 cell (8.3 A), and the atoms that give it room do."""
    from dataclasses import replace

    from amorph.composition import parse_formula
    from amorph.matching.database import known_polymorphs
    from amorph.settings import preset_settings
    from amorph.start import out_of_room

    tio2, packing = parse_formula("TiO2"), preset_settings("TiO2", "quick").packing
    n_atoms, edge, short = out_of_room(tio2, packing, known_polymorphs("TiO2"))
    assert n_atoms == 48 and 8.2 < edge < 8.4
    assert [r.name for r in short] == ["brookite"] and short[0].atoms == 75 and short[0].atoms % 3 == 0
    assert out_of_room(tio2, replace(packing, target_atoms=75), known_polymorphs("TiO2"))[2] == []
    assert out_of_room(tio2, replace(packing, target_atoms=72), known_polymorphs("TiO2"))[2] != []
    assert out_of_room(parse_formula("Cu"), packing, known_polymorphs("Cu"))[2] == []


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
    # 128 atoms: a cell long enough for the 12-atom polymorph's 10.8 A axis (11.3 A at the amorphous density)
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--atoms", "128", "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert "subcells of up to 12 atoms (not 8)" in stderr
    limit = json.loads((out / "subcell_range.json").read_text())["subcell_size_limit"]
    assert limit == {"n_max": 12, "raised_from": 8, "cap": 64}  # smoke: 8 atoms at most
    assert json.loads((out / "subcell_census.json").read_text())["n_max"] == 12


def test_n_max_is_not_raised_for_a_polymorph_too_long_for_the_cell(cli, tmp_path):
    """The smoke preset's 32-atom Cu cell is 7.6 A on a side: no subcell can become the 12-atom
    polymorph (10.8 A long), so larger subcells for it would only spend the budget."""
    refs = _distorted_supercell_db(tmp_path)
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    text = " ".join(stderr.split())
    assert "subcells of up to" not in text and "subcells of at most 8 atoms cannot become: big (12 atoms)" in text
    assert "are too short to become: big" in text
    known = json.loads((out / "subcell_range.json").read_text())
    assert known["subcell_size_limit"] == {"n_max": 8, "raised_from": None, "cap": 16}
    assert [r["name"] for r in known["cell_room"]["too_short_for"]] == ["big"]


def test_n_max_is_raised_for_every_polymorph_when_none_has_room(cli, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    long = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 3))
    long.positions += np.random.default_rng(0).normal(0.0, 0.08, long.positions.shape)
    write(refs / "long.cif", long)  # the only known polymorph, and too long for the 32-atom cell
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert json.loads((out / "subcell_range.json").read_text())["subcell_size_limit"]["n_max"] == 12


def test_explicit_n_max_is_kept(cli, tmp_path):
    refs = _distorted_supercell_db(tmp_path)
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", str(refs), "--n-min", "1",
                          "--n-max", "8", "--md-steps", "5", "--max-subcells", "4", "--out", str(out))
    assert code == 0, stderr
    assert "subcells of at most 8 atoms cannot become: big (12 atoms)" in stderr
    assert json.loads((out / "subcell_census.json").read_text())["n_max"] == 8


def test_the_cell_grows_to_hold_a_polymorph_longer_than_it(cli, tmp_path):
    """Au's 4H (c 9.4 A) does not fit the smoke preset's 32-atom cell; with --grow-to the cell grows to
    the fewest atoms that hold it, 4H is then within reach, and the subcell range follows the cell."""
    runs = {}
    for grow in ("0", "64", "40"):
        out = tmp_path / f"grow{grow}"
        code, _, stderr = cli("predict", "Au", "--potential", "emt", "--preset", "smoke", "--grow-to", grow, "--md-steps", "5",
                              "--max-subcells", "4", "--out", str(out))
        assert code == 0, stderr
        runs[grow] = (json.loads((out / "subcell_range.json").read_text()), read(out / "start.extxyz"), " ".join(stderr.split()))
    (room, start, _), (grown_room, grown, note), (capped_room, capped, _) = runs["0"], runs["64"], runs["40"]
    [needed] = room["cell_room"]["too_short_for"]
    assert needed["name"] == "4h" and len(start) == 32
    assert len(grown) == needed["atoms"] and grown_room["cell_room"]["too_short_for"] == []
    assert grown_room["cell_room"]["atoms"] == needed["atoms"] and grown_room["cell_room"]["atoms_asked"] == 32
    assert grown_room["cell_room"]["edge"] >= needed["needed"] and grown_room["subcell_size_limit"]["cap"] == needed["atoms"] // 2
    assert f"the starting cell grows from 32 to {needed['atoms']} atoms" in note
    assert len(capped) == 32 and [r["name"] for r in capped_room["cell_room"]["too_short_for"]] == ["4h"]  # beyond the cap: as asked
