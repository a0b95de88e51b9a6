"""report.json: a finished run's answer, counts and provenance in one file.

Built here from what stage 6 computed, so the pipeline only orchestrates and the report's layout is
in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amorph.matching.ranking import PolymorphTally, lowest_energy_product
from amorph.matching.rules import (
    CONCLUSIVE,
    ENERGY_RESOLUTION,
    ENERGY_RULES,
    MIN_EVIDENCE,
    RULES,
    chosen_by,
    evidence_gaps,
    more_to_settle,
    runner_up,
    tied_with,
)
from amorph.matching.similarity import SIMILARITY_RULES, bootstrap_choices, choose, from_dict
from amorph.matching.statistics import N_BOOTSTRAP
from amorph.settings import DEFAULT_RULE, PredictionRule

if TYPE_CHECKING:
    import numpy as np

    from amorph.matching.polymorph import Polymorph
    from amorph.matching.ranking import Outcome

REPORTED_RULES: tuple[str, ...] = (*RULES, *SIMILARITY_RULES)  # every rule report.json's predictions holds

def named_by(
    rule: PredictionRule,
    rows: list[PolymorphTally],
    formula: str,
    probabilities: dict[str, float] | None = None,
    seconds_per_subcell: float | None = None,
    n_replicas: int = 1,
    could_not_form: Sequence[str] = (),
    unformed: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """What one rule names (amorph.matching.rules), with its count, share, interval and energy, how often
    it names the same on bootstrap resamples (`probability`; conclusive from CONCLUSIVE up), and its lead
    over the runner-up; or why it names nothing."""
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
        "stacking_variants": chosen.stacking_variants,  # of count: its layers in another stacking (matching.layers)
        "replicas": chosen.replicas,  # how many replicas' cells it formed in
        # energy rules: the products within the energy resolution, a tie the count decided
        "tied_with": tied_with(chosen, rows, known_only=rule == "lowest-energy-known") if rule in ENERGY_RULES else [],
    } | _confidence(rule, chosen, rows, probabilities or {}, seconds_per_subcell,
                    evidence_gaps(chosen, n_replicas, could_not_form, unformed if rule in ENERGY_RULES else None))


def _confidence(
    rule: PredictionRule, chosen: PolymorphTally, rows: list[PolymorphTally], probabilities: dict[str, float], seconds: float | None,
    gaps: list[str],
) -> dict[str, Any]:
    """probability, conclusive (P at least CONCLUSIVE and no evidence gap), the runner-up and the lead over
    it; for an inconclusive answer, a message that says why and what would settle it."""
    if not probabilities:
        return {}
    probability = probabilities.get(chosen.name, 0.0)
    runner = runner_up(rule, chosen, rows, probabilities)
    out: dict[str, Any] = {"probability": probability, "conclusive": probability >= CONCLUSIVE and not gaps, "evidence_gaps": gaps}
    if runner is not None:
        out["runner_up"] = {
            "polymorph": runner.name,
            "probability": probabilities.get(runner.name, 0.0),
            "share_lead": chosen.share - runner.share,
            "energy_lead_mev_per_atom": 1000 * (runner.lowest_energy_per_atom - chosen.lowest_energy_per_atom),
        }
    if not out["conclusive"]:
        text = f"inconclusive between {chosen.name} and {runner.name}" if runner else f"inconclusive: {chosen.name}"
        if gaps:
            text += f" ({'; '.join(gaps)})"
        extra = more_to_settle(rule, chosen, rows, probabilities)  # rows cover every valid subcell
        if extra is not None:
            cost = f", about {seconds * extra / 60:.0f} min at this run's pace" if seconds else ""
            text += f"; about {extra} more valid subcells would settle it{cost}"
        out["message"] = text
    return out


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


def not_formed(known_names: list[str], rows: list[PolymorphTally], out_of_reach: dict[str, str]) -> list[dict[str, Any]]:
    """The known polymorphs no valid subcell became, each with why none could or was likely to
    (out_of_reach), or None.

    Why they are reported: P is a bootstrap over the products that formed, so a polymorph that formed
    in no subcell leads no resample, and "P 1.00" says nothing about it. An energy rule's answer would
    change the first time a lower-energy one formed; `amorph compare RUN` gives their energies."""
    formed = {r.name for r in rows if r.known and r.count > 0}
    return [{"name": name, "out_of_reach": out_of_reach.get(name)} for name in known_names if name not in formed]


@dataclass(frozen=True)
class RunFacts:
    """What the run was: its formula, the rule report.json's `prediction` follows, and its provenance."""

    formula: str
    rule: PredictionRule
    preset: str
    seed: int
    potential: str  # the model used (config.json's potential.used)
    replicas: int
    sources: list[str]
    reference_volume: dict[str, Any]
    timings: dict[str, float]
    seconds_per_subcell: float | None = None


@dataclass(frozen=True)
class ProductCounts:
    """What the subcells became: one row per product, each rule's bootstrap shares, and the counts.
    unseen: the Good-Turing chance that the next subcell becomes a product not seen yet."""

    rows: list[PolymorphTally]
    probabilities: dict[PredictionRule, dict[str, float]]
    n_subcells: int
    n_valid: int
    invalid: dict[str, int]  # invalid subcells by reason
    sampling: dict[str, Any]
    unseen: float | None = None


@dataclass(frozen=True)
class KnownReach:
    """The known polymorphs and what the run's subcells could reach of them (amorph.reach).
    could_not_form: the database's polymorphs no subcell could become (every answer inconclusive);
    unformed: energies per atom, under the run's potential, of those that fit and formed in none."""

    names: list[str]
    out_of_reach: dict[str, str]
    could_not_form: Sequence[str] = ()
    unformed: Mapping[str, float] | None = None


def build_report(run: RunFacts, products: ProductCounts, known: KnownReach,
                 melt_quench: dict[str, Any] | None = None, similarity: dict[str, Any] | None = None) -> dict[str, Any]:
    """report.json's content (keys in the order a reader meets them); `prediction` is what `run.rule` names.
    melt_quench: the temperatures each replica's stages reached; similarity: similarity.json's content."""
    rows = products.rows

    def named(name: PredictionRule) -> dict[str, Any]:
        return named_by(name, rows, run.formula, products.probabilities[name], run.seconds_per_subcell, run.replicas,
                        known.could_not_form, known.unformed)

    return {
        "formula": run.formula,
        "prediction": named(run.rule),
        "predictions": {name: named(name) for name in RULES},  # the similarity rules join them (similarity_predictions)
        "evidence": {  # what a conclusive answer needs (amorph.matching.rules)
            "energy_resolution_mev_per_atom": 1000 * ENERGY_RESOLUTION,
            "min_subcells": MIN_EVIDENCE,
            "min_replicas": min(2, run.replicas),
            "bootstrap_conclusive_at": CONCLUSIVE,
            "could_not_form": list(known.could_not_form),
            "unseen_product_chance": products.unseen,
            # eV/atom under the run's potential, relaxed: known polymorphs that fit and formed in no subcell
            "not_formed_energies": dict(known.unformed or {}),
        },
        "lowest_energy_product": lowest_energy_of(rows),
        "polymorphs": [r.to_dict() for r in rows],
        "n_subcells": products.n_subcells,
        "n_valid": products.n_valid,
        "invalid": dict(products.invalid),  # invalid subcells by reason (subcells.csv has each one's)
        "replicas": run.replicas,
        "sampling": products.sampling,
        "potential": run.potential,
        "preset": run.preset,
        "seed": run.seed,
        "reference_volume": run.reference_volume,
        "melt_quench": melt_quench,  # the temperatures each replica's stages reached (amorph.melt_quench); None before they were kept
        "known_polymorphs": {"sources": run.sources, "names": known.names, "not_formed": not_formed(known.names, rows, known.out_of_reach)},
        # the amorphous solid against every known polymorph (matching.similarity); None before it was measured
        "similarity": similarity_section(similarity, {r.name: (r.count, r.share) for r in rows if r.known}) if similarity else None,
        "timings": dict(run.timings),
    }


def prediction_line(report: dict[str, Any]) -> str:
    """One sentence a scientist can paste into a notebook."""
    pred = report["prediction"]
    if pred.get("polymorph") is None:
        return f"{shown_formula(report)}: {pred['message']} ({report['n_valid']} valid of {report['n_subcells']} subcells)"
    rule = pred.get("rule", "most-frequent")
    how = "" if rule == DEFAULT_RULE else f" ({rule} rule)"
    variants = f", {pred['stacking_variants']} of them in another stacking" if pred.get("stacking_variants") else ""
    if pred.get("conclusive") is False:
        leads = f"{pred['polymorph']} leads, named on {100 * pred['probability']:.0f}% of resamples"
        return f"{shown_formula(report)}{how}: {pred['message']} ({leads}{variants})"
    unknown = "" if pred.get("known", True) else ", a structure no known polymorph matches"
    sure = f", named on {100 * pred['probability']:.0f}% of resamples" if "probability" in pred else ""
    return (
        f"{shown_formula(report)}: first to nucleate{how}: {pred['polymorph']}{unknown} ({pred['spacegroup_symbol']}, "
        f"#{pred['spacegroup_number']}), {pred['count']} of {report['n_valid']} valid subcells "
        f"({100 * pred['share']:.0f}%"
        + (f", 95% CI {100 * pred['share_ci95'][0]:.0f}-{100 * pred['share_ci95'][1]:.0f}%" if pred.get("share_ci95") else "")
        + sure
        + ")"
        + variants
    )


def melt_quench_text(report: dict[str, Any]) -> str:
    """'melt-quench (4 replicas, bussi, 5 fs): 2010 K, 730 K, 305 K against 2000, 725, 300 K; peak 2700 K'
    (second halves, averaged over replicas), then each stage off its target; '' for a run before it was kept."""
    mq = report.get("melt_quench")
    if not mq or not mq.get("stages"):
        return ""
    names = list(dict.fromkeys(s["stage"] for s in mq["stages"]))
    reached = [sum(s["mean"] for s in mq["stages"] if s["stage"] == n) / sum(s["stage"] == n for s in mq["stages"]) for n in names]
    target = [next(s["target"] for s in mq["stages"] if s["stage"] == n) for n in names]
    replicas = len({s["replica"] for s in mq["stages"]})
    text = (f"melt-quench ({replicas} replica{'s' if replicas > 1 else ''}, {mq['thermostat']}, time constant "
            f"{mq['time_constant_fs']:g} fs), second half of each stage: "
            + ", ".join(f"{r:.0f} K" for r in reached) + " against " + ", ".join(f"{t:.0f}" for t in target)
            + f" K; peak {max(s['peak'] for s in mq['stages']):.0f} K")
    warnings = mq.get("warnings", [])
    return text + ("; OFF SCHEDULE: " + "; ".join(warnings) if warnings else "; every stage within 10% of its target")


def not_formed_text(report: dict[str, Any]) -> str:
    """'formed in no subcell: anatase, columbite (P counts only what formed) · out of reach: brookite
    (...)', for under the rules; '' when every known polymorph formed."""
    missing = report.get("known_polymorphs", {}).get("not_formed", [])
    reachable = [m["name"] for m in missing if not m["out_of_reach"]]
    out = [f"{m['name']} ({m['out_of_reach']})" for m in missing if m["out_of_reach"]]
    parts = [f"formed in no subcell: {', '.join(reachable)} (P counts only what formed)"] if reachable else []
    if out:
        parts.append(f"out of reach: {'; '.join(out)}")
    return " · ".join(parts)


def stacking_note(row: dict[str, Any]) -> str:
    """' (3 of 5 in another stacking)' for a layered polymorph (a polymorphs row or a rule's pick) whose
    count holds its layers stacked in no known way (matching.layers); '' for any other."""
    variants = row.get("stacking_variants")
    return f" ({variants} of {row['count']} in another stacking)" if variants else ""


def shown_formula(report: dict[str, Any]) -> str:
    """The formula as the user wrote it (report.json's formula_display), else the reduced one."""
    return str(report.get("formula_display") or report["formula"])


def spacegroup_text(row: dict[str, Any]) -> str:
    """'Im-3m (229)', or 'Im-3m (229); relaxed: P-1 (2)' where the product's own symmetry (its lowest-energy
    member's, which products/<name>.cif holds) is lower than that of the reference it was matched to."""
    text = f"{row['spacegroup_symbol']} ({row['spacegroup_number']})"
    return text + (f"; relaxed: {row['own_spacegroup']}" if row.get("own_spacegroup") else "")


def unknown_description(row: dict[str, Any]) -> str:
    """'unknown-1 (TiO2, AB2_oP12_60; nearest brookite)': never just 'unknown'."""
    parts = [row["formula"]]
    if row.get("structure_type"):
        parts.append(row["structure_type"])
    text = f"{row['name']} ({', '.join(parts)}"
    if row.get("closest_known"):
        text += f"; nearest {row['closest_known']}, d={row['fingerprint_distance']:.2f}"
    return text + ")"


def share_of(named: dict[str, Any]) -> dict[str, Any]:
    """A prediction's share in the form share_text takes (its interval where it has one)."""
    low, high = named.get("share_ci95") or (None, None)
    return {"share": named["share"], "share_ci_low": low, "share_ci_high": high}


def similarity_lines(report: dict[str, Any]) -> list[list[str]]:
    """The similarity table's rows as text, closest first: polymorph (* ground state), similarity +- se,
    density, rdf, coordination, angles, soap, E - amorphous (meV/atom, 'unreachable' above it), subcells."""
    lines = []
    for p in (report.get("similarity") or {}).get("polymorphs", []):
        c = p["components"]
        lines.append([p["name"] + (" *" if p.get("ground_state") else ""), f"{p['similarity']:.3f}±{p['similarity_se']:.3f}",
                      *(f"{c[k]:.2f}" for k in ("density", "rdf", "coordination", "angles", "soap")),
                      f"{p['energy_above_amorphous_mev_per_atom']:+.0f}" + ("" if p["reachable"] else " unreachable"),
                      f"{p['count']} ({100 * p['share']:.0f}%)"])
    return lines


def structure_only_text(report: dict[str, Any]) -> str:
    """A similarity rule's answer that the subcells did not form (fewer than MIN_EVIDENCE), said in plain
    words: it is a hypothesis from structure, not an observed crystallization. '' when there is none."""
    lines = []
    for rule in SIMILARITY_RULES:
        named = report.get("predictions", {}).get(rule) or {}
        if named.get("polymorph") and named.get("basis") == "structure only":
            formed = f"formed in {named['count']} subcell{'s' if named['count'] != 1 else ''}" if named["count"] else "formed in no subcell"
            lines.append(f"{rule} names {named['polymorph']} on structure alone ({formed}): a hypothesis, not an observed crystallization")
    return "; ".join(lines)


SIMILARITY_HEADER = ["polymorph", "similarity", "density", "RDF", "coordination", "angles", "SOAP",
                     "E − amorphous (meV/atom)", "subcells"]


def amorphous_limit_text(report: dict[str, Any]) -> str:
    """'amorphous solid (relaxed, 4 replicas, 3 converged in 100 steps): -9.276 ± 0.009 eV/atom; ...' or ''."""
    sim = report.get("similarity")
    if not sim:
        return ""
    a = sim["amorphous"]
    n = len(a["replicas"])
    converged = sum(r["converged"] for r in a["replicas"])
    above = [p["name"] for p in sim["polymorphs"] if not p["reachable"]]
    return (f"amorphous solid, relaxed ({n} replica{'s' if n > 1 else ''}, {converged} converged within {a['relax_steps_cap']} steps): "
            f"{a['energy_per_atom']:.3f} ± {a['energy_per_atom_se']:.3f} eV/atom"
            + (f"; above it, so out of reach from this amorphous solid: {', '.join(above)}" if above else
               "; every known polymorph lies below it"))


def share_text(row: dict[str, Any]) -> str:
    """'66.7% [50-83]': a share with its 95% interval (share_ci_low/high), where it has one."""
    low, high = row.get("share_ci_low"), row.get("share_ci_high")
    text = f"{100 * row['share']:.1f}%"
    return text if low is None or high is None else f"{text} [{100 * low:.0f}-{100 * high:.0f}]"


def similarity_predictions(
    closeness: dict[str, Any], rows: list[PolymorphTally], outcomes: Sequence[Outcome], n_replicas: int,
    references: Sequence[Polymorph], rng: np.random.Generator, n_boot: int = N_BOOTSTRAP, subcell_answer: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """What each similarity rule (matching.similarity) names, as report.json's predictions hold it: P from
    replica bootstrap resamples; conclusive only when P is at least CONCLUSIVE, the run has two replicas
    or more (else the similarity has no uncertainty), the polymorph formed in MIN_EVIDENCE subcells of two
    replicas (a polymorph chosen on structure alone is a hypothesis, not an observed crystallization), and
    the run's own rule (`subcell_answer`, its report.json prediction) names the same polymorph conclusively.
    Why the last: P says the replicas agree, not that the gap in similarity means anything, and polytypes
    (fcc/hcp, zincblende/wurtzite) differ by 0.01-0.03 in every replica alike; on its own, P >= 0.8 was
    right on 8 of 18 conclusive benchmark answers (docs/log/accuracy.md). Two independent signals that agree
    are an answer; one alone is a lead."""
    table = [from_dict(p) for p in closeness["polymorphs"]]
    scores = {p.name: p.mean for p in table}
    by_name = {p.name: p for p in table}
    tallies = {r.name: r for r in rows if r.known}
    formed_by_replica = [{o.identity.label for o in outcomes if o.replica == k and o.identity.known} for k in range(n_replicas)]
    formed = set().union(*formed_by_replica) if formed_by_replica else set()
    known = {p.name: p for p in references}
    out: dict[str, dict[str, Any]] = {}
    for rule in SIMILARITY_RULES:
        name = choose(rule, table, scores, formed)
        if name is None:
            why = "no known polymorph lies below the amorphous solid's energy" if rule == "most-similar" else \
                "no subcell formed a known polymorph below the amorphous solid's energy"
            out[rule] = {"rule": rule, "polymorph": None, "message": why}
            continue
        probabilities = bootstrap_choices(rule, table, formed_by_replica, rng, n_boot)
        entry, tally_row = by_name[name], tallies.get(name)
        count = tally_row.count if tally_row else 0
        replicas_formed = tally_row.replicas if tally_row else 0
        gaps = similarity_gaps(name, count, replicas_formed, n_replicas, subcell_answer or {})
        probability = probabilities.get(name, 0.0)
        others = [n for n in probabilities if n != name]
        runner = others[0] if others else None
        polymorph = known.get(name)
        prediction: dict[str, Any] = {
            "rule": rule,
            "polymorph": name,
            "known": True,
            "spacegroup_symbol": polymorph.spacegroup_symbol if polymorph else None,
            "spacegroup_number": polymorph.spacegroup_number if polymorph else None,
            "count": count,
            "share": tally_row.share if tally_row else 0.0,
            **({"share_ci95": [tally_row.share_ci_low, tally_row.share_ci_high]} if tally_row else {}),
            "replicas": replicas_formed,
            "energy_per_atom": entry.energy_per_atom,  # the polymorph relaxed under the run's potential
            "similarity": entry.mean,
            "similarity_se": entry.standard_error,
            "energy_above_amorphous_mev_per_atom": 1000 * entry.energy_above_amorphous,
            "basis": "structure and subcells" if count >= MIN_EVIDENCE else "structure only",
            "probability": probability,
            "conclusive": probability >= CONCLUSIVE and not gaps,
            "evidence_gaps": gaps,
        }
        if runner is not None:
            prediction["runner_up"] = {"polymorph": runner, "probability": probabilities[runner],
                                       "similarity_lead": entry.mean - by_name[runner].mean}
        if not prediction["conclusive"]:
            text = f"inconclusive between {name} and {runner}" if runner else f"inconclusive: {name}"
            prediction["message"] = text + (f" ({'; '.join(gaps)})" if gaps else "")
        out[rule] = prediction
    return out


def similarity_gaps(name: str, count: int, replicas_formed: int, n_replicas: int, subcell_answer: Mapping[str, Any]) -> list[str]:
    """Why a similarity rule's answer cannot be conclusive, in words (similarity_predictions); [] when none."""
    gaps = []
    if count < MIN_EVIDENCE:
        gaps.append(f"{name} formed in {count} subcell{'s' if count != 1 else ''}: a hypothesis from structure, "
                    "not an observed crystallization")
    if n_replicas > 1 and count >= MIN_EVIDENCE and replicas_formed < 2:
        gaps.append(f"{name} formed in one of {n_replicas} replicas' cells only")
    if n_replicas < 2:
        gaps.append("one replica: the similarity has no uncertainty (use --replicas 2 or more)")
    rule = subcell_answer.get("rule", "rule")
    if subcell_answer.get("polymorph") != name:
        gaps.append(f"the subcells' {rule} names {subcell_answer.get('polymorph') or 'nothing'}")
    elif not subcell_answer.get("conclusive"):
        gaps.append(f"the subcells' {rule} names {name} too, inconclusively")
    return gaps


def similarity_section(closeness: dict[str, Any], formed: Mapping[str, tuple[int, float]]) -> dict[str, Any]:
    """report.json's `similarity`: the amorphous limit, then every known polymorph, closest first, with what
    the subcells said of it beside (`formed`: count and share by name)."""
    return {
        "amorphous": closeness["amorphous"],
        "polymorphs": [p | dict(zip(("count", "share"), formed.get(p["name"], (0, 0.0)))) for p in closeness["polymorphs"]],
        "settings": closeness["settings"],
    }


def similarity_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """similarity.csv: one row per known polymorph, the components as columns."""
    rows = []
    for p in report.get("similarity", {}).get("polymorphs", []):
        row = {k: v for k, v in p.items() if k not in ("components", "per_replica", "mean_coordination")}
        row |= {f"similarity_{c}": v for c, v in p["components"].items()}
        row |= {f"coordination_{pair}": v for pair, v in p.get("mean_coordination", {}).items()}
        rows.append(row)
    return rows
