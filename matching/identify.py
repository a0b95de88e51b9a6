"""Stage 5: name each relaxed product: a known polymorph, or a numbered unknown structure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pymatgen.core import Structure

from matching.fingerprint import fingerprint, fingerprint_distance
from matching.matcher import make_matcher
from matching.polymorph import Polymorph
from matching.prototypes import structure_type
from matching.symmetry import Symmetry


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
    """What a product is: a known polymorph's name, or 'unknown-K' for the K-th distinct unknown.

    An unknown is never only "unknown": it carries a structure-type label and the known polymorph
    of its formula whose fingerprint is closest (see matching.prototypes, matching.fingerprint).
    """

    label: str
    known: bool
    spacegroup_symbol: str
    spacegroup_number: int
    structure_type: str = ""
    closest_known: str = ""
    closest_distance: float = float("nan")


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
    prints: dict[str, list[tuple[str, object]]] = {}
    for k, (representative, group) in enumerate(unknown_groups, start=1):
        sym = representative.symmetry
        closest, distance = _closest_known(representative, by_formula.get(representative.reduced_formula, []), prints)
        identity = Identity(
            f"unknown-{k}", False, sym.symbol, sym.number, structure_type(representative.structure), closest, distance
        )
        for product in group:
            labels[product.subcell_id] = identity
    return labels


def _closest_known(product: Product, polymorphs: list[Polymorph], cache: dict) -> tuple[str, float]:
    """The known polymorph of the product's formula with the nearest structural fingerprint."""
    if not polymorphs:
        return "", float("nan")
    formula = product.reduced_formula
    elements = sorted(el.symbol for el in product.structure.composition.elements)
    if formula not in cache:
        cache[formula] = [(p.name, fingerprint(p.structure, elements)) for p in polymorphs]
    mine = fingerprint(product.structure, elements)
    name, distance = min(((n, fingerprint_distance(mine, f)) for n, f in cache[formula]), key=lambda nd: nd[1])
    return name, distance
