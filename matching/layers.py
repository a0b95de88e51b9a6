"""Layered polymorphs: name a product by its layers when only their stacking differs from a known one.

A relaxed subcell holds one to four layers of a layered crystal, and its periodic box, not chemistry,
sets how they stack: a 4-atom carbon subcell can hold two graphene sheets in AA or AB register or
shifted in between, never ABC. Without a dispersion term (CHGNet, most universal potentials), the
energy between the layers is also the potential's weakest point (docs/log/accuracy.md, "Dispersion").
So the stacking of a layered product is no prediction, while its layer is: a product built of
graphene sheets stacked in no known way is graphite's kind of crystal, not "unknown".

The rule (general: it reads only the formula's known polymorphs):
- a product is layered when ASE's dimensionality analysis (Larsen, Pandey, Strange & Jacobsen,
  Phys. Rev. Materials 3, 034003 (2019): the bonded clusters at the best-scoring bond cutoff) finds it
  made of 2D components only;
- its layers are compared with those of the known layered polymorphs (same analysis) by
  StructureMatcher, each layer restacked the same way first (one layer per cell, AA, a gap set by its
  own in-plane density), so that only the layer is compared;
- if every layer of the product is a known polymorph's layer, the product is named after the
  polymorphs built of that layer: the ground state among them, else the lowest in energy above the
  hull, else the first listed. Stacking polytypes that share a layer (graphite and rhombohedral
  graphite, 2H and 3R MoS2, h-BN and r-BN) form one family, and a family's stacking is set late, by
  the weak forces between layers and by annealing, so its most stable member is named. The product
  keeps a flag (`stacking_variant`), and reports say how many of a polymorph's count are such variants.

Products that match a known polymorph outright keep that name: a 3R product stays 3R. 3D crystals are
never named this way, so stacking variants that experiments tell apart by their bonds (wurtzite and
zincblende, diamond and lonsdaleite) stay apart.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.geometry.dimensionality import isolate_components
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.matching.matcher import reduced_for_matching
from amorph.matching.polymorph import Polymorph

# The gap between restacked layers, in units of the in-plane spacing sqrt(area per atom): wide enough
# that no two layers bond (graphene: 3.2 A; MoS2: 3.4 A), the same for every layer so that layers, not
# gaps, are compared.
GAP = 2.0


def layers_of(structure: Structure) -> list[Structure] | None:
    """Each layer of a layered structure alone in a periodic cell (AA, a gap of GAP spacings), or None
    when the structure is not made of 2D components only."""
    try:
        components = isolate_components(AseAtomsAdaptor.get_atoms(structure))
    except (AssertionError, ValueError, np.linalg.LinAlgError):
        # ASE asserts on bases it cannot build; an odd relaxed product is then "not layered", and one
        # product must not stop the naming of all the others
        return None
    if set(components) != {"2D"}:
        return None
    return [_restacked(layer) for layer in components["2D"]]


def _restacked(layer: Atoms) -> Structure:
    """One isolated layer (ASE puts it in the xy plane) in a right-handed cell whose third vector is
    normal to it. ASE's in-plane vectors may have a x b pointing down (-z); then the layer is turned
    over (z -> -z) rather than mirrored, so a layer and its mirror image stay different layers."""
    cell = np.array(layer.cell)
    up = 1.0 if np.cross(cell[0], cell[1])[2] > 0 else -1.0
    z = up * layer.positions[:, 2]
    spacing = np.sqrt(np.linalg.norm(np.cross(cell[0], cell[1])) / len(layer))
    cell[2] = [0.0, 0.0, up * (z.max() - z.min() + GAP * spacing)]
    positions = layer.positions.copy()
    positions[:, 2] = up * (z - z.min())
    return AseAtomsAdaptor.get_structure(Atoms(layer.numbers, positions=positions, cell=cell, pbc=True))


class LayerFamilies:
    """The known layered polymorphs' layers, found once per polymorph, and the family a product's layers
    belong to."""

    def __init__(self, matcher: StructureMatcher):
        self.matcher = matcher
        # id(polymorph) -> (the polymorph, kept alive so its id stays its own; its layers reduced for the matcher)
        self._layers: dict[int, tuple[Polymorph, list[Structure] | None]] = {}

    def _layers_of(self, polymorph: Polymorph) -> list[Structure] | None:
        key = id(polymorph)
        if key not in self._layers:
            self._layers[key] = (polymorph, self._reduced(layers_of(polymorph.structure)))
        return self._layers[key][1]

    def _reduced(self, layers: list[Structure] | None) -> list[Structure] | None:
        """Each layer reduced once for the matcher (matching.matcher.reduced_for_matching), not at every fit."""
        return None if layers is None else [reduced_for_matching(self.matcher, layer) for layer in layers]

    def named_by_layers(self, structure: Structure, candidates: list[Polymorph]) -> Polymorph | None:
        """The polymorph a product that matches none outright is named after by its layers, or None
        (not layered, or its layers are no known polymorph's)."""
        layered = [(p, layers) for p in candidates if (layers := self._layers_of(p))]
        if not layered:
            return None
        mine = self._reduced(layers_of(structure))
        if not mine:
            return None
        # every layer of the product is one of the polymorph's layers (each built-in layered polymorph
        # has one kind of layer; a product of two kinds joins only a polymorph built of both)
        fit = self.matcher.fit
        family = [
            (k, p)
            for k, (p, layers) in enumerate(layered)
            if all(any(fit(known, layer, skip_structure_reduction=True) for known in layers) for layer in mine)
        ]
        if not family:
            return None
        return min(family, key=lambda kp: (not kp[1].ground_state, _above_hull(kp[1]), kp[0]))[1]


def _above_hull(polymorph: Polymorph) -> float:
    return polymorph.energy_above_hull if polymorph.energy_above_hull is not None else float("inf")
