"""products/<label>.cif opens as a crystal: symmetrized in its conventional cell, named, with its energy."""

from __future__ import annotations

import json

import pandas as pd
import spglib
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer


def test_product_cifs_read_back_with_the_space_group_the_table_prints(cu_smoke_run):
    out, _ = cu_smoke_run
    report = json.loads((out / "report.json").read_text())
    subcells = pd.read_csv(out / "subcells.csv")
    checked = same = 0
    for row in report["polymorphs"]:
        if not row["known"] or row["count"] == 0:
            continue
        path = out / "products" / f"{row['name']}.cif"
        text = path.read_text()
        assert f"data_{row['name']}" in text and f"# amorph product '{row['name']}'" in text
        structure = Structure.from_file(path)
        lowest = subcells[subcells["id"] == row["lowest_energy_subcell"]].iloc[0]
        symprec = float(lowest["symprec"])  # the tolerance that named the member the CIF holds
        assert f"subcell {row['lowest_energy_subcell']} " in text
        # pymatgen and spglib both read the written cell as the product's own space group (the one
        # subcells.csv gives its member; the table adds it where it differs from the matched
        # reference's), and the cell is its conventional one: orthogonal axes for a cubic product
        number = int(lowest["spacegroup_number"])
        assert SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number() == number, path
        cell = (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)
        assert spglib.get_symmetry_dataset(cell, symprec=symprec).number == number
        assert row.get("own_spacegroup", "") == ("" if number == row["spacegroup_number"] else f"{lowest['spacegroup_symbol']} ({number})")
        same += number == row["spacegroup_number"]
        if number >= 195:
            assert max(abs(a - 90) for a in structure.lattice.angles) < 1e-6
        energy = float(next(line for line in text.splitlines() if line.startswith("# energy")).split()[2])
        assert abs(energy - row["lowest_energy_per_atom"]) < 1e-4
        checked += 1
    assert checked >= 1 and same >= 1
