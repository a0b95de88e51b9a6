"""How many subcells to relax: the budget, and the two ways a run may depart from it in rounds.

- `--max-subcells auto` (relax_until_separated): relax the budget's subcells in rounds and stop
  early once the leading known polymorph is ahead of the runner-up by count at 95% confidence.
- `--more-if-inconclusive N` (relax_while_inconclusive): relax the whole budget, and while the
  answer of the run's rule is inconclusive (its bootstrap probability below
  amorph.matching.rules.CONCLUSIVE, or too little evidence: matching.rules.evidence_gaps), relax up to N reserve subcells more, in rounds, and stop
  as soon as the answer's own estimate of the subcells that would settle it (the number the report's
  "inconclusive" message gives) is more than what is left of the reserve can give.

Both name the products of each round as stage 5 will (matching.identify.Clusters), so the decision
reads the same labels the report will. The reserve only ever adds evidence after the budget: it never
stops a run early, which is what makes an energy rule's early stop wrong (docs/log/accuracy.md, "When to
stop sampling"). It is not used to search for a first known polymorph when none formed in the budget:
it decides between candidates the run has already found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import parse_formula
from amorph.matching.identify import Clusters, Identity, Product
from amorph.matching.polymorph import Polymorph
from amorph.matching.ranking import Outcome
from amorph.matching.rules import judged
from amorph.matching.statistics import separation
from amorph.matching.symmetry import SYMPREC_LADDER, find_symmetry
from amorph.progress import ProgressSink
from amorph.settings import MatchingSettings, PredictionRule

# --max-subcells auto: relax in about this many rounds, of at least this many subcells each
ADAPTIVE_ROUNDS, ADAPTIVE_MIN_ROUND = 20, 16
# --more-if-inconclusive: the reserve is relaxed in rounds of a quarter of the budget (at least
# ADAPTIVE_MIN_ROUND), so an answer that becomes conclusive early does not pay for the whole reserve
RESERVE_ROUNDS_PER_BUDGET = 4

Relax = Callable[[list[Atoms]], list[Atoms]]


@dataclass
class NamedProducts:
    """The valid products of stage 4, named as stage 5 names them: stage 5 of the same process takes
    them instead of naming them again (a few seconds to ~15 s on a CPU for a quick run's 120).

    After every round all products so far are named afresh, in one pass, as stage 5 would name them:
    Clusters.add places products lowest energy first, so a later round's lower-energy product would
    otherwise join a cluster led by an earlier one instead of leading it, and the names (and P) would
    differ from a resumed run's."""

    references: list[Polymorph]
    tolerances: MatchingSettings = field(default_factory=MatchingSettings)
    products: dict[int, Product] = field(default_factory=dict)  # subcell_id -> structure, energy, space group
    clusters: Clusters | None = None

    def add(self, relaxed: list[Atoms]) -> None:
        self.products |= {p.subcell_id: p for p in (product_of(f, self.tolerances.symprec) for f in relaxed if f.info["valid"])}
        self.clusters = Clusters(self.references, self.tolerances)
        self.clusters.add(list(self.products.values()))

    def identities(self) -> dict[int, Identity]:
        return self.clusters.identities() if self.clusters is not None else {}


def product_of(atoms: Atoms, symprec: tuple[float, ...] = SYMPREC_LADDER) -> Product:
    """A valid relaxed subcell as matching.identify takes it (structure, energy per atom, space group)."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    return Product(atoms.info["subcell_id"], structure, atoms.info["final_energy"] / len(atoms), find_symmetry(structure, symprec))


def relax_until_separated(
    subcells: list[Atoms],
    relax: Relax,
    round_size: int,
    references: list[Polymorph],
    rng: np.random.Generator,
    progress: ProgressSink,
    tolerances: MatchingSettings | None = None,
) -> tuple[list[Atoms], dict[str, Any]]:
    """--max-subcells auto: relax the subcells in rounds (in their sampled order) and stop once the
    leading known polymorph is ahead of the runner-up at 95% confidence (after two rounds at least),
    or when the subcells run out. Returns the judged relaxed subcells and sampling.json's content."""
    relaxed: list[Atoms] = []
    rounds = []
    tolerances = tolerances or MatchingSettings()
    clusters = Clusters(references, tolerances)  # grows round by round: only new products are compared
    known = {p.name for p in references}
    for start in range(0, len(subcells), round_size):
        judged = relax(subcells[start : start + round_size])
        relaxed += judged
        clusters.add([product_of(f, tolerances.symprec) for f in judged if f.info["valid"]])
        names = clusters.known_names()
        valid = [f for f in relaxed if f.info["valid"]]
        sep = separation([names[f.info["subcell_id"]] or "unknown" for f in valid], known, [f.info["replica"] for f in valid], rng)
        rounds.append({"relaxed": len(relaxed), "valid": len(valid)} | asdict(sep) | {"separated": sep.separated})
        if sep.separated and len(relaxed) >= 2 * round_size:
            progress.note(
                f"stopping after {len(relaxed)} subcells: {sep.leader} leads {sep.runner_up or 'every other known polymorph'} "
                f"by {100 * sep.difference:.0f}% (95% interval {100 * sep.low:.0f} to {100 * sep.high:.0f}%)"
            )
            break
    stopped = "separated" if rounds and rounds[-1]["separated"] and len(relaxed) < len(subcells) else "budget"
    sampling = {"mode": "auto", "budget": len(subcells), "relaxed": len(relaxed), "stopped": stopped, "rounds": rounds}
    return relaxed, sampling


def answer_so_far(
    named: NamedProducts, relaxed: list[Atoms], rule: PredictionRule, rng: np.random.Generator
) -> tuple[str | None, float, bool, int | None]:
    """The polymorph the rule names from the subcells relaxed so far, its bootstrap probability,
    whether it is conclusive (P and evidence) and about how many more valid subcells would make it
    conclusive (None when it is, or there is no estimate), all as stage 6 computes them
    (matching.rules.judged: the estimate is the report's message's own); (None, 0.0, False, None)
    when it names none."""
    identities = named.identities()
    valid = [f for f in relaxed if f.info["valid"]]
    outcomes = [
        Outcome(f.info["subcell_id"], identities[f.info["subcell_id"]], f.info["final_energy"] / len(f),
                parse_formula(f.get_chemical_formula()).reduced, f.info["replica"])
        for f in valid
    ]
    n_replicas = len({f.info["replica"] for f in relaxed})
    chosen, probability, conclusive, needed = judged(outcomes, [f.info["replica"] for f in valid], rule, rng, n_replicas)
    return (chosen.name if chosen is not None else None), probability, conclusive, needed


def valid_from(reserve_left: int, relaxed: list[Atoms]) -> Fraction:
    """The valid subcells the rest of the reserve can be expected to give, at the run's valid
    fraction so far (stage 4's judgement: no fused atoms, no blown-up cell); exact, so a tie with
    the subcells needed is a tie."""
    return Fraction(reserve_left * sum(bool(f.info["valid"]) for f in relaxed), max(1, len(relaxed)))


def cannot_settle(needed: int | None, reserve_left: int, relaxed: list[Atoms]) -> bool:
    """Whether the rest of the reserve cannot be expected to settle the answer: the valid subcells it
    would need (at the shares seen so far) are more than the valid ones the subcells left would give
    (valid_from; a tie is no stop). No estimate (None) is no reason to stop."""
    return needed is not None and needed > valid_from(reserve_left, relaxed)


def relax_while_inconclusive(
    budget: list[Atoms],
    reserve: list[Atoms],
    relax: Relax,
    references: list[Polymorph],
    rule: PredictionRule,
    rng: Callable[[], np.random.Generator],
    progress: ProgressSink,
    tolerances: MatchingSettings | None = None,
) -> tuple[list[Atoms], dict[str, Any], NamedProducts]:
    """--more-if-inconclusive: relax the budget; then, while the rule's answer is inconclusive, the
    reserve in rounds (in its random order) until the answer is conclusive, the reserve is spent, or
    the answer's estimate of the valid subcells that would settle it (at the shares seen so far) is
    more than the rest of the reserve can give (cannot_settle): a leader seen once in 150 is not
    expected to recur in the 90 left, and relaxing them costs most of a stage for nothing.
    `rng` gives a fresh generator per judgement (stage 6's stream), so the last judgement is the
    report's own. Returns the judged relaxed subcells, sampling.json's content and the named products."""
    relaxed = relax(budget)
    named = NamedProducts(references, tolerances or MatchingSettings())
    named.add(relaxed)
    leader, probability, conclusive, needed = answer_so_far(named, relaxed, rule, rng())
    rounds = [{"relaxed": len(relaxed), "leader": leader, "probability": probability, "more_valid_needed": needed}]
    round_size = max(ADAPTIVE_MIN_ROUND, -(-len(budget) // RESERVE_ROUNDS_PER_BUDGET))
    start = 0
    futile = False
    if leader is not None and not conclusive and reserve:
        if cannot_settle(needed, len(reserve), relaxed):
            futile = True
            progress.note(
                f"after {len(relaxed)} subcells the answer is inconclusive ({leader}, P {probability:.2f}), "
                f"but about {needed} more valid subcells would settle it, and the reserve of {len(reserve)} can be expected "
                f"to give {float(valid_from(len(reserve), relaxed)):.0f}: leaving it alone"
            )
        else:
            progress.note(
                f"after {len(relaxed)} subcells the answer is inconclusive ({leader}, P {probability:.2f}): "
                f"relaxing up to {len(reserve)} more, {round_size} at a time, until it is conclusive"
            )
        while not futile and start < len(reserve) and leader is not None and not conclusive:
            batch = reserve[start : start + round_size]
            progress.finish()
            progress.start(f"Relaxing {len(batch)} more subcells ({leader} at P {probability:.2f})", len(batch))
            done = relax(batch)
            start += len(done)
            relaxed += done
            named.add(done)
            leader, probability, conclusive, needed = answer_so_far(named, relaxed, rule, rng())
            rounds.append({"relaxed": len(relaxed), "leader": leader, "probability": probability, "more_valid_needed": needed})
            futile = (leader is not None and not conclusive and start < len(reserve)
                      and cannot_settle(needed, len(reserve) - start, relaxed))
        if start:
            verdict = "conclusive" if leader is not None and conclusive else "still inconclusive"
            left = len(reserve) - start
            why = (f"; about {needed} more valid subcells would settle it, and the {left} left can be expected to give "
                   f"{float(valid_from(left, relaxed)):.0f}" if futile else "")
            progress.note(f"after {len(relaxed)} subcells: {leader}, P {probability:.2f} ({verdict}){why}")
    if futile:
        stopped = "reserve cannot settle it"
    elif start == 0:
        stopped = "nothing named" if leader is None else "conclusive within the budget" if conclusive else "no reserve"
    else:
        stopped = "conclusive" if leader is not None and conclusive else "reserve spent"
    sampling = {
        "mode": "fixed",
        "budget": len(budget),
        "reserve": len(reserve),
        "relaxed": len(relaxed),
        "stopped": stopped,
        "rounds": rounds,
    }
    return relaxed, sampling, named
