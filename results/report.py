"""report.json: a finished run's answer, counts and provenance in one file.

Built here from what stage 6 computed, so the pipeline only orchestrates and the report's layout is
in one place.
"""

from __future__ import annotations

from typing import Any

from amorph.matching.ranking import PolymorphTally, lowest_energy_product
from amorph.matching.rules import RULES, chosen_by
from amorph.settings import PredictionRule


def named_by(rule: PredictionRule, rows: list[PolymorphTally], formula: str) -> dict[str, Any]:
    """What one rule names (amorph.matching.rules), with its count, share, interval and energy, or why
    it names nothing."""
    chosen = chosen_by(rule, rows)
    if chosen is None:
        message = f"no relaxed subcell matched a known polymorph of {formula}" if rows else f"no valid relaxed subcell of {formula}"
        return {"rule": rule, "polymorph": None, "message": message}
    return {
        "rule": rule,
        "polymorph": chosen.name,
        "known": chosen.known,
        "spacegroup_symbol": chosen.spacegroup_symbol,
        "spacegroup_number": chosen.spacegroup_number,
        "count": chosen.count,
        "share": chosen.share,
        "share_ci95": [chosen.share_ci_low, chosen.share_ci_high],
        "energy_per_atom": chosen.lowest_energy_per_atom,
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
    rule: PredictionRule,
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
    """report.json's content (keys in the order a reader meets them); `prediction` is what `rule` names."""
    return {
        "formula": formula,
        "prediction": named_by(rule, rows, formula),
        "predictions": {name: named_by(name, rows, formula) for name in RULES},
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
