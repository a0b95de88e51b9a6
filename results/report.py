"""report.json: a finished run's answer, counts and provenance in one file.

Built here from what stage 6 computed, so the pipeline only orchestrates and the report's layout is
in one place.
"""

from __future__ import annotations

from typing import Any

from amorph.matching.ranking import PolymorphTally, lowest_energy_product, predicted_polymorph


def prediction_of(rows: list[PolymorphTally], formula: str) -> dict[str, Any]:
    """The polymorph that nucleates first (the most frequent known one), or why there is none."""
    winner = predicted_polymorph(rows)
    if winner is None:
        return {"polymorph": None, "message": f"no relaxed subcell matched a known polymorph of {formula}"}
    return {
        "polymorph": winner.name,
        "spacegroup_symbol": winner.spacegroup_symbol,
        "spacegroup_number": winner.spacegroup_number,
        "count": winner.count,
        "share": winner.share,
        "share_ci95": [winner.share_ci_low, winner.share_ci_high],
    }


def lowest_energy_of(rows: list[PolymorphTally]) -> dict[str, Any] | None:
    """The product of lowest energy per atom, known or not (the a2c reference code's pick)."""
    lowest = lowest_energy_product(rows)
    if lowest is None:
        return None
    return {
        "name": lowest.name,
        "known": lowest.known,
        "spacegroup_symbol": lowest.spacegroup_symbol,
        "spacegroup_number": lowest.spacegroup_number,
        "energy_per_atom": lowest.lowest_energy_per_atom,
        "subcell": lowest.lowest_energy_subcell,
    }


def build_report(
    *,
    formula: str,
    rows: list[PolymorphTally],
    n_subcells: int,
    n_valid: int,
    replicas: int,
    sampling: dict[str, Any],
    potential: str,
    preset: str,
    seed: int,
    reference_volume: dict[str, Any],
    sources: list[str],
    known_names: list[str],
    timings: dict[str, float],
) -> dict[str, Any]:
    """report.json's content (keys in the order a reader meets them)."""
    return {
        "formula": formula,
        "prediction": prediction_of(rows, formula),
        "lowest_energy_product": lowest_energy_of(rows),
        "polymorphs": [r.to_dict() for r in rows],
        "n_subcells": n_subcells,
        "n_valid": n_valid,
        "replicas": replicas,
        "sampling": sampling,
        "potential": potential,
        "preset": preset,
        "seed": seed,
        "reference_volume": reference_volume,
        "known_polymorphs": {"sources": sources, "names": known_names},
        "timings": dict(timings),
    }
