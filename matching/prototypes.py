"""Structure types from the AFLOW prototype library that pymatgen ships (Mehl et al. 2017, Part 1).

Two jobs:
* `prototype_candidates`: for a formula no source knows, decorate every prototype of the same
  stoichiometry (AB2 -> every AB2 prototype) with the formula's elements, so products can still be
  named ("rutile-type"). The caller relaxes them with its potential.
* `structure_type`: a label for a product that matched no known polymorph: the prototype it matches
  (species ignored), else an AFLOW-style label built from its stoichiometry, Pearson symbol and space group.

We loop over the library ourselves instead of calling pymatgen's PrototypeDatabaseMatcher because
filtering by stoichiometry and primitive-cell size first makes each lookup ~100x cheaper, which
matters when thousands of products are named.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from pymatgen.core import Composition, Element, Species, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from amorph.matching.matcher import make_matcher
from amorph.matching.polymorph import Polymorph
from amorph.matching.symmetry import find_symmetry

AFLOW_CITATION = "AFLOW Library of Crystallographic Prototypes, Part 1 (Mehl et al. 2017, Comput. Mater. Sci. 136, S1), as shipped with pymatgen"


@dataclass(frozen=True)
class Prototype:
    """One prototype of the library, reduced to its primitive cell."""

    label: str  # AFLOW label, e.g. "A2B_tP6_136_f_a"
    name: str  # mineral or Strukturbericht name ("rutile", "B1"), else the AFLOW label
    structure: Structure  # primitive cell, species as in the prototype compound
    anonymous_formula: str  # "AB2"
    spacegroup_number: int


def _type_name(tags: dict) -> str:
    mineral = str(tags.get("mineral") or "").strip()
    if mineral:
        mineral = re.sub(r"[^a-z0-9]+", "-", mineral.lower()).strip("-")
        return mineral
    sb = str(tags.get("strukturbericht") or "")
    if sb and sb != "None":
        return sb
    return str(tags["aflow"])


@functools.lru_cache(maxsize=1)
def library() -> tuple[Prototype, ...]:
    """Every prototype of the library, as primitive cells (parsed once)."""
    from pymatgen.analysis.prototypes._data import AFLOW_PROTOTYPE_LIBRARY

    out = []
    for entry in AFLOW_PROTOTYPE_LIBRARY:
        structure = entry["snl"].structure.get_primitive_structure()
        out.append(
            Prototype(
                label=str(entry["tags"]["aflow"]),
                name=_type_name(entry["tags"]),
                structure=structure,
                anonymous_formula=structure.composition.anonymized_formula,
                spacegroup_number=int(str(entry["tags"]["aflow"]).split("_")[2]),
            )
        )
    return tuple(out)


def _assignment(prototype: Structure, target: Composition) -> dict[str, str] | None:
    """Map the prototype's elements onto the target's: equal stoichiometric amounts, and within equal
    amounts by electronegativity (the prototype's most electronegative site takes the target's most
    electronegative element), so an oxide's O goes where the prototype's anion is."""
    proto = prototype.composition.reduced_composition
    target = target.reduced_composition
    if sorted(proto.values()) != sorted(target.values()):
        return None

    def key(comp: Composition, el: Element | Species) -> tuple[float, float]:
        return (comp[el], el.X if el.X == el.X else 0.0)  # X is NaN for noble gases

    p_sorted = sorted(proto.elements, key=lambda el: key(proto, el))
    t_sorted = sorted(target.elements, key=lambda el: key(target, el))
    return {p.symbol: t.symbol for p, t in zip(p_sorted, t_sorted)}


def prototype_candidates(formula: str, volume_per_atom: float, max_atoms: int) -> list[tuple[str, str, Structure]]:
    """(name, AFLOW label, structure) for every prototype of the formula's stoichiometry whose primitive cell
    has at most max_atoms atoms, decorated with the formula's elements at the given volume per atom.
    Names are "<type>-type", made unique with the AFLOW label where two prototypes share a name."""
    target = Composition(formula)
    anonymous = target.anonymized_formula
    found = []
    for proto in library():
        if proto.anonymous_formula != anonymous or len(proto.structure) > max_atoms:
            continue
        mapping = _assignment(proto.structure, target)
        if mapping is None:
            continue
        structure = proto.structure.copy()
        structure.replace_species(dict(mapping))  # type: ignore[arg-type]  # symbols are species to pymatgen
        structure.scale_lattice(volume_per_atom * len(structure))
        found.append((f"{proto.name}-type", proto.label, structure))
    counts: dict[str, int] = {}
    for name, _, _ in found:
        counts[name] = counts.get(name, 0) + 1
    return [((name if counts[name] == 1 else f"{name}-{label.lower()}"), label, s) for name, label, s in found]


def prototype_polymorphs(formula: str, volume_per_atom: float, max_atoms: int) -> list[Polymorph]:
    """The candidates of `prototype_candidates` as (unrelaxed) Polymorph entries of origin "prototypes"."""
    out = []
    for name, label, structure in prototype_candidates(formula, volume_per_atom, max_atoms):
        sym = find_symmetry(structure)
        out.append(
            Polymorph(
                formula=formula,
                name=name,
                mineral="",
                spacegroup_symbol=sym.symbol,
                spacegroup_number=sym.number,
                structure=structure,
                source=f"prototype {label}, {AFLOW_CITATION}",
                ground_state=False,
                note="Not a known polymorph of this formula: a structure type of its stoichiometry, unrelaxed.",
                origin="prototypes",
            )
        )
    return out


def aflow_style_label(structure: Structure, symprec: float = 0.1) -> str:
    """Stoichiometry_Pearson_spacegroup, e.g. "AB2_tP6_136": what AFLOW labels start with."""
    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    return f"{structure.composition.anonymized_formula}_{sga.get_pearson_symbol()}_{sga.get_space_group_number()}"


def structure_type(structure: Structure, spacegroup_number: int) -> str:
    """"<prototype>-type" when the structure matches a library prototype of its space group with species
    ignored, else its AFLOW-style label. Only prototypes of the same stoichiometry and space group are
    tried (the product's space group comes from the tolerance ladder), so naming stays cheap."""
    anonymous = structure.composition.anonymized_formula
    primitive = structure.get_primitive_structure()
    matcher = make_matcher()
    for proto in library():
        if proto.anonymous_formula != anonymous or proto.spacegroup_number != spacegroup_number:
            continue
        if matcher.fit_anonymous(proto.structure, primitive):
            return f"{proto.name}-type"
    try:
        return aflow_style_label(structure)
    except Exception:  # spglib can fail on degenerate cells; the stoichiometry is still a label
        return anonymous
