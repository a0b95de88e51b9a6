"""report.json: a finished run's answer, counts and provenance in one file.

Built here from what stage 6 computed, so the pipeline only orchestrates and the report's layout is
in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from amorph.settings import DEFAULT_RULE, PredictionRule

if TYPE_CHECKING:
    from amorph.start import OutOfRoom

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


def out_of_reach(sizes: dict[str, int], relaxed: set[int], cell_edge: float, roomless: list[OutOfRoom]) -> dict[str, str]:
    """Why no subcell of a run could become a known polymorph, or is unlikely to, by name.

    sizes: primitive-cell atoms of each; relaxed: the atom counts of the subcells relaxed. A subcell
    of N atoms can only become a crystal whose primitive cell divides N, so one that divides none of
    them could not form; one longer than the starting cell (amorph.start.out_of_room) is unlikely to."""
    why = {}
    for name, size in sizes.items():
        if relaxed and size > max(relaxed):
            why[name] = f"a primitive cell of {size} atoms, subcells of at most {max(relaxed)}"
        elif relaxed and all(n % size for n in relaxed):
            why[name] = f"a primitive cell of {size} atoms, no subcell a multiple of it ({', '.join(map(str, sorted(relaxed)))} atoms)"
    for r in roomless:
        why.setdefault(r.name, f"{r.describe()}: longer than the {cell_edge:.1f} A starting cell")
    return why


def not_formed(known_names: list[str], rows: list[PolymorphTally], out_of_reach: dict[str, str]) -> list[dict[str, Any]]:
    """The known polymorphs no valid subcell became, each with why none could or was likely to
    (out_of_reach), or None.

    Why they are reported: P is a bootstrap over the products that formed, so a polymorph that formed
    in no subcell leads no resample, and "P 1.00" says nothing about it. An energy rule's answer would
    change the first time a lower-energy one formed; `amorph compare RUN` gives their energies."""
    formed = {r.name for r in rows if r.known and r.count > 0}
    return [{"name": name, "out_of_reach": out_of_reach.get(name)} for name in known_names if name not in formed]


def build_report(
    *,
    formula: str,
    rule: PredictionRule,
    rows: list[PolymorphTally],
    probabilities: dict[PredictionRule, dict[str, float]],
    seconds_per_subcell: float | None,
    n_subcells: int,
    n_valid: int,
    invalid: dict[str, int],
    replicas: int,
    sampling: dict[str, Any],
    potential: str,
    preset: str,
    seed: int,
    reference_volume: dict[str, Any],
    sources: list[str],
    known_names: list[str],
    out_of_reach: dict[str, str],
    timings: dict[str, float],
    melt_quench: dict[str, Any] | None = None,
    could_not_form: Sequence[str] = (),
    unseen: float | None = None,
    unformed: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """report.json's content (keys in the order a reader meets them); `prediction` is what `rule` names.
    could_not_form: the database's polymorphs the subcells could not become (every answer inconclusive);
    unseen: the Good-Turing chance that the next subcell becomes a product not seen yet;
    unformed: energies per atom, under the run's potential, of the database's polymorphs that fit the
    subcells and formed in none (an energy rule's answer above one of them is inconclusive)."""
    def named(name: PredictionRule) -> dict[str, Any]:
        return named_by(name, rows, formula, probabilities[name], seconds_per_subcell, replicas, could_not_form, unformed)

    return {
        "formula": formula,
        "prediction": named(rule),
        "predictions": {name: named(name) for name in RULES},
        "evidence": {  # what a conclusive answer needs (amorph.matching.rules)
            "energy_resolution_mev_per_atom": 1000 * ENERGY_RESOLUTION,
            "min_subcells": MIN_EVIDENCE,
            "min_replicas": min(2, replicas),
            "bootstrap_conclusive_at": CONCLUSIVE,
            "could_not_form": list(could_not_form),
            "unseen_product_chance": unseen,
            # eV/atom under the run's potential, relaxed: known polymorphs that fit and formed in no subcell
            "not_formed_energies": dict(unformed or {}),
        },
        "lowest_energy_product": lowest_energy_of(rows),
        "polymorphs": [r.to_dict() for r in rows],
        "n_subcells": n_subcells,
        "n_valid": n_valid,
        "invalid": dict(invalid),  # invalid subcells by reason (subcells.csv has each one's)
        "replicas": replicas,
        "sampling": sampling,
        "potential": potential,
        "preset": preset,
        "seed": seed,
        "reference_volume": reference_volume,
        "melt_quench": melt_quench,  # the temperatures each replica's stages reached (amorph.melt_quench); None before they were kept
        "known_polymorphs": {"sources": sources, "names": known_names, "not_formed": not_formed(known_names, rows, out_of_reach)},
        "timings": dict(timings),
    }


def prediction_line(report: dict[str, Any]) -> str:
    """One sentence a scientist can paste into a notebook."""
    pred = report["prediction"]
    if pred.get("polymorph") is None:
        return f"{report['formula']}: {pred['message']} ({report['n_valid']} valid of {report['n_subcells']} subcells)"
    rule = pred.get("rule", "most-frequent")
    how = "" if rule == DEFAULT_RULE else f" ({rule} rule)"
    variants = f", {pred['stacking_variants']} of them in another stacking" if pred.get("stacking_variants") else ""
    if pred.get("conclusive") is False:
        leads = f"{pred['polymorph']} leads, named on {100 * pred['probability']:.0f}% of resamples"
        return f"{report['formula']}{how}: {pred['message']} ({leads}{variants})"
    unknown = "" if pred.get("known", True) else ", a structure no known polymorph matches"
    sure = f", named on {100 * pred['probability']:.0f}% of resamples" if "probability" in pred else ""
    return (
        f"{report['formula']}: first to nucleate{how}: {pred['polymorph']}{unknown} ({pred['spacegroup_symbol']}, "
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


def unknown_description(row: dict[str, Any]) -> str:
    """'unknown-1 (TiO2, AB2_oP12_60; nearest brookite)': never just 'unknown'."""
    parts = [row["formula"]]
    if row.get("structure_type"):
        parts.append(row["structure_type"])
    text = f"{row['name']} ({', '.join(parts)}"
    if row.get("closest_known"):
        text += f"; nearest {row['closest_known']}, d={row['fingerprint_distance']:.2f}"
    return text + ")"


def share_text(row: dict[str, Any]) -> str:
    """'66.7% [50-83]': a share with its 95% interval (share_ci_low/high), where it has one."""
    low, high = row.get("share_ci_low"), row.get("share_ci_high")
    text = f"{100 * row['share']:.1f}%"
    return text if low is None or high is None else f"{text} [{100 * low:.0f}-{100 * high:.0f}]"
