"""`amorph db list|show|export` from the command line."""

from __future__ import annotations

import io

import pandas as pd
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer


def test_db_list_shows_every_formula(cli):
    code, stdout, stderr = cli("db", "list")
    assert code == 0, stderr
    n_formulas = int(stdout.split("Built-in polymorph database:")[1].split("formulas")[0])
    assert n_formulas >= 60
    for formula in ("TiO2", "HfO2", "Si3N4", "ZrCu", "TiNi", "CaCO3", "MoS2"):
        assert f" {formula} " in stdout


def test_db_list_hfo2_shows_the_four_classic_polymorphs_with_sources(cli):
    code, stdout, stderr = cli("db", "list", "HfO2")
    assert code == 0, stderr
    for name in ("monoclinic*", "tetragonal", "cubic", "orthorhombic"):
        assert name in stdout
    assert "Hann" in stdout  # the monoclinic entry's source


def test_db_show_prints_a_cif_of_the_entry(cli):
    code, stdout, stderr = cli("db", "show", "TiO2", "anatase")
    assert code == 0, stderr
    assert "I4_1/amd (141)" in stderr and "Howard" in stderr
    structure = Structure.from_str(stdout, fmt="cif")
    assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() == 141
    assert structure.composition.reduced_formula == "TiO2"


def test_db_export_writes_cifs_and_an_index(cli, tmp_path):
    code, stdout, stderr = cli("db", "export", "ZrO2", str(tmp_path / "zro2"))
    assert code == 0, stderr
    index = pd.read_csv(tmp_path / "zro2" / "index.csv")
    assert set(index["name"]) == {"monoclinic", "tetragonal", "cubic", "orthorhombic"}
    for row in index.itertuples():
        structure = Structure.from_file(tmp_path / "zro2" / row.file)
        assert SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() == row.spacegroup_number


def test_db_prototypes_for_a_formula_nobody_knows(cli):
    code, stdout, stderr = cli("db", "list", "SrTiO3", "--db", "builtin", "--db", "prototypes")
    assert code == 0, stderr
    assert "perovskite-type" in stdout


def test_db_errors_are_one_line(cli):
    for args, message in (
        (("db", "show", "TiO2", "nonsense"), "no polymorph named 'nonsense'"),
        (("db", "list", "Li3PO4"), "no known polymorphs of Li3PO4"),
        (("db", "list", "Qq2"), "not a chemical formula"),
    ):
        code, stdout, stderr = cli(*args)
        assert code == 2 and message in stderr and stderr.count("\n") == 1, (args, stderr)


def test_compare_uses_the_same_sources(cli, tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    from amorph.matching.database import known_polymorphs

    for p in known_polymorphs("Cu")[:2]:
        p.structure.to(filename=str(folder / f"user-{p.name}.cif"))
    out = tmp_path / "cmp"
    code, stdout, stderr = cli("compare", "Cu", "--potential", "emt", "--db", str(folder), "--out", str(out))
    assert code == 0, stderr
    table = pd.read_csv(io.StringIO((out / "compare.csv").read_text()))
    assert set(table["name"]) == {"user-fcc", "user-hcp"}


def test_the_listing_names_what_loading_builds():
    """`db list` reads names without building structures; they must be the entries known_polymorphs builds."""
    from amorph.matching.database import known_polymorphs, polymorph_names

    for formula in ("TiO2", "O2Ti", "Cu", "SiO2", "TiSi2"):
        assert polymorph_names(formula) == [(p.name, p.ground_state) for p in known_polymorphs(formula)]
    assert polymorph_names("Xe2") == []
