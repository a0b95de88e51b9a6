"""--more-if-inconclusive: a reserve of subcells, drawn after the budget and relaxed in rounds only
while the answer is inconclusive; the budget's subcells are the same with or without it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import read
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import parse_formula
from amorph.matching.database import known_polymorphs
from amorph.motifs.subcells import extract_subcells
from amorph.packing import random_packing
from amorph.progress import SilentProgress
from amorph.sampling import relax_while_inconclusive


@pytest.fixture(scope="module")
def amorphous_tio2():
    return random_packing(parse_formula("TiO2"), 48, 1.15 * 48 * 10.4, np.random.default_rng(0))


def test_the_reserve_leaves_the_budget_as_it_was(amorphous_tio2):
    tio2 = parse_formula("TiO2")
    plain, census = extract_subcells(amorphous_tio2, tio2, 0.1, 2, 12, 20, np.random.default_rng(3), sizes=[6])
    with_reserve, census_r = extract_subcells(amorphous_tio2, tio2, 0.1, 2, 12, 20, np.random.default_rng(3), sizes=[6], reserve=15)
    assert census.distinct > 35 and census_r.selected == 20 and census_r.reserve == 15 and census.reserve == 0
    budget, reserve = with_reserve[:20], with_reserve[20:]
    assert [s.indices for s in budget] == [s.indices for s in plain] and not any(s.reserve for s in budget)
    assert all(np.allclose(a.atoms.positions, b.atoms.positions) for a, b in zip(budget, plain))
    assert len(reserve) == 15 and all(s.reserve for s in reserve)
    assert [s.id for s in with_reserve] == list(range(35))
    # the reserve is drawn from the boxes the budget left: every subcell a different set of atoms
    assert len({(s.indices, s.lower, s.upper) for s in with_reserve}) == 35
    # in random order, not the grid order of the budget
    assert [s.lower for s in reserve] != sorted(s.lower for s in reserve)


def _frame(structure, subcell_id: int, energy_per_atom: float) -> Atoms:
    """A relaxed, judged subcell as stage 4 leaves it."""
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info.update(subcell_id=subcell_id, replica=0, valid=True, final_energy=energy_per_atom * len(atoms))
    return atoms


def _odd(subcell_id: int, energy_per_atom: float) -> Atoms:
    """A NaCl product matching no known polymorph (a distorted chain cell, different for every id)."""
    rng = np.random.default_rng(subcell_id)
    atoms = Atoms("NaClNaCl", cell=np.diag([3.0, 4.0 + rng.uniform(0, 2), 7.0 + rng.uniform(0, 3)]),
                  scaled_positions=rng.uniform(0, 1, (4, 3)), pbc=True)
    atoms.info.update(subcell_id=subcell_id, replica=0, valid=True, final_energy=energy_per_atom * len(atoms))
    return atoms


class Recorder:
    """A stand-in for stage 4's relax(): returns the prepared products and records each round's size."""

    def __init__(self, products: dict[int, Atoms]):
        self.products, self.rounds = products, []

    def __call__(self, cells: list[Atoms]) -> list[Atoms]:
        self.rounds.append(len(cells))
        return [self.products[c.info["subcell_id"]] for c in cells]


def _placeholders(ids) -> list[Atoms]:
    return [Atoms("NaCl", cell=np.eye(3) * 4.0, pbc=True, info={"subcell_id": i, "replica": 0}) for i in ids]


def test_an_inconclusive_answer_draws_on_the_reserve_until_it_is_conclusive():
    refs = known_polymorphs("NaCl")
    rocksalt = next(p for p in refs if p.name == "rocksalt").structure
    # budget of 20: one rocksalt (the lowest known), the rest unknown -> P about 0.64, inconclusive
    products = {0: _frame(rocksalt, 0, -3.30)} | {i: _odd(i, -3.0 - 0.001 * i) for i in range(1, 20)}
    # reserve of 48, in rounds of 16: the first round brings two more rocksalt -> conclusive
    products |= {20: _frame(rocksalt, 20, -3.31), 27: _frame(rocksalt, 27, -3.29)}
    products |= {i: _odd(i, -3.0) for i in range(21, 68) if i not in products}
    relax = Recorder(products)
    relaxed, sampling, _ = relax_while_inconclusive(
        _placeholders(range(20)), _placeholders(range(20, 68)), relax, refs, "lowest-energy-known",
        lambda: np.random.default_rng(0), SilentProgress(),
    )
    assert relax.rounds == [20, 16]  # the budget, then one round of the reserve
    assert len(relaxed) == 36 and sampling["relaxed"] == 36 and sampling["reserve"] == 48
    assert sampling["stopped"] == "conclusive"
    first, last = sampling["rounds"]
    assert first["leader"] == last["leader"] == "rocksalt"
    assert first["probability"] < 0.8 <= last["probability"]


def test_the_reserve_stops_when_what_is_left_of_it_cannot_settle_the_answer():
    refs = known_polymorphs("NaCl")
    rocksalt = next(p for p in refs if p.name == "rocksalt").structure
    # one rocksalt in a budget of 20: seen once in 20, it needs about 40 more valid subcells to be seen
    # MIN_EVIDENCE (3) times; the reserve of 44 can give 40, so one round is tried
    products = {0: _frame(rocksalt, 0, -3.30)} | {i: _odd(i, -3.0 - 0.001 * i) for i in range(1, 64)}
    relax = Recorder(products)
    relaxed, sampling, _ = relax_while_inconclusive(
        _placeholders(range(20)), _placeholders(range(20, 64)), relax, refs, "lowest-energy-known",
        lambda: np.random.default_rng(0), SilentProgress(),
    )
    # after that round (no second rocksalt) it needs more than what is left: stop there
    assert relax.rounds == [20, 16] and len(relaxed) == 36
    assert sampling["stopped"] == "reserve cannot settle it"
    assert [r["more_valid_needed"] for r in sampling["rounds"]] == [40, 72]  # 20 x 3 - 20, 36 x 3 - 36
    # a reserve smaller than the first estimate is not touched at all
    relax = Recorder(products)
    relaxed, sampling, _ = relax_while_inconclusive(
        _placeholders(range(20)), _placeholders(range(20, 30)), relax, refs, "lowest-energy-known",
        lambda: np.random.default_rng(0), SilentProgress(),
    )
    assert relax.rounds == [20] and len(relaxed) == 20 and sampling["stopped"] == "reserve cannot settle it"


def test_cannot_settle_reads_the_estimate_against_the_valid_subcells_left():
    from amorph.sampling import cannot_settle

    def run(valid: int, invalid: int) -> list[Atoms]:
        return [Atoms(info={"valid": True})] * valid + [Atoms(info={"valid": False})] * invalid

    assert cannot_settle(100, 90, run(10, 0)) and not cannot_settle(90, 90, run(10, 0))
    assert cannot_settle(80, 90, run(8, 2))  # 90 left at 80% valid give 72
    assert not cannot_settle(15, 22, run(15, 7))  # a tie in whole numbers (22 x 15/22 = 15) is no stop
    assert not cannot_settle(None, 0, run(10, 0))  # no estimate: no reason to stop


def test_a_conclusive_answer_or_none_leaves_the_reserve_alone():
    refs = known_polymorphs("NaCl")
    rocksalt = next(p for p in refs if p.name == "rocksalt").structure
    conclusive = {i: _frame(rocksalt, i, -3.3) for i in range(6)} | {i: _odd(i, -3.0) for i in range(6, 20)}
    nothing_known = {i: _odd(i, -3.0) for i in range(20)}
    for products, stopped in ((conclusive, "conclusive within the budget"), (nothing_known, "nothing named")):
        relax = Recorder(products)
        relaxed, sampling, _ = relax_while_inconclusive(
            _placeholders(range(20)), _placeholders(range(20, 40)), relax, refs, "lowest-energy-known",
            lambda: np.random.default_rng(0), SilentProgress(),
        )
        assert relax.rounds == [20] and len(relaxed) == 20 and sampling["stopped"] == stopped


def test_cli_reserve_is_cut_recorded_relaxed_in_rounds_and_named_once(cli, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--seed", "0", "--md-steps", "5",
                          "--max-subcells", "4", "--more-if-inconclusive", "32", "--rule", "most-frequent", "--out", str(out))
    assert code == 0, stderr
    census = json.loads((out / "subcell_census.json").read_text())
    sampling = json.loads((out / "sampling.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert census["selected"] == 4 and census["reserve"] == 32
    assert sampling["budget"] == 4 and sampling["reserve"] == 32 and report["sampling"] == sampling
    rows = (out / "subcells.csv").read_text().strip().splitlines()[1:]
    assert sampling["relaxed"] == report["n_subcells"] == len(rows)
    # the last judgement is the report's own: same leader, same probability
    assert sampling["rounds"][-1]["leader"] == report["prediction"]["polymorph"]
    assert sampling["rounds"][-1]["probability"] == pytest.approx(report["prediction"]["probability"])
    # seed 0: fcc leads the 4 subcells of the budget at P 0.64, and one round of 16 from the reserve settles it
    assert [r["relaxed"] for r in sampling["rounds"]] == [4, 20] and sampling["stopped"] == "conclusive"
    assert "the answer is inconclusive" in stderr and "Relaxing 16 more subcells" in stderr
    # stage 5 took stage 4's names; a resumed stage 5 names the products afresh, in one pass, alike
    before = _names(out / "subcells.csv")
    for stage_5_and_later in ("subcells.csv", "polymorphs.csv", "report.json", "report.html"):
        (out / stage_5_and_later).unlink()
    code, _, stderr = cli("resume", str(out))
    assert code == 0, stderr
    assert _names(out / "subcells.csv") == before


def _names(subcells_csv) -> list[tuple[str, ...]]:
    """What each subcell became, as subcells.csv says (its floats aside: a structure read back from
    extxyz moves the fingerprint distance of an unknown in its 10th digit)."""
    with open(subcells_csv, newline="") as handle:
        return [(r["id"], r["valid"], r["spacegroup_number"], r["match"], r["known_polymorph"], r["stacking_variant"])
                for r in csv.DictReader(handle)]


def test_with_replicas_the_reserve_takes_turns_and_the_budget_stays_the_same(cli, tmp_path):
    runs = {}
    for reserve in ("0", "6"):
        out = tmp_path / f"reserve-{reserve}"
        code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--seed", "1", "--md-steps", "2",
                              "--replicas", "2", "--max-subcells", "4", "--relax-steps", "5", "--more-if-inconclusive", reserve,
                              "--out", str(out))
        assert code == 0, stderr
        runs[reserve] = read(out / "subcells_initial.extxyz", ":")
    plain, with_reserve = runs["0"], runs["6"]
    assert len(plain) == 4 and len(with_reserve) == 10
    for a, b in zip(plain, with_reserve[:4]):  # the budget: same subcells, same ids, same replicas
        assert a.info["subcell_id"] == b.info["subcell_id"] and a.info["replica"] == b.info["replica"]
        assert np.allclose(a.positions, b.positions) and not b.info["reserve"]
    assert [f.info["replica"] for f in with_reserve[4:]] == [0, 1, 0, 1, 0, 1] and all(f.info["reserve"] for f in with_reserve[4:])
    assert [f.info["subcell_id"] for f in with_reserve] == list(range(10))


def test_auto_sampling_has_no_reserve(cli, tmp_path):
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "quick", "--max-subcells", "auto",
                          "--more-if-inconclusive", "10", "--out", str(tmp_path / "run"))
    assert code == 2 and "--more-if-inconclusive needs a whole-number --max-subcells" in stderr
    assert not (tmp_path / "run").exists()

