"""Stage 5: name each relaxed product: a known polymorph, or a numbered unknown structure."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from amorph.matching.fingerprint import fingerprint, fingerprint_distance
from amorph.matching.layers import LayerFamilies
from amorph.matching.matcher import make_matcher, reduced_for_matching
from amorph.matching.polymorph import Polymorph
from amorph.matching.prototypes import structure_type
from amorph.matching.symmetry import Symmetry
from amorph.settings import MatchingSettings


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
    stacking_variant: bool = False  # a known layered polymorph's layers in another stacking (matching.layers)


# Two products whose fingerprints differ by more than this are not compared with the (much slower)
# StructureMatcher. Measured on the TiO2 polymorphs: two copies each strained by up to 3% and rattled by
# 0.05 A differ by at most 0.043 (median 0.011); two different random TiO2 cells by 0.31 (median).
FINGERPRINT_GATE = 0.1


@dataclass
class _Cluster:
    """Products that are one structure; the first (lowest energy when added together) leads."""

    members: list[Product]
    fingerprint: np.ndarray
    match: Polymorph | None
    reduced: Structure  # the leader's structure as the matcher reduces it (see matching.matcher.reduced_for_matching)
    stacking_variant: bool = False  # named by its layers, not matched outright (matching.layers)


class Clusters:
    """Products grouped into distinct structures and matched to the known polymorphs, incrementally.

    Products are bucketed by reduced formula and space group; within a bucket each product is compared
    with the leader of every cluster so far (a fingerprint gate before each StructureMatcher call) and
    joins the first it matches, else leads a new cluster, which alone is compared with the known
    polymorphs: outright, else by its layers (a layered polymorph's stacking variant, see
    matching.layers). Adding products later costs only their own comparisons: `--max-subcells auto` adds
    each round's products instead of naming everything again.

    Each structure is reduced for the matcher once (a product when it is first compared, a leader's
    kept with its cluster, a known polymorph's kept by polymorph), and StructureMatcher.fit is called
    on the reduced ones with skip_structure_reduction=True, as pymatgen's group_structures does: the
    same answers as plain fit, without reducing both structures again at every call.
    """

    def __init__(self, polymorphs: list[Polymorph], tolerances: MatchingSettings | None = None):
        self.matcher = make_matcher(tolerances)
        self.by_formula: dict[str, list[Polymorph]] = defaultdict(list)
        for polymorph in polymorphs:
            self.by_formula[polymorph.formula].append(polymorph)
        self.buckets: dict[tuple[str, int], list[_Cluster]] = defaultdict(list)
        # id(polymorph) -> its reduced structure, filled when first needed; the polymorphs stay alive in
        # by_formula, so their ids stay theirs (Polymorph's own == compares structures, too slow for a key)
        self._known_reduced: dict[int, Structure] = {}
        self.layers = LayerFamilies(self.matcher)

    def add(self, products: list[Product]) -> None:
        """Place products (lowest energy first, so leaders are the lowest-energy members)."""
        for product in sorted(products, key=lambda p: p.energy_per_atom):
            formula = product.reduced_formula
            clusters = self.buckets[(formula, product.symmetry.number)]
            elements = sorted(el.symbol for el in product.structure.composition.elements)
            mine = fingerprint(product.structure, elements)
            reduced = None  # reduced only if a fit needs it
            for cluster in clusters:
                if fingerprint_distance(mine, cluster.fingerprint) >= FINGERPRINT_GATE:
                    continue
                if reduced is None:
                    reduced = reduced_for_matching(self.matcher, product.structure)
                if self.matcher.fit(cluster.reduced, reduced, skip_structure_reduction=True):  # leader first, as ever
                    cluster.members.append(product)
                    break
            else:
                if reduced is None:
                    reduced = reduced_for_matching(self.matcher, product.structure)
                candidates = self.by_formula.get(formula, [])
                match = best_match(product.structure, candidates, self.matcher, reduced, self._reduced_known_of(candidates))
                variant = False
                if match is None:
                    match = self.layers.named_by_layers(product.structure, candidates)
                    variant = match is not None
                clusters.append(_Cluster([product], mine, match, reduced, variant))

    def _reduced_known_of(self, polymorphs: list[Polymorph]) -> list[Structure]:
        """The polymorphs' structures reduced for the matcher, each reduced once per Clusters."""
        out = []
        for polymorph in polymorphs:
            reduced = self._known_reduced.get(id(polymorph))
            if reduced is None:
                reduced = self._known_reduced[id(polymorph)] = reduced_for_matching(self.matcher, polymorph.structure)
            out.append(reduced)
        return out

    def known_names(self) -> dict[int, str]:
        """subcell_id -> known polymorph name, or "" for a product no known polymorph matches."""
        return {
            p.subcell_id: (c.match.name if c.match else "")
            for clusters in self.buckets.values()
            for c in clusters
            for p in c.members
        }

    def identities(self) -> dict[int, Identity]:
        """subcell_id -> Identity; unknown-1 is the most frequent unknown structure (ties: lower energy)."""
        labels: dict[int, Identity] = {}
        unknown: list[_Cluster] = []
        for _key, clusters in sorted(self.buckets.items()):
            for cluster in clusters:
                if cluster.match is None:
                    unknown.append(cluster)
                    continue
                m = cluster.match
                for product in cluster.members:
                    labels[product.subcell_id] = Identity(
                        m.name, True, m.spacegroup_symbol, m.spacegroup_number, stacking_variant=cluster.stacking_variant
                    )
        unknown.sort(key=lambda c: (-len(c.members), c.members[0].energy_per_atom))
        prints: dict[str, list[tuple[str, object]]] = {}
        for k, cluster in enumerate(unknown, start=1):
            representative = cluster.members[0]
            sym = representative.symmetry
            closest, distance = _closest_known(representative, self.by_formula.get(representative.reduced_formula, []), prints)
            identity = Identity(
                f"unknown-{k}", False, sym.symbol, sym.number, structure_type(representative.structure, sym.number), closest, distance
            )
            for product in cluster.members:
                labels[product.subcell_id] = identity
        return labels


def identify(products: list[Product], polymorphs: list[Polymorph], tolerances: MatchingSettings | None = None) -> dict[int, Identity]:
    """Label every product (see Clusters). Returns subcell_id -> Identity.

    When several known polymorphs fit (close pairs such as cubic and tetragonal BaTiO3), the one with
    the smallest RMS displacement wins. A layered product that fits none is named by its layers where
    they are a known polymorph's (matching.layers). Unmatched clusters become numbered unknowns.
    """
    clusters = Clusters(polymorphs, tolerances)
    clusters.add(products)
    return clusters.identities()


def best_match(
    structure: Structure,
    candidates: list[Polymorph],
    matcher: StructureMatcher,
    reduced: Structure,
    candidates_reduced: list[Structure],
) -> Polymorph | None:
    """The known polymorph the structure is, or None: among those that fit, the smallest RMS displacement.

    `reduced` and `candidates_reduced` (one per candidate) are the structures already reduced by
    matching.matcher.reduced_for_matching: fit skips reducing them again (same answer). get_rms_dist
    has no such option in pymatgen, so it takes the structures themselves.
    """
    fits = [
        pm
        for pm, pm_reduced in zip(candidates, candidates_reduced, strict=True)
        if matcher.fit(pm_reduced, reduced, skip_structure_reduction=True)
    ]
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
