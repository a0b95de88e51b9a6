"""report.json: a finished run's answer, counts and provenance in one file.

Built here from what stage 6 computed, so the pipeline only orchestrates and the report's layout is
in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amorph.matching.ranking import PolymorphTally, lowest_energy_product
from amorph.matching.rules import CONCLUSIVE, RULES, chosen_by, more_to_settle, runner_up
from amorph.settings import DEFAULT_RULE, PredictionRule

if TYPE_CHECKING:
    from amorph.start import OutOfRoom

def named_by(
    rule: PredictionRule,
    rows: list[PolymorphTally],
    formula: str,
    probabilities: dict[str, float] | None = None,
    seconds_per_subcell: float | None = None,
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
    } | _confidence(rule, chosen, rows, probabilities or {}, seconds_per_subcell)


def _confidence(
    rule: PredictionRule, chosen: PolymorphTally, rows: list[PolymorphTally], probabilities: dict[str, float], seconds: float | None
) -> dict[str, Any]:
    """probability, conclusive, the runner-up and the lead over it; for an inconclusive answer, a message."""
    if not probabilities:
        return {}
    probability = probabilities.get(chosen.name, 0.0)
    runner = runner_up(rule, chosen, rows, probabilities)
    out: dict[str, Any] = {"probability": probability, "conclusive": probability >= CONCLUSIVE}
    if runner is not None:
        out["runner_up"] = {
            "polymorph": runner.name,
            "probability": probabilities.get(runner.name, 0.0),
            "share_lead": chosen.share - runner.share,
            "energy_lead_mev_per_atom": 1000 * (runner.lowest_energy_per_atom - chosen.lowest_energy_per_atom),
        }
    if not out["conclusive"]:
        text = f"inconclusive between {chosen.name} and {runner.name if runner else 'nothing else'}"
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
) -> dict[str, Any]:
    """report.json's content (keys in the order a reader meets them); `prediction` is what `rule` names."""
    return {
        "formula": formula,
        "prediction": named_by(rule, rows, formula, probabilities[rule], seconds_per_subcell),
        "predictions": {name: named_by(name, rows, formula, probabilities[name], seconds_per_subcell) for name in RULES},
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
