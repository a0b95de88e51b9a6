"""Stage 5: name each relaxed product: a known polymorph, or a numbered unknown structure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from matching.database import Polymorph
from matching.symmetry import Symmetry


def make_matcher() -> StructureMatcher:
    """The one matcher used everywhere: pymatgen defaults, volume scaling and supercells allowed."""
    return StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True, attempt_supercell=True)


@dataclass(frozen=True)
class Product:
    """A valid relaxed subcell, ready to be named."""

    subcell_id: int
    structure: Structure
    energy_per_atom: float
    symmetry: Symmetry

    @property
    def reduced_formula(self) -> str:
        return self.structure.composition.reduced_formula


@dataclass(frozen=True)
class Identity:
    """What a product is: a known polymorph's name, or 'unknown-K' for the K-th distinct unknown."""

    label: str
    known: bool
    spacegroup_symbol: str
    spacegroup_number: int


def identify(products: list[Product], polymorphs: list[Polymorph]) -> dict[int, Identity]:
    """Label every product. Returns subcell_id -> Identity.

    To keep matching cheap, products are bucketed by reduced formula and space group, clustered
    among themselves, and only the lowest-energy member of each cluster is compared with the
    known polymorphs (same space group first). Unmatched clusters become numbered unknowns.
    """
    matcher = make_matcher()
    buckets: dict[tuple[str, int], list[Product]] = defaultdict(list)
    for product in products:
        buckets[(product.reduced_formula, product.symmetry.number)].append(product)

    by_formula: dict[str, list[Polymorph]] = defaultdict(list)
    for polymorph in polymorphs:
        by_formula[polymorph.formula].append(polymorph)

    labels: dict[int, Identity] = {}
    unknown_groups: list[tuple[Product, list[Product]]] = []
    for (formula, sg_number), members in sorted(buckets.items()):
        structures = [p.structure for p in members]
        clusters = matcher.group_structures(structures) if len(members) > 1 else [structures]
        index_of = {id(s): k for k, s in enumerate(structures)}
        for cluster in clusters:
            group = sorted((members[index_of[id(s)]] for s in cluster), key=lambda p: p.energy_per_atom)
            representative = group[0]
            candidates = sorted(by_formula.get(formula, []), key=lambda pm: pm.spacegroup_number != sg_number)
            match = next((pm for pm in candidates if matcher.fit(pm.structure, representative.structure)), None)
            if match is None:
                unknown_groups.append((representative, group))
                continue
            for product in group:
                labels[product.subcell_id] = Identity(match.name, True, match.spacegroup_symbol, match.spacegroup_number)
    # unknown-1 is the most frequent unknown product (ties: lower energy)
    unknown_groups.sort(key=lambda rg: (-len(rg[1]), rg[0].energy_per_atom))
    for k, (representative, group) in enumerate(unknown_groups, start=1):
        sym = representative.symmetry
        for product in group:
            labels[product.subcell_id] = Identity(f"unknown-{k}", False, sym.symbol, sym.number)
    return labels
