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

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from statistics import NormalDist

import numpy as np

from amorph.matching.ranking import Outcome, PolymorphTally, lowest_energy_product, predicted_polymorph, tally, tally_order
from amorph.matching.statistics import N_BOOTSTRAP, resamples
from amorph.settings import PredictionRule

CONCLUSIVE = 0.8  # a rule's answer is conclusive when it names the same polymorph on this share of resamples
Z_80 = NormalDist().inv_cdf(CONCLUSIVE)  # one-sided standard normal quantile of CONCLUSIVE (0.84 for 0.8)
RECUR = math.ceil(-math.log(1 - CONCLUSIVE))  # members a product needs to be in most resamples (2 for 0.8)


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


def rule_probabilities(
    outcomes: Sequence[Outcome], replicas: Sequence[int], rng: np.random.Generator, n_boot: int = N_BOOTSTRAP
) -> dict[PredictionRule, dict[str, float]]:
    """For each rule, how often it names each product on hierarchical bootstrap resamples of the valid
    subcells (replicas, then subcells within them: matching.statistics), the rule applied exactly as
    to the run itself. The named product's own probability is how sure the answer is.
    """
    out: dict[PredictionRule, dict[str, float]] = {rule: {} for rule in RULES}
    if not outcomes:
        return out
    # names, known flags, space groups; a resample's rows take count, share and lowest energy of their own
    # (stacking_variants and the medians stay the whole run's: no rule reads them)
    template = {row.name: row for row in tally(list(outcomes))}
    names = sorted(template)
    code_of = {name: k for k, name in enumerate(names)}
    codes = np.array([code_of[o.identity.label] for o in outcomes])
    energies = np.array([o.energy_per_atom for o in outcomes])
    for idx in resamples(replicas, rng, n_boot):
        counts = np.bincount(codes[idx], minlength=len(names))
        lowest = np.full(len(names), np.inf)
        np.minimum.at(lowest, codes[idx], energies[idx])
        rows = sorted(
            (replace(template[names[k]], count=int(counts[k]), share=counts[k] / len(idx), lowest_energy_per_atom=float(lowest[k]))
             for k in np.flatnonzero(counts)),
            key=tally_order,
        )
        for rule, choose in RULES.items():
            chosen = choose(rows)
            if chosen is not None:
                out[rule][chosen.name] = out[rule].get(chosen.name, 0) + 1
    return {rule: {name: n / n_boot for name, n in sorted(found.items(), key=lambda kv: -kv[1])} for rule, found in out.items()}


def judged(
    outcomes: Sequence[Outcome], replicas: Sequence[int], rule: PredictionRule, rng: np.random.Generator
) -> tuple[PolymorphTally | None, float, int | None]:
    """What the rule names on these outcomes, the share of resamples naming it, and about how many
    more valid subcells would settle it (more_to_settle); (None, 0.0, None) when it names nothing.
    One rule's part of report.json's predictions, for judging a run part-way."""
    rows = tally(list(outcomes)) if outcomes else []
    named = chosen_by(rule, rows)
    if named is None:
        return None, 0.0, None
    probabilities = rule_probabilities(outcomes, replicas, rng)[rule]
    return named, probabilities.get(named.name, 0.0), more_to_settle(rule, named, rows, probabilities)


def runner_up(
    rule: PredictionRule, chosen: PolymorphTally, rows: list[PolymorphTally], probabilities: dict[str, float]
) -> PolymorphTally | None:
    """The runner-up to the rule's answer: what the rule names next most often on resamples
    (probabilities, most often first), else what it names without the chosen."""
    by_name = {r.name: r for r in rows}
    others = [name for name in probabilities if name != chosen.name and name in by_name]
    return by_name[others[0]] if others else chosen_by(rule, [r for r in rows if r.name != chosen.name])


def more_to_settle(
    rule: PredictionRule, chosen: PolymorphTally, rows: list[PolymorphTally], probabilities: dict[str, float]
) -> int | None:
    """About how many more valid subcells would make an inconclusive answer conclusive (None when it
    is conclusive, or there is no estimate). The report's message and the reserve's stop
    (amorph.sampling) both read this one number, so what a run says more sampling would need is what
    it acted on. rows must cover every valid subcell."""
    if probabilities.get(chosen.name, 0.0) >= CONCLUSIVE:
        return None
    n_valid = sum(r.count for r in rows)
    return more_valid_subcells(rule, chosen, runner_up(rule, chosen, rows, probabilities), n_valid)


def more_subcells_needed(leader: PolymorphTally, runner_up: PolymorphTally | None, n_valid: int) -> int | None:
    """About how many more valid subcells would make the leader's lead in counts conclusive: the lead
    d = share(A) - share(B) over its standard error sqrt((pA + pB - d^2) / n) must reach Z_80 (the
    normal approximation of the bootstrap). None when the shares are tied, or when the lead is that
    large already: then the doubt is the replicas' (the approximation counts subcells, not which
    precursor they came from), and more subcells are no estimate."""
    p_b = runner_up.share if runner_up is not None else 0.0
    lead = leader.share - p_b
    if lead <= 0:
        return None
    needed = math.ceil(Z_80**2 * (leader.share + p_b - lead**2) / lead**2 - n_valid)
    return needed if needed > 0 else None


def more_subcells_to_recur(leader: PolymorphTally, n_valid: int) -> int | None:
    """About how many more valid subcells an energy rule's answer needs: the lowest-energy product is
    named on a resample when one of its c members is drawn, about 1 - exp(-c) of the time (Poisson), so
    it must be seen RECUR times; at its present share that takes n_valid x RECUR / c subcells in all.
    None when it is seen that often already (then the replicas disagree, and more of them would help)."""
    if leader.count >= RECUR or leader.count <= 0:
        return None
    return math.ceil(n_valid * RECUR / leader.count) - n_valid


def more_valid_subcells(rule: PredictionRule, chosen: PolymorphTally, runner_up: PolymorphTally | None, n_valid: int) -> int | None:
    """About how many more valid subcells would make the rule's inconclusive answer conclusive, at the
    shares seen so far (None: no estimate): the count rule's lead, or the energy rule's recurrence."""
    if rule == "most-frequent":
        return more_subcells_needed(chosen, runner_up, n_valid)
    return more_subcells_to_recur(chosen, n_valid)
