"""Stage 6's question, answered by each rule: which product is the polymorph that nucleates first?

Every run reports every rule (report.json `predictions`), so which one agrees with experiment can be
measured (benchmarks/accuracy.py) instead of assumed:
- `most-frequent`: the known polymorph most subcells became (Ostwald's rule of stages: what forms most
  easily, not what is most stable); amorph's rule so far.
- `lowest-energy`: the product of lowest energy per atom, known or not: the rule of the a2c authors'
  reference code (jax-md `a2c_workflow.py`).
- `lowest-energy-known`: the known polymorph of lowest energy per atom among the products.
"""

from __future__ import annotations

from collections.abc import Callable

from amorph.matching.ranking import PolymorphTally, lowest_energy_product, predicted_polymorph
from amorph.settings import PredictionRule


def _lowest_energy_known(rows: list[PolymorphTally]) -> PolymorphTally | None:
    return lowest_energy_product([r for r in rows if r.known])


RULES: dict[PredictionRule, Callable[[list[PolymorphTally]], PolymorphTally | None]] = {
    "most-frequent": predicted_polymorph,
    "lowest-energy": lowest_energy_product,
    "lowest-energy-known": _lowest_energy_known,
}


def chosen_by(rule: PredictionRule, rows: list[PolymorphTally]) -> PolymorphTally | None:
    """The product a rule names (None when it names nothing: no product, or no known one)."""
    return RULES[rule](rows)
