"""Stage 6's question, answered by each rule: which product is the polymorph that nucleates first?

Every run reports every rule (report.json `predictions`), so which one agrees with experiment can be
measured (benchmarks/accuracy.py) instead of assumed:
- `most-frequent`: the known polymorph most subcells became (Ostwald's rule of stages: what forms most
  easily, not what is most stable).
- `lowest-energy`: the product of lowest energy per atom, known or not: the rule of the a2c authors'
  reference code (jax-md `a2c_workflow.py`), here with an energy resolution (below).
- `lowest-energy-known`: the known polymorph of lowest energy per atom among the products, likewise.

Energy resolution. Two products whose lowest energies lie within ENERGY_RESOLUTION of each other are a
tie: no universal potential orders polymorphs that finely (docs/method.md, "Energy resolution", has
the numbers), so the energy rules name, among the tied, the one that formed most often (then the lower
energy). The bootstrap draws each product's energy with a normal error of ENERGY_NOISE on every
resample, so a lead just past the resolution is not called sure.

Evidence. An answer is conclusive when the rule names it on CONCLUSIVE of the resamples and the
evidence is there (evidence_gaps): it formed in at least MIN_EVIDENCE subcells and, where the run
has several melt-quench replicas, in at least two of their cells; a known polymorph the run's
subcells could not become makes every answer inconclusive (the report names it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from statistics import NormalDist

import numpy as np

from amorph.matching.ranking import Outcome, PolymorphTally, most_frequent_known, tally, tally_order
from amorph.matching.statistics import N_BOOTSTRAP, resamples
from amorph.settings import PredictionRule

CONCLUSIVE = 0.8  # a rule's answer is conclusive when it names the same polymorph on this share of resamples
Z_80 = NormalDist().inv_cdf(CONCLUSIVE)  # one-sided standard normal quantile of CONCLUSIVE (0.84 for 0.8)
# eV/atom: lowest energies this close are a tie (docs/method.md, "Energy resolution")
ENERGY_RESOLUTION = 0.010
ENERGY_NOISE = ENERGY_RESOLUTION / 2  # eV/atom: the standard error drawn onto each energy per resample
# Subcells a conclusive answer must have formed in. A product seen c times in n subcells is missing
# from a repeat of the same size with probability about exp(-c) (Poisson): c >= 3 keeps that under 5%,
# so a repeat run would see it again. Not fitted to the benchmark.
MISSING_IN_REPEAT = 0.05
MIN_EVIDENCE = math.ceil(-math.log(MISSING_IN_REPEAT))  # 3


def lowest_energy_resolved(rows: list[PolymorphTally]) -> PolymorphTally | None:
    """The lowest-energy product, where products within ENERGY_RESOLUTION of it are a tie decided by
    count (then energy)."""
    if not rows:
        return None
    floor = min(r.lowest_energy_per_atom for r in rows)
    tied = [r for r in rows if r.lowest_energy_per_atom - floor <= ENERGY_RESOLUTION]
    return min(tied, key=tally_order)


def _lowest_energy_known(rows: list[PolymorphTally]) -> PolymorphTally | None:
    return lowest_energy_resolved([r for r in rows if r.known])


def tied_with(chosen: PolymorphTally, rows: list[PolymorphTally], known_only: bool) -> list[str]:
    """The other products within ENERGY_RESOLUTION of the chosen one (for the report's 'tied with')."""
    return [r.name for r in rows if r.name != chosen.name and (r.known or not known_only)
            and abs(r.lowest_energy_per_atom - chosen.lowest_energy_per_atom) <= ENERGY_RESOLUTION]


RULES: dict[PredictionRule, Callable[[list[PolymorphTally]], PolymorphTally | None]] = {
    "most-frequent": most_frequent_known,
    "lowest-energy": lowest_energy_resolved,
    "lowest-energy-known": _lowest_energy_known,
}
ENERGY_RULES: frozenset[PredictionRule] = frozenset({"lowest-energy", "lowest-energy-known"})


def evidence_gaps(
    chosen: PolymorphTally, n_replicas: int, could_not_form: Sequence[str] = (), unformed_below: Mapping[str, float] | None = None
) -> list[str]:
    """Why an answer cannot be conclusive whatever its P, in words; [] when the evidence is there.
    could_not_form: known polymorphs the run's subcells could not become (report.out_of_reach).
    unformed_below: for an energy rule, the known polymorphs that fit the subcells and formed in none,
    by their energy per atom relaxed under the run's potential: one lower than the answer by more than
    ENERGY_RESOLUTION would have been named had the sampling reached it, so the answer rests on what
    the subcells happened not to make."""
    gaps = []
    if chosen.count < MIN_EVIDENCE:
        gaps.append(f"{chosen.name} formed in {chosen.count} subcell{'s' if chosen.count != 1 else ''}, "
                    f"fewer than {MIN_EVIDENCE}")
    if n_replicas > 1 and chosen.replicas < 2:
        gaps.append(f"{chosen.name} formed in one of {n_replicas} replicas' cells only")
    if could_not_form:
        gaps.append(f"{', '.join(could_not_form)} could not form in this run's subcells")
    for name, energy in sorted((unformed_below or {}).items(), key=lambda item: item[1]):
        lead = chosen.lowest_energy_per_atom - energy
        if lead > ENERGY_RESOLUTION:
            gaps.append(f"{name} fits the subcells but formed in none, and lies {1000 * lead:.0f} meV/atom below "
                        f"{chosen.name} under this potential")
    return gaps


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
        lowest += rng.normal(0.0, ENERGY_NOISE, len(names))  # the energies' own uncertainty
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
    outcomes: Sequence[Outcome], replicas: Sequence[int], rule: PredictionRule, rng: np.random.Generator, n_replicas: int = 1
) -> tuple[PolymorphTally | None, float, bool, int | None]:
    """What the rule names on these outcomes, the share of resamples naming it, whether that is
    conclusive (P and evidence_gaps, for a run of n_replicas), and about how many more valid subcells
    would settle it (more_to_settle); (None, 0.0, False, None) when it names nothing.
    One rule's part of report.json's predictions, for judging a run part-way."""
    rows = tally(list(outcomes)) if outcomes else []
    named = chosen_by(rule, rows)
    if named is None:
        return None, 0.0, False, None
    probabilities = rule_probabilities(outcomes, replicas, rng)[rule]
    probability = probabilities.get(named.name, 0.0)
    conclusive = probability >= CONCLUSIVE and not evidence_gaps(named, n_replicas)
    return named, probability, conclusive, more_to_settle(rule, named, rows, probabilities)


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
    n_valid = sum(r.count for r in rows)
    if chosen.count < MIN_EVIDENCE:  # too few members, whatever the rule: seen MIN_EVIDENCE times at its share
        return more_subcells_to_recur(chosen, n_valid)
    if probabilities.get(chosen.name, 0.0) >= CONCLUSIVE:
        return None
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
    """About how many more valid subcells an answer seen in too few subcells needs: it must be seen
    MIN_EVIDENCE times, which at its present share takes n_valid x MIN_EVIDENCE / c subcells in all.
    None when it is seen that often already (then the replicas or the energies disagree, and more
    replicas would help)."""
    if leader.count >= MIN_EVIDENCE or leader.count <= 0:
        return None
    return math.ceil(n_valid * MIN_EVIDENCE / leader.count) - n_valid


def more_valid_subcells(rule: PredictionRule, chosen: PolymorphTally, runner_up: PolymorphTally | None, n_valid: int) -> int | None:
    """About how many more valid subcells would make the rule's inconclusive answer conclusive, at the
    shares seen so far (None: no estimate): the count rule's lead, or the energy rule's recurrence."""
    if rule == "most-frequent":
        return more_subcells_needed(chosen, runner_up, n_valid)
    return more_subcells_to_recur(chosen, n_valid)
