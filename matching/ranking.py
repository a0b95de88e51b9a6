"""Stage 6: count what emerged and name the polymorph that nucleates first (Ostwald's rule of stages)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from amorph.matching.identify import Identity


@dataclass(frozen=True)
class Outcome:
    """What one valid subcell became."""

    subcell_id: int
    identity: Identity
    energy_per_atom: float
    formula: str  # reduced formula of the product
    replica: int = 0  # which melt-quench replica's amorphous cell the subcell was cut from


@dataclass(frozen=True)
class PolymorphTally:
    """One row of polymorphs.csv."""

    name: str
    known: bool
    formula: str
    spacegroup_symbol: str
    spacegroup_number: int
    count: int
    share: float  # of valid subcells
    lowest_energy_per_atom: float
    median_energy_per_atom: float
    lowest_energy_subcell: int
    structure_type: str = ""  # unknown products: prototype or AFLOW-style label
    closest_known: str = ""  # unknown products: known polymorph with the nearest fingerprint
    fingerprint_distance: float = float("nan")
    share_ci_low: float = float("nan")  # 95% bootstrap interval of the share (matching.statistics)
    share_ci_high: float = float("nan")
    stacking_variants: int = 0  # of count: the polymorph's layers in another stacking (matching.layers)
    replicas: int = 1  # how many melt-quench replicas' cells gave at least one member
    # a known polymorph's lowest-energy member's own space group where it differs from the reference's
    # (amorph.results.prediction.own_spacegroup), e.g. "P-1 (2)"; products/<name>.cif is symmetrized to it
    own_spacegroup: str = ""

    def to_dict(self) -> dict:
        """JSON-ready: a missing number is null, not NaN (which strict JSON readers refuse)."""
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(self).items()}


def tally(outcomes: list[Outcome]) -> list[PolymorphTally]:
    """Rows sorted by count (then by lowest energy): known polymorphs and unknown products alike."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.identity.label].append(outcome)
    n_valid = len(outcomes)
    rows = []
    for name, members in groups.items():
        identity = members[0].identity
        energies = np.array([p.energy_per_atom for p in members])
        lowest = members[int(np.argmin(energies))]
        rows.append(
            PolymorphTally(
                name=name,
                known=identity.known,
                formula=lowest.formula,
                spacegroup_symbol=identity.spacegroup_symbol,
                spacegroup_number=identity.spacegroup_number,
                count=len(members),
                share=len(members) / n_valid,
                lowest_energy_per_atom=float(energies.min()),
                median_energy_per_atom=float(np.median(energies)),
                lowest_energy_subcell=lowest.subcell_id,
                structure_type=identity.structure_type,
                closest_known=identity.closest_known,
                fingerprint_distance=identity.closest_distance,
                stacking_variants=sum(o.identity.stacking_variant for o in members),
                replicas=len({o.replica for o in members}),
            )
        )
    return sorted(rows, key=tally_order)


def tally_order(row: PolymorphTally) -> tuple[int, float]:
    """Rows by count, most first; ties: the lower lowest energy first (most_frequent_known relies on it)."""
    return (-row.count, row.lowest_energy_per_atom)


def most_frequent_known(rows: list[PolymorphTally]) -> PolymorphTally | None:
    """The known polymorph that emerged most often (ties: the lower energy); None when none did."""
    known = [r for r in rows if r.known]
    return known[0] if known else None


def lowest_energy_product(rows: list[PolymorphTally]) -> PolymorphTally | None:
    """The product (known or not) with the lowest energy per atom."""
    return min(rows, key=lambda r: r.lowest_energy_per_atom) if rows else None
