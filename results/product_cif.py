"""products/<label>.cif: a product as a crystallographer opens it, not as the subcell it was relaxed in.

The relaxed subcell is a small, slightly skewed P1 box; written as it is, VESTA shows a skewed box. The
CIF holds the product symmetrized to its own space group, at the tolerance that named it (the one
matching.symmetry found), in its conventional standard cell (spglib's refinement, through pymatgen),
with its symmetry operations, and comment lines that say what it is: the product's label and what it
matched, its own space group, its energy per atom and the subcell it came from.
"""

from __future__ import annotations

import re

from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from amorph.matching.symmetry import Symmetry

FALLBACK_SYMPREC = 0.01  # A, where the product's own tolerance is not known


def product_cif(atoms: Atoms, label: str, symmetry: Symmetry | None, matched: str) -> str:
    """The CIF text of one product (its lowest-energy subcell); `matched` says what it was named against."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    symprec = symmetry.symprec if symmetry is not None else FALLBACK_SYMPREC
    try:
        refined = SpacegroupAnalyzer(structure, symprec=symprec).get_refined_structure()
        text = str(CifWriter(refined, symprec=symprec))
        own = SpacegroupAnalyzer(refined, symprec=symprec)
        group = f"{own.get_space_group_symbol()} ({own.get_space_group_number()})"
    except (ValueError, TypeError):  # spglib found no cell to refine: the relaxed cell as it is, in P1
        text, group = str(CifWriter(structure)), "P1 (1), not symmetrized"
    energy = atoms.info.get("final_energy")
    header = [
        f"# amorph product '{label}': {matched}",
        f"# own space group {group} at symprec {symprec:g} A, conventional standard cell",
        f"# energy {energy / len(atoms):.4f} eV/atom under the run's potential" if energy is not None else "# energy not recorded",
        f"# from relaxed subcell {atoms.info.get('subcell_id', '?')} of replica {atoms.info.get('replica', 0)} ({len(atoms)} atoms)",
    ]
    block = "data_" + re.sub(r"[^A-Za-z0-9_.-]", "_", label)
    return "\n".join(header) + "\n" + re.sub(r"^data_\S*", block, text, count=1, flags=re.MULTILINE)
