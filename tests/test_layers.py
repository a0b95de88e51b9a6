"""Layered products are named by their layers (matching.layers): a known layered polymorph's layers in
another stacking get its family's name and a flag; 3D crystals never do."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pymatgen.core import Lattice, Structure

from amorph.matching.database import known_polymorphs
from amorph.matching.identify import Product, identify
from amorph.matching.layers import LayerFamilies, layers_of
from amorph.matching.matcher import make_matcher
from amorph.matching.ranking import Outcome, tally
from amorph.matching.symmetry import find_symmetry


def _by_name(formula: str):
    return {p.name: p for p in known_polymorphs(formula)}


def _named(structure: Structure, formula: str):
    [identity] = identify([Product(0, structure, -9.0, find_symmetry(structure))], known_polymorphs(formula)).values()
    return identity


def _aa_graphite(gap: float) -> Structure:
    """Graphene sheets straight on top of each other (AA, P6/mmm): a stacking graphite never has."""
    return Structure(Lattice.hexagonal(2.46, gap), ["C", "C"], [[0, 0, 0], [1 / 3, 2 / 3, 0]])


def _shifted_graphite(gap: float) -> Structure:
    """Two graphene sheets a cell, the second shifted by half a bond along a (neither AA, AB nor ABC)."""
    lattice = Lattice.hexagonal(2.46, 2 * gap)
    sheet = [[0, 0], [1 / 3, 2 / 3]]
    coords = [[x, y, 0.0] for x, y in sheet] + [[(x + 1 / 6) % 1, (y + 1 / 6) % 1, 0.5] for x, y in sheet]
    return Structure(lattice, ["C"] * 4, coords)


def _mos2_layers(trigonal_prismatic: bool, shifted_second_layer: bool, gap: float = 3.9) -> Structure:
    """Two MoS2 layers a cell, S-Mo-S 3.1 A thick, `gap` A between them; the second layer straight on
    top of the first (AA) or shifted by a third of the cell (a stacking none of 2H, 3R or 1T has)."""
    c = 2 * (3.1 + gap)
    d = 1.55 / c
    species, coords = [], []
    for k, z in enumerate((0.25, 0.75)):
        shift = (1 / 3, 2 / 3) if (k == 1 and shifted_second_layer) else (0.0, 0.0)
        top = (1 / 3, 2 / 3) if trigonal_prismatic else (2 / 3, 1 / 3)
        sites = [((0, 0), z), ((1 / 3, 2 / 3), z - d), (top, z + d)]
        for (x, y), h in sites:
            coords.append([(x + shift[0]) % 1, (y + shift[1]) % 1, h])
        species += ["Mo", "S", "S"]
    return Structure(Lattice.hexagonal(3.16, c), species, coords)


@pytest.mark.parametrize(("formula", "name"), [("C", "diamond"), ("C", "lonsdaleite"), ("ZnS", "wurtzite"), ("ZnS", "zincblende"),
                                               ("TiO2", "rutile"), ("Cu", "fcc")])
def test_3d_crystals_have_no_layers(formula, name):
    """So stacking variants experiments tell apart by their bonds (wurtzite and zincblende) stay apart."""
    assert layers_of(_by_name(formula)[name].structure) is None


def test_layered_polymorphs_have_their_layers():
    graphite = layers_of(_by_name("C")["graphite"].structure)
    assert graphite is not None and len(graphite) == 2 and all(layer.composition.reduced_formula == "C" for layer in graphite)
    assert make_matcher().fit(graphite[0], graphite[1])  # AB graphite: two sheets, one layer
    assert layers_of(_by_name("MoS2")["1t"].structure) is not None


@pytest.mark.parametrize("gap", [3.35, 3.7])  # graphite's spacing, and a wider one, as potentials without dispersion give
def test_graphene_sheets_in_another_stacking_are_named_graphite_as_a_variant(gap):
    identity = _named(_aa_graphite(gap), "C")
    assert identity.known and identity.stacking_variant
    assert identity.label == "graphite" and identity.spacegroup_number == 194  # named with the family ground state's space group


def test_known_stackings_keep_their_own_names():
    for name in ("graphite", "rhombohedral-graphite"):
        identity = _named(_by_name("C")[name].structure, "C")
        assert identity.label == name and not identity.stacking_variant
    identity = _named(_by_name("MoS2")["3r"].structure, "MoS2")
    assert identity.label == "3r" and not identity.stacking_variant


def test_the_layer_not_the_ground_state_decides_the_family():
    """1T's octahedral layers shifted are 1T's family; 2H's trigonal-prismatic layers AA are 2H's (ground state of 2H, 3R)."""
    octahedral = _named(_mos2_layers(trigonal_prismatic=False, shifted_second_layer=True), "MoS2")
    assert (octahedral.label, octahedral.stacking_variant) == ("1t", True)
    prismatic = _named(_mos2_layers(trigonal_prismatic=True, shifted_second_layer=False), "MoS2")
    assert (prismatic.label, prismatic.stacking_variant) == ("2h", True)


def test_a_shifted_stack_is_a_variant_too():
    identity = _named(_shifted_graphite(3.5), "C")
    assert (identity.label, identity.stacking_variant) == ("graphite", True)


def test_layers_of_two_kinds_join_no_family_of_one_kind():
    """A 1T layer on a 2H layer: each is a known layer, but no known polymorph is built of both."""
    prismatic = _mos2_layers(trigonal_prismatic=True, shifted_second_layer=False)
    mixed = prismatic.copy()
    top = [k for k, site in enumerate(mixed) if site.frac_coords[2] > 0.6 and site.specie.symbol == "S"]
    highest = max(top, key=lambda k: mixed[k].frac_coords[2])
    mixed.replace(highest, "S", [2 / 3, 1 / 3, mixed[highest].frac_coords[2]])  # that layer's top S over the other hollow: octahedral
    assert layers_of(mixed) is not None and len(layers_of(mixed)) == 2
    assert not _named(mixed, "MoS2").known


def test_a_sheet_that_is_no_known_layer_stays_unknown():
    # a square net of carbon: layered, but not graphene
    squares = Structure(Lattice.tetragonal(1.5, 3.4), ["C"], [[0, 0, 0]])
    assert layers_of(squares) is not None
    assert not _named(squares, "C").known


def test_which_family_member_is_named():
    """Ground state first; else the lowest above the hull; else the first listed."""
    graphite, rhombohedral = _by_name("C")["graphite"], _by_name("C")["rhombohedral-graphite"]
    product = _aa_graphite(3.5)
    families = LayerFamilies(make_matcher())
    metastable = [replace(graphite, ground_state=False), rhombohedral]
    assert families.named_by_layers(product, metastable).name == "graphite"  # first listed
    assert families.named_by_layers(product, metastable[::-1]).name == "rhombohedral-graphite"
    hull = [replace(graphite, ground_state=False, energy_above_hull=0.01), replace(rhombohedral, energy_above_hull=0.002)]
    assert LayerFamilies(make_matcher()).named_by_layers(product, hull).name == "rhombohedral-graphite"
    assert LayerFamilies(make_matcher()).named_by_layers(product, [_by_name("C")["diamond"]]) is None


def test_reports_say_how_many_of_a_count_are_other_stackings():
    from amorph.results.report import named_by, prediction_line, stacking_note

    found = identify(
        [Product(k, s, e, find_symmetry(s)) for k, (s, e) in enumerate([(_aa_graphite(3.5), -9.2), (_aa_graphite(3.6), -9.19),
                                                                         (_by_name("C")["graphite"].structure, -9.18)])],
        known_polymorphs("C"),
    )
    [row] = tally([Outcome(k, identity, -9.2 + 0.01 * k, "C") for k, identity in found.items()])
    assert (row.name, row.count, row.stacking_variants) == ("graphite", 3, 2)
    named = named_by("lowest-energy-known", [row], "C")  # the default rule
    assert named["stacking_variants"] == 2 and stacking_note(named) == " (2 of 3 in another stacking)"
    line = prediction_line({"formula": "C", "n_valid": 3, "n_subcells": 3, "prediction": named})
    assert "first to nucleate: graphite" in line and line.endswith("2 of them in another stacking")
    assert stacking_note(row.to_dict() | {"stacking_variants": 0}) == ""
    unsure = named | {"conclusive": False, "probability": 0.6, "message": "inconclusive between graphite and diamond"}
    line = prediction_line({"formula": "C", "n_valid": 3, "n_subcells": 3, "prediction": unsure})
    assert "inconclusive between graphite and diamond" in line and "2 of them in another stacking" in line


def test_a_run_names_graphene_stacks_graphite_from_the_cli(cli, tmp_path):
    """End to end: a carbon run whose relaxed subcells are graphene stacks (AA and shifted, put in place
    of what its short relaxation gave) is resumed at stage 5; the answer is graphite, flagged."""
    import json
    import shutil

    from ase.io import read, write
    from pymatgen.io.ase import AseAtomsAdaptor

    out = tmp_path / "c"
    code, _, stderr = cli("predict", "C", "--potential", "chgnet", "--device", "cpu", "--preset", "smoke", "--atoms", "8",
                          "--md-steps", "5", "--n-max", "4", "--max-subcells", "3", "--relax-steps", "30", "--out", str(out), "--quiet")
    assert code == 0, stderr
    frames = read(out / "subcells_relaxed.extxyz", ":")
    stacks = [_aa_graphite(3.5) * (2, 1, 1), _aa_graphite(3.6) * (1, 2, 1), _shifted_graphite(3.4)]
    for k, (frame, stack) in enumerate(zip(frames, stacks, strict=True)):
        atoms = AseAtomsAdaptor.get_atoms(stack)
        atoms.info = dict(frame.info) | {"valid": True, "reason": "ok", "converged": True, "final_energy": -36.7 + 0.01 * k}
        frames[k] = atoms
    write(out / "subcells_relaxed.extxyz", frames, format="extxyz")
    for name in ("subcells.csv", "polymorphs.csv", "report.json", "report.html"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "products", ignore_errors=True)

    code, stdout, stderr = cli("resume", str(out))
    assert code == 0, stderr
    # 3 subcells of one replica in an 8-atom cell are too little evidence for a conclusive answer
    # (matching.rules.evidence_gaps): graphite leads, inconclusive
    assert "graphite leads" in stdout and "3 of them in another stacking" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["prediction"]["polymorph"] == "graphite" and report["prediction"]["stacking_variants"] == 3
    assert (out / "products" / "graphite-stacking-variant.cif").is_file() and not (out / "products" / "graphite.cif").exists()
    page = (out / "report.html").read_text()
    assert "graphite (3 of 3 in another stacking)" in page and 'alt="structure of graphite"' in page  # the variant's picture
    subcells = (out / "subcells.csv").read_text().splitlines()
    assert subcells[0].endswith(",stacking_variant") and all(line.endswith(",True") for line in subcells[1:])
