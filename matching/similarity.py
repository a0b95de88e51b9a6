"""How close the amorphous solid already is to each known polymorph, and the rules that read it.

The Ostwald / Stranski-Totomanow argument: the polymorph whose structure, density and coordination are
closest to the amorphous solid's nucleates first, because its interface with the amorphous matrix
costs least. It needs no subcell to have formed the polymorph, so it is a second, independent signal
beside the subcell relaxations (matching.rules).

Each known polymorph, relaxed under the run's potential, is compared with each replica's amorphous
cell (its inherent structure: relaxed, so that thermal broadening at 300 K and the imposed packing
density do not count as differences from a 0 K crystal). Five similarities, each from 0 (nothing in
common) to 1 (the same), on the descriptors of matching.local_structure:

- density: the smaller volume per atom over the larger;
- rdf: 1 - sum |g_a - g_c| / sum (g_a + g_c) over the partial RDFs, pairs weighted by c_a c_b;
- coordination: the overlap of the coordination-number histograms, pairs weighted by c_a c_b;
- angles: the overlap of the bond-angle densities, elements weighted by concentration;
- soap: 1 - d / sqrt(2), d = sqrt(2 - 2 k) the SOAP distance of the element-averaged spectra (De et
  al. 2016), weighted by concentration.

The similarity is their plain mean: equal weights, chosen before any benchmark row was scored, so
there is nothing to fit and nothing to leave out. Its uncertainty is the standard error over the
replicas, and a rule's P is the share of replica bootstrap resamples on which it names the same.

The amorphous limit (Aykol et al., Sci. Adv. 4, eaaq0148, 2018): a polymorph whose energy per atom
lies above the relaxed amorphous solid's cannot crystallize from it. Such a polymorph is marked
unreachable and no similarity rule names it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from amorph.matching.local_structure import ANGLE_STEP, LocalStructure

COMPONENTS = ("density", "rdf", "coordination", "angles", "soap")
SimilarityRule = Literal["most-similar", "similar-among-formed"]
SIMILARITY_RULES: tuple[SimilarityRule, ...] = ("most-similar", "similar-among-formed")


def _pair_weight(pair: str, conc: Mapping[str, float]) -> float:
    a, b = pair.split("-")
    return conc.get(a, 0.0) * conc.get(b, 0.0)


def components(amorphous: LocalStructure, crystal: LocalStructure) -> dict[str, float]:
    """The five similarities of a crystal to an amorphous cell (module docstring), each in [0, 1]."""
    conc = amorphous.concentrations
    pairs = [p for p in amorphous.rdf if p in crystal.rdf]
    weights = np.array([_pair_weight(p, conc) for p in pairs])
    weights = weights / weights.sum()
    rdf = sum(w * (1 - np.abs(amorphous.rdf[p] - crystal.rdf[p]).sum() / max((amorphous.rdf[p] + crystal.rdf[p]).sum(), 1e-12))
              for w, p in zip(weights, pairs))
    coordination = sum(w * np.minimum(amorphous.coordination[p], crystal.coordination[p]).sum() for w, p in zip(weights, pairs))
    elements = [e for e in amorphous.angles if e in crystal.angles]
    angles = sum(conc[e] * np.minimum(amorphous.angles[e], crystal.angles[e]).sum() * ANGLE_STEP for e in elements)
    soap = sum(conc[e] * (1 - np.sqrt(max(2 - 2 * float(amorphous.soap[e] @ crystal.soap[e]), 0.0)) / np.sqrt(2))
               for e in elements)
    density = min(amorphous.volume_per_atom, crystal.volume_per_atom) / max(amorphous.volume_per_atom, crystal.volume_per_atom)
    return {"density": float(density), "rdf": float(rdf), "coordination": float(coordination),
            "angles": float(angles), "soap": float(soap)}


def similarity(parts: Mapping[str, float]) -> float:
    """One number from the five: their mean (equal weights, module docstring)."""
    return float(np.mean([parts[c] for c in COMPONENTS]))


@dataclass
class PolymorphSimilarity:
    """One known polymorph against the amorphous solid, over the replicas."""

    name: str
    per_replica: list[float]  # similarity to each replica's amorphous cell
    components: dict[str, float]  # each component's mean over the replicas
    energy_per_atom: float  # relaxed under the run's potential
    energy_above_amorphous: float  # eV/atom, against the mean relaxed amorphous energy; > 0: unreachable
    reachable: bool

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_replica))

    @property
    def standard_error(self) -> float:
        n = len(self.per_replica)
        return float(np.std(self.per_replica, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def most_similar(table: Sequence[PolymorphSimilarity], scores: Mapping[str, float], allowed: set[str] | None = None) -> str | None:
    """The reachable polymorph of highest score, among `allowed` when given; None when there is none."""
    candidates = [p for p in table if p.reachable and (allowed is None or p.name in allowed)]
    return max(candidates, key=lambda p: (scores[p.name], -p.energy_per_atom)).name if candidates else None


def choose(rule: SimilarityRule, table: Sequence[PolymorphSimilarity], scores: Mapping[str, float], formed: set[str]) -> str | None:
    """`most-similar`: the reachable known polymorph closest to the amorphous solid, whether or not a subcell
    formed it (a hypothesis from structure). `similar-among-formed`: the closest among those the subcells
    formed (the subcells say what can crystallize, the structure says which comes first)."""
    return most_similar(table, scores, None if rule == "most-similar" else formed)


def bootstrap_choices(
    rule: SimilarityRule, table: Sequence[PolymorphSimilarity], formed_by_replica: Sequence[set[str]],
    rng: np.random.Generator, n_boot: int,
) -> dict[str, float]:
    """How often the rule names each polymorph when the replicas are resampled with replacement (their
    similarities averaged, their subcells' products pooled); most often first."""
    n = len(formed_by_replica)
    counts: dict[str, int] = {}
    matrix = np.array([p.per_replica for p in table])
    for _ in range(n_boot):
        pick = rng.integers(n, size=n) if n > 1 else np.zeros(1, dtype=int)
        scores = dict(zip((p.name for p in table), matrix[:, pick].mean(axis=1)))
        formed = set().union(*(formed_by_replica[int(k)] for k in pick))
        name = choose(rule, table, scores, formed)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return {name: c / n_boot for name, c in sorted(counts.items(), key=lambda kv: -kv[1])}


def similarity_table(
    amorphous: Sequence[LocalStructure], crystals: Mapping[str, LocalStructure], energies: Mapping[str, float],
    amorphous_energy: float,
) -> list[PolymorphSimilarity]:
    """Every polymorph against every replica's amorphous cell, closest first."""
    table = []
    for name, crystal in crystals.items():
        parts = [components(cell, crystal) for cell in amorphous]
        above = energies[name] - amorphous_energy
        table.append(PolymorphSimilarity(
            name=name,
            per_replica=[similarity(p) for p in parts],
            components={c: float(np.mean([p[c] for p in parts])) for c in COMPONENTS},
            energy_per_atom=energies[name],
            energy_above_amorphous=above,
            reachable=above < 0,
        ))
    return sorted(table, key=lambda p: -p.mean)


def to_dict(entry: PolymorphSimilarity) -> dict[str, Any]:
    """similarity.json's row for one polymorph."""
    return {
        "name": entry.name,
        "similarity": entry.mean,
        "similarity_se": entry.standard_error,
        "per_replica": entry.per_replica,
        "components": entry.components,
        "energy_per_atom": entry.energy_per_atom,
        "energy_above_amorphous_mev_per_atom": 1000 * entry.energy_above_amorphous,
        "reachable": entry.reachable,
    }


def from_dict(row: Mapping[str, Any]) -> PolymorphSimilarity:
    return PolymorphSimilarity(row["name"], list(row["per_replica"]), dict(row["components"]), row["energy_per_atom"],
                               row["energy_above_amorphous_mev_per_atom"] / 1000, row["reachable"])
