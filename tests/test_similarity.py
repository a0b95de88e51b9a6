"""How close the amorphous solid is to each polymorph (matching.local_structure, matching.similarity,
amorph.closeness) and the rules that read it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.io import read
from ase.optimize import FIRE

from amorph.matching.identify import Identity
from amorph.matching.local_structure import bond_length, local_structure
from amorph.matching.ranking import Outcome, tally
from amorph.matching.similarity import (
    PolymorphSimilarity,
    bootstrap_choices,
    choose,
    components,
    similarity,
    similarity_table,
)
from amorph.results.report import similarity_predictions

CU = ("Cu",)


def _relaxed(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=0.01, steps=300)
    return atoms


def _diamond_cu() -> Atoms:
    """Copper on the diamond lattice at fcc's volume per atom: four neighbours instead of twelve."""
    fcc = bulk("Cu", "fcc", a=3.61)
    atoms = bulk("Cu", "diamond", a=1.0)
    atoms.set_cell(atoms.cell * (fcc.get_volume() / (atoms.get_volume() / 2)) ** (1 / 3), scale_atoms=True)
    return atoms


def test_coordination_and_angles_of_known_crystals():
    fcc = local_structure(bulk("Cu", "fcc", a=3.61), CU)
    assert fcc.mean_coordination["Cu-Cu"] == 12
    salt = local_structure(bulk("NaCl", "rocksalt", a=5.64), ("Cl", "Na"))
    assert salt.mean_coordination["Na-Cl"] == 6 and salt.mean_coordination["Cl-Na"] == 6
    assert salt.mean_coordination["Na-Na"] == 0  # 3.99 A, beyond 1.2 x (1.66 + 1.66) A
    grid = np.arange(2.5, 180.0, 5.0)
    mass = salt.angles["Na"] * 5.0  # an octahedron's 15 Cl-Na-Cl angles: 12 at 90 degrees, 3 at 180
    assert mass[(grid > 75) & (grid < 105)].sum() == pytest.approx(0.8, abs=0.03)
    assert mass[grid > 165].sum() == pytest.approx(0.2, abs=0.03)
    assert bond_length("Na", "Cl") == pytest.approx(1.2 * (1.66 + 1.02))


def test_a_disordered_fcc_cell_is_closer_to_fcc_than_to_a_clearly_different_crystal():
    rng = np.random.default_rng(0)
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    cell.positions += rng.normal(0.0, 0.12, cell.positions.shape)
    disordered = local_structure(cell, CU)
    near = components(disordered, local_structure(bulk("Cu", "fcc", a=3.61), CU))
    far = components(disordered, local_structure(_diamond_cu(), CU))
    assert all(0.0 <= v <= 1.0 for v in [*near.values(), *far.values()])
    assert similarity(near) > similarity(far) + 0.2
    assert near["coordination"] > far["coordination"] and near["rdf"] > far["rdf"]


def test_emt_amorphous_copper_ranks_fcc_above_diamond_copper(cu_smoke_run):
    """The run's own relaxed amorphous cell (EMT melt-quench) against fcc and diamond-lattice copper, both
    relaxed under EMT: the close-packed crystal shares its twelvefold coordination, the diamond lattice does not."""
    out, _ = cu_smoke_run
    amorphous = [local_structure(a, CU) for a in read(out / "amorphous_relaxed.extxyz", ":")]
    crystals = {"fcc": _relaxed(bulk("Cu", "fcc", a=3.61)), "diamond": _relaxed(_diamond_cu())}
    energies = {name: a.get_potential_energy() / len(a) for name, a in crystals.items()}
    table = similarity_table(amorphous, {n: local_structure(a, CU) for n, a in crystals.items()}, energies, amorphous_energy=1.0)
    assert [p.name for p in table] == ["fcc", "diamond"]
    assert table[0].mean > table[1].mean + 0.1


def _entry(name: str, per_replica: list[float], above: float) -> PolymorphSimilarity:
    return PolymorphSimilarity(name, per_replica, {}, -1.0 + above, above, above < 0)


def test_a_polymorph_above_the_amorphous_solid_is_never_named():
    table = [_entry("dense", [0.9, 0.9], +0.02), _entry("open", [0.7, 0.72], -0.05), _entry("other", [0.6, 0.6], -0.08)]
    scores = {p.name: p.mean for p in table}
    assert choose("most-similar", table, scores, formed=set()) == "open"
    assert choose("similar-among-formed", table, scores, formed={"other", "dense"}) == "other"
    assert choose("similar-among-formed", table, scores, formed={"dense"}) is None


def test_bootstrap_over_replicas_counts_how_often_the_rule_names_each():
    rng = np.random.default_rng(0)
    table = [_entry("a", [0.8, 0.8, 0.8], -0.1), _entry("b", [0.5, 0.5, 0.5], -0.1)]
    assert bootstrap_choices("most-similar", table, [set(), set(), set()], rng, 200) == {"a": 1.0}
    split = [_entry("a", [0.9, 0.4, 0.4], -0.1), _entry("b", [0.6, 0.6, 0.6], -0.1)]  # a leads only on replica 0
    p = bootstrap_choices("most-similar", split, [set(), set(), set()], rng, 2000)
    assert 0.15 < p["a"] < 0.45 and p["b"] > 0.55  # a needs replica 0 drawn at least twice in three: 7/27
    formed = [{"b"}, {"b"}, {"a", "b"}]
    among = bootstrap_choices("similar-among-formed", table, formed, rng, 2000)
    assert 0.6 < among["a"] < 0.75  # a formed only in replica 2, drawn in 19/27 of resamples


def _outcome(k: int, name: str, replica: int, energy: float = -1.0) -> Outcome:
    return Outcome(k, Identity(name, True, "P1", 1), energy, "Cu", replica)


def test_a_polymorph_named_on_structure_alone_is_a_hypothesis_not_a_conclusive_answer():
    closeness = {"polymorphs": [
        {"name": "fcc", "per_replica": [0.9, 0.9], "components": {}, "energy_per_atom": -1.1,
         "energy_above_amorphous_mev_per_atom": -100.0, "reachable": True},
        {"name": "bcc", "per_replica": [0.7, 0.7], "components": {}, "energy_per_atom": -1.05,
         "energy_above_amorphous_mev_per_atom": -50.0, "reachable": True},
    ]}
    outcomes = [_outcome(k, "bcc", k % 2) for k in range(10)] + [_outcome(10, "fcc", 0)]
    rows = tally(outcomes)
    subcells = {"rule": "lowest-energy-known", "polymorph": "bcc", "conclusive": True}  # the run's own rule, as report.json has it
    predictions = similarity_predictions(closeness, rows, outcomes, 2, [], np.random.default_rng(0), 200, subcells)
    structural = predictions["most-similar"]
    assert structural["polymorph"] == "fcc" and structural["probability"] == 1.0
    assert structural["basis"] == "structure only" and structural["conclusive"] is False
    assert "hypothesis from structure" in structural["message"]
    assert "the subcells' lowest-energy-known names bcc" in structural["message"]
    assert predictions["similar-among-formed"]["polymorph"] == "fcc"  # fcc formed too, once
    more = outcomes + [_outcome(11 + k, "fcc", k % 2, energy=-1.1) for k in range(4)]
    doubtful = subcells | {"polymorph": "fcc", "conclusive": False}
    unsure = similarity_predictions(closeness, tally(more), more, 2, [], np.random.default_rng(0), 200, doubtful)
    assert unsure["most-similar"]["conclusive"] is False and "fcc too, inconclusively" in unsure["most-similar"]["message"]
    subcells |= {"polymorph": "fcc"}  # now the subcells name fcc too, conclusively
    settled = similarity_predictions(closeness, tally(more), more, 2, [], np.random.default_rng(0), 200, subcells)["most-similar"]
    assert settled["conclusive"] is True and settled["basis"] == "structure and subcells"
    alone = similarity_predictions(closeness, tally(more), [o for o in more if o.replica == 0], 1, [], np.random.default_rng(0), 200, subcells)
    assert alone["most-similar"]["conclusive"] is False and "one replica" in alone["most-similar"]["message"]


def test_a_run_reports_the_similarity_of_every_known_polymorph_beside_the_subcells(cu_smoke_run, cli):
    out, _ = cu_smoke_run
    report = json.loads((out / "report.json").read_text())
    known = set(report["known_polymorphs"]["names"])
    section = report["similarity"]
    assert {p["name"] for p in section["polymorphs"]} == known
    counts = {p["name"]: p["count"] for p in report["polymorphs"] if p["known"]}
    for p in section["polymorphs"]:
        assert p["count"] == counts.get(p["name"], 0)
        assert 0.0 < p["similarity"] <= 1.0 and set(p["components"]) == {"density", "rdf", "coordination", "angles", "soap"}
        assert p["reachable"] == (p["energy_above_amorphous_mev_per_atom"] < 0)
    amorphous = read(out / "amorphous_relaxed.extxyz", ":")
    assert section["amorphous"]["energy_per_atom"] == pytest.approx(np.mean([a.info["energy_per_atom"] for a in amorphous]))
    table = pd.read_csv(out / "similarity.csv")
    assert set(table["name"]) == known and "similarity_coordination" in table.columns
    products = pd.read_csv(out / "polymorphs.csv")  # the products; a known one carries its similarity
    by_name = {p["name"]: p["similarity"] for p in section["polymorphs"]}
    for row in products.itertuples():
        assert (row.similarity == pytest.approx(by_name[row.name])) if row.known else np.isnan(row.similarity)
    for rule in ("most-similar", "similar-among-formed"):
        assert report["predictions"][rule]["rule"] == rule
    page = (out / "report.html").read_text()
    assert "How close the amorphous solid is to each polymorph" in page
    code, stdout, stderr = cli("compare", str(out))
    assert code == 0, stderr
    assert "How close the amorphous solid is" in stdout and "amorphous solid, relaxed" in stdout


def test_with_no_known_polymorph_the_stage_still_measures_the_amorphous_solid_and_no_rule_names_one():
    from amorph.closeness import compare_with_amorphous
    from amorph.md.potentials import load_potential
    from amorph.progress import SilentProgress

    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    cell.rattle(0.1, seed=0)
    content, amorphous, crystals = compare_with_amorphous("Cu", [cell], [], load_potential("emt", "cpu"), 0.05, SilentProgress())
    assert content["polymorphs"] == [] and crystals == [] and len(amorphous) == 1
    assert content["amorphous"]["energy_per_atom"] == pytest.approx(amorphous[0].info["energy_per_atom"])
    predictions = similarity_predictions(content, [], [], 1, [], np.random.default_rng(0), 50)
    assert all(p["polymorph"] is None for p in predictions.values())
