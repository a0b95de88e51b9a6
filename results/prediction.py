"""Stage 6: the prediction. The products of subcells.csv are counted per polymorph, every rule names
its answer with a bootstrap confidence (matching.rules), and report.json, polymorphs.csv and
similarity.csv are written: the answer with everything that bears on it (what could not form, the
energies of what did not, the melt-quench's temperatures, how close the amorphous solid is to each
polymorph).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from amorph.matching.ranking import PolymorphTally, tally
from amorph.matching.rules import rule_probabilities
from amorph.matching.statistics import share_intervals, unseen_chance
from amorph.progress import ProgressSink
from amorph.reach import could_not_form, out_of_reach, primitive_sizes, roomless_of, unformed_energies
from amorph.results import rundir as files
from amorph.results.report import KnownReach, ProductCounts, RunFacts, build_report, similarity_predictions, similarity_rows
from amorph.results.subcells import SubcellRecord, invalid_kind, outcomes_of, read_records
from amorph.run import STREAM_BOOTSTRAP, STREAM_RULES, STREAM_SIMILARITY
from amorph.start import reference_volume

if TYPE_CHECKING:
    from amorph.run import Run


def with_similarity(table: pd.DataFrame, closeness: dict[str, Any]) -> pd.DataFrame:
    """polymorphs.csv: each product's row, a known polymorph's with its similarity to the amorphous solid and
    its energy against it (similarity.csv has every known polymorph, formed or not)."""
    if table.empty:  # no valid subcell: no product rows
        return table
    known = {p["name"]: p for p in closeness["polymorphs"]}
    for column, key in (("similarity", "similarity"), ("similarity_se", "similarity_se"),
                        ("energy_above_amorphous_mev_per_atom", "energy_above_amorphous_mev_per_atom")):
        table[column] = [known[name][key] if is_known and name in known else None for name, is_known in zip(table["name"], table["known"])]
    return table


def own_spacegroup(row: PolymorphTally, lowest: SubcellRecord) -> str:
    """The space group of a known polymorph's lowest-energy member (the one products/ holds) where it
    differs from the matched reference's: a product named bcc by its structure can be a distorted bcc
    whose own symmetry, at the tolerance spglib found, is lower. Empty where they agree, and for unknowns."""
    if not row.known or lowest.spacegroup_number == row.spacegroup_number:
        return ""
    return f"{lowest.spacegroup_symbol} ({lowest.spacegroup_number})"


def rank_polymorphs(run: Run, progress: ProgressSink) -> None:
    """Step 6: count each polymorph and let every rule name the first to nucleate (report.json names `--rule`'s)."""
    records = read_records(run.out.read_rows(files.SUBCELLS_CSV), str(run.out.file(files.SUBCELLS_CSV)))
    valid = [r for r in records if r.valid]
    outcomes = outcomes_of(valid, run.references())
    intervals = share_intervals([r.match for r in valid], [r.replica for r in valid], run.rng(STREAM_BOOTSTRAP))
    by_id = {r.id: r for r in valid}
    rows = [replace(t, share_ci_low=intervals[t.name][0], share_ci_high=intervals[t.name][1],
                    own_spacegroup=own_spacegroup(t, by_id[t.lowest_energy_subcell])) for t in tally(outcomes)]
    probabilities = rule_probabilities(outcomes, [r.replica for r in valid], run.rng(STREAM_RULES))
    relax_seconds = run.timings.get("crystallize_subcells")  # known when stage 4 ran in this process
    config = run.out.read_json(files.CONFIG)
    edge, roomless = roomless_of(run)
    sizes = primitive_sizes(run.references())
    reach = out_of_reach(sizes, {r.n_atoms for r in records}, edge, roomless)
    closeness = run.out.read_json(files.SIMILARITY)
    run.out.write_csv(files.POLYMORPHS_CSV, with_similarity(pd.DataFrame([t.to_dict() for t in rows]), closeness))
    unformed = unformed_energies(run.references(), rows, reach, {p["name"]: p["energy_per_atom"] for p in closeness["polymorphs"]})
    facts = RunFacts(
        formula=run.formula.reduced, rule=run.settings.rule, preset=run.settings.preset, seed=run.settings.seed,
        potential=config["potential"]["used"], replicas=run.settings.melt_quench.replicas, sources=list(run.settings.databases),
        reference_volume=asdict(reference_volume(run.formula, run.references())), timings=run.timings,
        seconds_per_subcell=relax_seconds / len(records) if relax_seconds and records else None,
    )
    products = ProductCounts(
        rows=rows, probabilities=probabilities, n_subcells=len(records), n_valid=len(valid),
        invalid=dict(Counter(invalid_kind(r.reason) for r in records if not r.valid).most_common()),
        sampling=run.out.read_json(files.SAMPLING) if run.out.has(files.SAMPLING) else {"mode": "fixed", "relaxed": len(records)},
        unseen=unseen_chance([t.count for t in rows]),
    )
    known = KnownReach([p.name for p in run.references()], reach, could_not_form(run.references(), reach, sizes, roomless), unformed)
    summary = run.out.read_json(files.MELT_QUENCH_SUMMARY) if run.out.has(files.MELT_QUENCH_SUMMARY) else None
    report = build_report(facts, products, known, summary, closeness)
    report["formula_display"] = run.formula.display  # as the user wrote it (MoSi2, not pymatgen's Si2Mo), for messages
    # what config.json records of the potential, so that report.json alone says which model answered
    report["potential_details"] = {k: config["potential"].get(k) for k in ("description", "version", "training_data", "weights_checksum", "device")}
    # the similarity rules last: a conclusive one needs the run's own rule to agree, conclusively
    report["predictions"] |= similarity_predictions(closeness, rows, outcomes, run.settings.melt_quench.replicas, run.references(),
                                                    run.rng(STREAM_SIMILARITY), subcell_answer=report["prediction"])
    run.out.write_csv(files.SIMILARITY_CSV, pd.DataFrame(similarity_rows(report)))
    run.out.write_json(files.REPORT, report)
