"""Stage 5: name each relaxed product: a known polymorph, or a numbered unknown structure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pymatgen.analysis.structure_matcher import StructureMatcher
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


# Two products whose fingerprints differ by more than this are not compared with the (much slower)
# StructureMatcher. Measured on the TiO2 polymorphs: two copies each strained by up to 3% and rattled by
# 0.05 A differ by at most 0.043 (median 0.011); two different random TiO2 cells by 0.31 (median).
FINGERPRINT_GATE = 0.1


def identify(products: list[Product], polymorphs: list[Polymorph]) -> dict[int, Identity]:
    """Label every product. Returns subcell_id -> Identity.

    To keep matching cheap with thousands of products, products are bucketed by reduced formula and
    space group and clustered among themselves (a fingerprint gate before each StructureMatcher call);
    only the lowest-energy member of each cluster is compared with the known polymorphs. When several
    known polymorphs fit (close pairs such as cubic and tetragonal BaTiO3), the one with the smallest
    RMS displacement wins. Unmatched clusters become numbered unknowns.
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
    for (formula, _), members in sorted(buckets.items()):
        for group in _clusters(members, matcher):
            representative = group[0]
            match = best_match(representative.structure, by_formula.get(formula, []), matcher)
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
            f"unknown-{k}", False, sym.symbol, sym.number, structure_type(representative.structure, sym.number), closest, distance
        )
        for product in group:
            labels[product.subcell_id] = identity
    return labels


def _clusters(members: list[Product], matcher: StructureMatcher) -> list[list[Product]]:
    """Group products of one bucket that are the same structure; each group sorted by energy, lowest first.

    Leader clustering, as pymatgen's group_structures does (each product is compared with the first member
    of every group so far), but lowest energy first and with a fingerprint gate, so distinct products cost
    a dot product instead of a StructureMatcher call.
    """
    ordered = sorted(members, key=lambda p: p.energy_per_atom)
    if len(ordered) == 1:
        return [ordered]
    elements = sorted(el.symbol for el in ordered[0].structure.composition.elements)
    prints = [fingerprint(p.structure, elements) for p in ordered]
    groups: list[list[int]] = []
    for i in range(len(ordered)):
        for group in groups:
            lead = group[0]
            if fingerprint_distance(prints[i], prints[lead]) < FINGERPRINT_GATE and matcher.fit(
                ordered[lead].structure, ordered[i].structure
            ):
                group.append(i)
                break
        else:
            groups.append([i])
    return [[ordered[i] for i in group] for group in groups]


def best_match(structure: Structure, candidates: list[Polymorph], matcher: StructureMatcher) -> Polymorph | None:
    """The known polymorph the structure is, or None: among those that fit, the smallest RMS displacement."""
    fits = [pm for pm in candidates if matcher.fit(pm.structure, structure)]
    if len(fits) <= 1:
        return fits[0] if fits else None
    return min(fits, key=lambda pm: matcher.get_rms_dist(pm.structure, structure)[0])


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
