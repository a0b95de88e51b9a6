"""Every rule for the first polymorph is reported, --rule picks one, and the benchmark scores them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from amorph.matching.ranking import PolymorphTally
from amorph.matching.rules import chosen_by
from amorph.results.report import REPORTED_RULES

ROOT = Path(__file__).resolve().parents[1]


def _row(name: str, known: bool, count: int, lowest: float, sg: int = 1) -> PolymorphTally:
    return PolymorphTally(name, known, "TiO2", "P1", sg, count, count / 10, lowest, lowest, 0)


ROWS = [
    _row("rutile", True, 4, -9.38, 136),
    _row("unknown-1", False, 3, -9.45),
    _row("anatase", True, 2, -9.41, 141),
    _row("unknown-2", False, 1, -9.00),
]


def test_each_rule_names_its_own_product():
    assert chosen_by("most-frequent", ROWS).name == "rutile"
    assert chosen_by("lowest-energy", ROWS).name == "unknown-1"
    assert chosen_by("lowest-energy-known", ROWS).name == "anatase"
    unknown_only = [r for r in ROWS if not r.known]
    assert chosen_by("most-frequent", unknown_only) is None and chosen_by("lowest-energy-known", unknown_only) is None
    assert chosen_by("lowest-energy", []) is None


def test_the_report_names_the_known_polymorphs_that_formed_nowhere():
    """P is a bootstrap over what formed: the report lists what did not, with why it could not."""
    from amorph.results.report import not_formed, not_formed_text

    known = ["rutile", "anatase", "brookite", "columbite"]
    missing = not_formed(known, ROWS, {"brookite": "a primitive cell of 24 atoms, subcells of at most 12"})
    assert missing == [{"name": "brookite", "out_of_reach": "a primitive cell of 24 atoms, subcells of at most 12"},
                       {"name": "columbite", "out_of_reach": None}]
    text = not_formed_text({"known_polymorphs": {"not_formed": missing}})
    assert text == ("formed in no subcell: columbite (P counts only what formed) · "
                    "out of reach: brookite (a primitive cell of 24 atoms, subcells of at most 12)")
    assert not_formed_text({"known_polymorphs": {"not_formed": []}}) == "" and not_formed_text({}) == ""


def test_report_gives_every_rule(cu_smoke_run):
    out, _ = cu_smoke_run
    report = json.loads((out / "report.json").read_text())
    assert set(report["predictions"]) == set(REPORTED_RULES)  # the subcell rules and the similarity rules
    assert report["prediction"] == report["predictions"]["lowest-energy-known"]  # the default rule (docs/accuracy.md)
    from amorph.matching.rules import ENERGY_RESOLUTION

    for rule, pool in (("lowest-energy", report["polymorphs"]), ("lowest-energy-known", [p for p in report["polymorphs"] if p["known"]])):
        floor = min(p["lowest_energy_per_atom"] for p in pool)
        tied = [p for p in pool if p["lowest_energy_per_atom"] - floor <= ENERGY_RESOLUTION]
        # the lowest-energy products within the resolution are a tie, which the count decides
        assert report["predictions"][rule]["polymorph"] == max(tied, key=lambda p: p["count"])["name"]


def test_rule_in_the_settings_picks_the_prediction(cu_smoke_run, cli, tmp_path):
    """Only the ranking stage reruns: the run's config says most-frequent (not the default), its report is gone."""
    out, _ = cu_smoke_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    config = json.loads((run / "config.json").read_text())
    config["settings"]["rule"] = "most-frequent"
    (run / "config.json").write_text(json.dumps(config))
    (run / "report.json").unlink()
    code, stdout, stderr = cli("resume", str(run), "--quiet")
    assert code == 0, stderr
    report = json.loads((run / "report.json").read_text())
    assert report["prediction"] == report["predictions"]["most-frequent"]
    assert "(most-frequent rule)" in stdout


def test_bad_rule_is_one_line(cli, tmp_path):
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--rule", "newest", "--out", str(tmp_path / "r"))
    assert code == 2 and stderr.count("\n") == 1 and "--rule" in stderr


@pytest.fixture
def accuracy(benchmark_script):
    return benchmark_script("accuracy")


def test_benchmark_scoring(accuracy):
    rows = {r.formula: r for r in accuracy.read_rows(ROOT / "benchmarks" / "data" / "first_nucleating.csv")}
    assert len(rows) == 20 and sum(r.confidence == "high" for r in rows.values()) >= 10
    tio2, batio3, carbon = rows["TiO2"], rows["BaTiO3"], rows["C"]
    assert tio2.is_right({"polymorph": "anatase", "known": True, "spacegroup_number": 141})
    assert not tio2.is_right({"polymorph": "rutile", "known": True, "spacegroup_number": 136})
    assert not tio2.is_right({"polymorph": "unknown-3", "known": False, "spacegroup_number": 141})  # unnamed is never right
    assert not tio2.is_right({"polymorph": None}) and not tio2.is_right(None)
    assert batio3.is_right({"polymorph": "tetragonal", "known": True, "spacegroup_number": 99})  # accepted alternative
    assert carbon.is_right({"polymorph": "graphite-2H", "known": True, "spacegroup_number": 194})
    assert not carbon.is_right({"polymorph": "lonsdaleite", "known": True, "spacegroup_number": 194})
    products = [{"name": "rutile", "known": True, "spacegroup_number": 136, "count": 9},
                {"name": "anatase", "known": True, "spacegroup_number": 141, "count": 2},
                {"name": "unknown-1", "known": False, "spacegroup_number": 141, "count": 5}]
    assert accuracy.expected_count(tio2, {"polymorphs": products}) == 2  # a miss of the rule, not of sampling
    assert accuracy.expected_count(tio2, {"polymorphs": products[:1]}) == 0 and accuracy.expected_count(tio2, None) is None


def _outcomes(spec: list[tuple[str, bool, float]]):
    import numpy as np

    from amorph.matching.identify import Identity
    from amorph.matching.ranking import Outcome

    rng = np.random.default_rng(0)
    return [Outcome(k, Identity(name, known, "P1", 1), energy + 1e-4 * rng.random(), "TiO2") for k, (name, known, energy) in enumerate(spec)]


def test_rule_probabilities_are_how_often_the_rule_names_it_on_resamples():
    import numpy as np

    from amorph.matching.rules import rule_probabilities

    clear = _outcomes([("rutile", True, -9.38)] * 30 + [("anatase", True, -9.41)] * 3 + [("unknown-1", False, -9.2)] * 5)
    p = rule_probabilities(clear, [0] * len(clear), np.random.default_rng(1))
    assert p["most-frequent"]["rutile"] > 0.99
    assert p["lowest-energy-known"]["anatase"] > 0.8  # present in most resamples, always the lowest known
    assert abs(sum(p["most-frequent"].values()) - 1) < 1e-9
    tied = _outcomes([("rutile", True, -9.38)] * 6 + [("anatase", True, -9.41)] * 6)
    q = rule_probabilities(tied, [0] * len(tied), np.random.default_rng(1))
    assert 0.2 < q["most-frequent"]["rutile"] < 0.8 and 0.2 < q["most-frequent"]["anatase"] < 0.8
    assert rule_probabilities([], [], np.random.default_rng(1))["most-frequent"] == {}


def test_an_unclear_answer_is_inconclusive_and_says_what_would_settle_it():
    import numpy as np

    from amorph.matching.ranking import tally
    from amorph.matching.rules import more_subcells_needed, rule_probabilities
    from amorph.results.report import named_by

    outcomes = _outcomes([("rutile", True, -9.38)] * 7 + [("anatase", True, -9.41)] * 6 + [("unknown-1", False, -9.2)] * 10)
    rows = tally(outcomes)
    p = rule_probabilities(outcomes, [0] * len(outcomes), np.random.default_rng(2))
    named = named_by("most-frequent", rows, "TiO2", p["most-frequent"], seconds_per_subcell=3.0)
    assert named["polymorph"] == "rutile" and named["conclusive"] is False
    assert named["runner_up"]["polymorph"] == "anatase"
    assert named["message"].startswith("inconclusive between rutile and anatase")
    assert "more valid subcells" in named["message"] and "min at this run's pace" in named["message"]
    rutile, anatase = rows[1], rows[2]
    assert (rutile.name, anatase.name) == ("rutile", "anatase")
    extra = more_subcells_needed(rutile, anatase, 23)
    # at (n + extra) subcells with the same shares, the lead is Z_80 standard errors
    d, n = rutile.share - anatase.share, 23 + extra
    assert d / np.sqrt((rutile.share + anatase.share - d**2) / n) >= 0.8416 > d / np.sqrt((rutile.share + anatase.share - d**2) / (n - 1))
    assert more_subcells_needed(anatase, rutile, 23) is None  # no lead to make conclusive


def test_an_energy_rule_says_how_many_subcells_would_let_its_answer_recur():
    import numpy as np

    from amorph.matching.ranking import tally
    from amorph.matching.rules import more_subcells_to_recur, rule_probabilities
    from amorph.results.report import named_by

    outcomes = _outcomes([("rutile", True, -9.38)] * 7 + [("anatase", True, -9.41)] + [("unknown-1", False, -9.2)] * 12)
    rows = tally(outcomes)
    p = rule_probabilities(outcomes, [0] * len(outcomes), np.random.default_rng(2))
    named = named_by("lowest-energy-known", rows, "TiO2", p["lowest-energy-known"])
    assert named["polymorph"] == "anatase" and named["conclusive"] is False  # one subcell: in ~63% of resamples
    assert 0.55 < named["probability"] < 0.72
    assert named["message"] == ("inconclusive between anatase and rutile (anatase formed in 1 subcell, fewer than 3); "
                                "about 40 more valid subcells would settle it")
    anatase = next(r for r in rows if r.name == "anatase")
    assert more_subcells_to_recur(anatase, 20) == 40  # three times the subcells: expected to be seen three times
    twice = _outcomes([("rutile", True, -9.38)] * 7 + [("anatase", True, -9.41)] * 2)
    assert more_subcells_to_recur(next(r for r in tally(twice) if r.name == "anatase"), 9) == 5  # 9 x 3 / 2, rounded up
    thrice = _outcomes([("rutile", True, -9.38)] * 7 + [("anatase", True, -9.41)] * 3)
    assert more_subcells_to_recur(next(r for r in tally(thrice) if r.name == "anatase"), 10) is None


def test_the_reserve_and_the_report_read_the_same_estimate_against_the_same_runner_up():
    """The runner-up is what the bootstrap names second; here columbite, all in one replica, which
    the resamples name more often than anatase, the second by count. The count rule's estimate
    against it is no number (the lead is large enough in subcells: the doubt is the replicas'), and
    judging a run part-way (the reserve's stop) and the report's message must agree on that."""
    import numpy as np

    from amorph.matching.ranking import tally
    from amorph.matching.rules import chosen_by, judged, rule_probabilities, runner_up
    from amorph.results.report import named_by

    spec = [("rutile", True, -9.38)] * 6 + [("anatase", True, -9.41)] * 4 + [("columbite", True, -9.39)] * 3
    outcomes = _outcomes(spec + [("unknown-1", False, -9.2)] * 10)
    replicas = [i % 3 for i in range(10)] + [3] * 3 + [i % 4 for i in range(10)]
    rows = tally(outcomes)
    p = rule_probabilities(outcomes, replicas, np.random.default_rng(0))["most-frequent"]
    rutile = chosen_by("most-frequent", rows)
    assert runner_up("most-frequent", rutile, rows, p).name == "columbite"
    assert chosen_by("most-frequent", [r for r in rows if r.name != "rutile"]).name == "anatase"
    chosen, probability, conclusive, needed = judged(outcomes, replicas, "most-frequent", np.random.default_rng(0), 4)
    named = named_by("most-frequent", rows, "TiO2", p)
    assert chosen.name == named["polymorph"] == "rutile" and probability == named["probability"] < 0.8 and not conclusive
    assert named["runner_up"]["polymorph"] == "columbite"
    assert needed is None and named["message"] == "inconclusive between rutile and columbite"
    # against anatase the same lead would have asked for 18 more
    from amorph.matching.rules import more_subcells_needed

    assert more_subcells_needed(rutile, next(r for r in rows if r.name == "anatase"), 23) == 18


def test_the_terminal_says_inconclusive_instead_of_naming():
    from amorph.results.report import prediction_line

    report = {"formula": "TiO2", "n_valid": 23, "n_subcells": 40,
              "prediction": {"rule": "most-frequent", "polymorph": "rutile", "conclusive": False, "probability": 0.55,
                             "message": "inconclusive between rutile and anatase"}}
    line = prediction_line(report)
    assert "inconclusive between rutile and anatase" in line and "first to nucleate" not in line


def _records(spec: list[tuple[str, bool, float]]):
    from amorph.results.subcells import SubcellRecord

    return [
        SubcellRecord(k, 0, 6, "Ti2O4", "[0 0 0]", "[1 1 1]", 0.0, -8.0, energy, 100, True, True, "ok", "P1", 1, 0.01, name, known, "", "", 0.0)
        for k, (name, known, energy) in enumerate(spec)
    ]


def test_adaptive_replay_stops_where_the_rule_says_and_shows_the_energy_rule_stopping_too_early(benchmark_script):
    """A rare lower-energy polymorph that first forms late: a stop on the energy rule's P ends the
    sampling before it appears (the trap docs/log/accuracy.md measured on TiO2); relaxing everything finds it."""

    import numpy as np

    replay_module = benchmark_script("adaptive_replay")
    from pymatgen.core import Lattice, Structure

    from amorph.matching.polymorph import Polymorph

    cell = Structure(Lattice.cubic(4.0), ["Ti", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    references = [Polymorph("TiO2", name, "", "P1", 1, cell, "test", name == "rutile") for name in ("rutile", "anatase")]
    late = [("rutile", True, -9.39) if k % 8 == 0 else ("unknown-1", False, -9.2) for k in range(100)]
    late += [("anatase", True, -9.41)] * 2 + [("unknown-1", False, -9.2)] * 18
    records = _records(late)
    stop = replay_module.stop_on_probability(0.8, "lowest-energy-known")
    stopped = replay_module.replay(records, references, stop, seed=0)
    assert stopped == 32  # rutile alone, P 1.0, after the two rounds the pipeline waits for
    early = replay_module.answer([r for r in records[:stopped] if r.valid], references, "lowest-energy-known", np.random.default_rng(0))
    full = replay_module.answer(records, references, "lowest-energy-known", np.random.default_rng(0))
    assert early["polymorph"] == "rutile" and early["conclusive"]
    assert full["polymorph"] == "anatase"
    never = replay_module.stop_on_probability(1.01, "lowest-energy-known")
    assert replay_module.replay(records, references, never, seed=0) == len(records)


def test_replica_mix_assembles_runs_from_replicas_and_scores_each(benchmark_script):
    """Two cells that made anatase and two that made only rutile: a run of two replicas is right and
    sure only when both are anatase cells, wrong and sure when both are rutile cells; one of all four
    is right and sure (the odds docs/log/accuracy.md, "Four replicas", measures on TiO2). Every cell
    numbers its replica 0, as each run's first replica does: the mix must tell them apart."""
    from pymatgen.core import Lattice, Structure

    from amorph.matching.polymorph import Polymorph

    mix = benchmark_script("replica_mix")
    accuracy = benchmark_script("accuracy")
    cell = Structure(Lattice.cubic(4.0), ["Ti", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    references = [Polymorph("TiO2", "rutile", "", "P4_2/mnm", 136, cell, "test", True),
                  Polymorph("TiO2", "anatase", "", "I4_1/amd", 141, cell, "test", False)]
    row = accuracy.Row("TiO2", "anatase", frozenset({141}), "", "rutile", "high")
    with_anatase = [("anatase", True, -9.41)] * 3 + [("rutile", True, -9.39)] * 3 + [("unknown-1", False, -9.2)] * 24
    rutile_only = [("rutile", True, -9.39)] * 4 + [("unknown-1", False, -9.2)] * 26
    pool = [_records(spec) for spec in [with_anatase, with_anatase, rutile_only, rutile_only]]

    two = mix.Design.parse("2x30")
    outcomes = {chosen: mix.judge_mix([pool[i] for i in chosen], two, references, "lowest-energy-known", row, seed=0)[0]
                for chosen in mix.mixes(pool, two, most=100, seed=0)}
    assert len(outcomes) == 6
    assert outcomes[(0, 1)] == "right, conclusive"
    assert outcomes[(2, 3)] == "wrong, conclusive"
    assert all(outcomes[m] == "right, inconclusive" for m in [(0, 2), (0, 3), (1, 2), (1, 3)])
    four = mix.Design.parse("4x30")
    assert mix.judge_mix(pool, four, references, "lowest-energy-known", row, seed=0) == ("right, conclusive", 120)
    assert mix.mixes(pool, mix.Design.parse("2x20:40"), most=100, seed=0) == []  # no replica holds 40 subcells
    assert str(mix.Design.parse("4x30:60")) == "4x30:60"

    # the reserve: one anatase in the two cells' first 10 subcells (inconclusive), more past them; a
    # round of 30 taken in turn from both cells settles it, and the reserve stops there
    unknown = [("unknown-1", False, -9.2)]
    first = [("anatase", True, -9.41)] + [("rutile", True, -9.39)] * 2 + unknown * 7 + [("anatase", True, -9.41)] * 4 + unknown * 46
    second = [("rutile", True, -9.39)] * 2 + unknown * 8 + [("anatase", True, -9.41)] * 4 + unknown * 46
    cells = [_records(first), _records(second)]
    assert mix.judge_mix(cells, mix.Design.parse("2x10"), references, "lowest-energy-known", row, seed=0) == ("right, inconclusive", 20)
    assert mix.judge_mix(cells, mix.Design.parse("2x10:60"), references, "lowest-energy-known", row, seed=0) == ("right, conclusive", 50)
    assert mix.judge_mix(cells, mix.Design.parse("2x10:11"), references, "lowest-energy-known", row, seed=0)[1] == 22  # capped at 11 per cell


def test_replica_mix_pools_every_replica_of_every_run_and_keeps_their_unknowns_apart(benchmark_script, tmp_path):
    """pool_of reads run folders as benchmarks/accuracy.py leaves them: each replica's budget (shuffled,
    since the pipeline relaxes it in grid order) then its reserve; an unknown product of one run is not
    the same product as the like-named unknown of another."""
    import csv
    import json
    from dataclasses import replace

    from pymatgen.core import Lattice, Structure

    from amorph.matching.polymorph import Polymorph
    from amorph.results.subcells import COLUMNS

    mix = benchmark_script("replica_mix")
    cell = Structure(Lattice.cubic(4.0), ["Ti", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    references = [Polymorph("TiO2", "rutile", "", "P4_2/mnm", 136, cell, "test", True)]
    runs = []
    for name in ("TiO2-seed0", "TiO2-seed1"):
        run = tmp_path / name
        run.mkdir()
        records = [replace(r, replica=k // 3) for k, r in enumerate(_records([("rutile", True, -9.39), ("unknown-1", False, -9.2)] * 3))]
        with open(run / "subcells.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(r.to_row() for r in records)
        (run / "known_polymorphs.json").write_text(json.dumps({"polymorphs": [p.to_dict() for p in references]}))
        (run / "config.json").write_text(json.dumps({"settings": {"subcells": {"max_subcells": 4}}}))
        runs.append(run)
    pool, pooled_references = mix.pool_of(runs)
    assert [p.name for p in pooled_references] == ["rutile"]
    assert [len(cells) for cells in pool] == [3, 3, 3, 3]
    for k, cells in enumerate(pool):
        ids = [r.id for r in cells]
        first = 3 * (k % 2)
        assert sorted(ids[:2]) == [first, first + 1] and ids[2] == first + 2  # budget of 2 (4 over 2 replicas), then the reserve
    unknowns = {r.match for cells in pool for r in cells if not r.known_polymorph}
    assert unknowns == {"TiO2-seed0:unknown-1", "TiO2-seed1:unknown-1"}


def _replicated(spec: list[tuple[str, bool, float, int]]):
    """Outcomes with their replica: (name, known, energy per atom, replica) per subcell."""
    from amorph.matching.identify import Identity
    from amorph.matching.ranking import Outcome

    return [Outcome(k, Identity(name, known, "P1", 1), energy, "Cu", replica) for k, (name, known, energy, replica) in enumerate(spec)]


def test_energies_within_the_resolution_are_a_tie_the_count_decides():
    """Cu under EMT: hcp 1 meV/atom below fcc is no lead; fcc formed five times as often, so both energy
    rules name fcc and say it tied with hcp. A 30 meV lead is a lead."""
    import numpy as np

    from amorph.matching.ranking import tally
    from amorph.matching.rules import ENERGY_RESOLUTION, chosen_by, rule_probabilities
    from amorph.results.report import named_by

    assert ENERGY_RESOLUTION == 0.010
    spec = [("fcc", True, -0.0069, k % 2) for k in range(20)] + [("hcp", True, -0.0079, k % 2) for k in range(4)]
    outcomes = _replicated(spec)
    rows = tally(outcomes)
    assert chosen_by("lowest-energy-known", rows).name == chosen_by("lowest-energy", rows).name == "fcc"
    p = rule_probabilities(outcomes, [o.replica for o in outcomes], np.random.default_rng(0))
    named = named_by("lowest-energy-known", rows, "Cu", p["lowest-energy-known"], n_replicas=2)
    assert named["polymorph"] == "fcc" and named["tied_with"] == ["hcp"]
    # the energies' own noise: hcp is named when the draw puts fcc more than the resolution above it
    assert 0.02 < p["lowest-energy-known"].get("hcp", 0) < 0.3
    apart = _replicated([("fcc", True, -0.0069, k % 2) for k in range(20)] + [("hcp", True, -0.0369, k % 2) for k in range(4)])
    assert chosen_by("lowest-energy-known", tally(apart)).name == "hcp"


def test_a_sure_answer_without_the_evidence_is_inconclusive():
    """P alone is not enough: an answer seen in fewer than three subcells, in one replica's cell only, or
    in a run whose subcells could not become some known polymorph, is inconclusive, and says why."""
    import numpy as np

    from amorph.matching.ranking import tally
    from amorph.matching.rules import MIN_EVIDENCE, evidence_gaps, rule_probabilities
    from amorph.results.report import named_by

    assert MIN_EVIDENCE == 3  # exp(-3) < 5% <= exp(-2): a repeat run misses it less than 1 time in 20
    one_cell = _replicated([("rutile", True, -9.38, k % 4) for k in range(20)] + [("anatase", True, -9.41, 2)] * 6)
    rows = tally(one_cell)
    p = rule_probabilities(one_cell, [o.replica for o in one_cell], np.random.default_rng(0))
    named = named_by("lowest-energy-known", rows, "TiO2", p["lowest-energy-known"], n_replicas=4)
    assert named["polymorph"] == "anatase" and named["conclusive"] is False
    assert named["evidence_gaps"] == ["anatase formed in one of 4 replicas' cells only"]
    spread = _replicated([("rutile", True, -9.38, k % 4) for k in range(20)] + [("anatase", True, -9.41, k % 4) for k in range(6)])
    rows = tally(spread)
    p = rule_probabilities(spread, [o.replica for o in spread], np.random.default_rng(0))
    named = named_by("lowest-energy-known", rows, "TiO2", p["lowest-energy-known"], n_replicas=4)
    assert named["conclusive"] is True and named["evidence_gaps"] == []
    blocked = named_by("lowest-energy-known", rows, "TiO2", p["lowest-energy-known"], n_replicas=4, could_not_form=["brookite"])
    assert blocked["conclusive"] is False and "brookite could not form in this run's subcells" in blocked["message"]
    anatase = next(r for r in rows if r.name == "anatase")
    assert evidence_gaps(anatase, 1) == [] and evidence_gaps(anatase, 4) == []


def test_good_turing_unseen_chance_is_the_share_of_one_off_products():
    from amorph.matching.statistics import unseen_chance

    assert unseen_chance([10, 5, 1, 1, 1]) == 3 / 18
    assert unseen_chance([4, 4]) == 0.0 and unseen_chance([]) is None


def test_a_lower_polymorph_that_fit_and_never_formed_is_an_evidence_gap_beyond_the_resolution():
    from amorph.matching.rules import ENERGY_RESOLUTION, evidence_gaps

    named = PolymorphTally("c11b", True, "MoSi2", "I4/mmm", 139, 9, 9 / 240, -7.00, -6.99, 0, replicas=3)
    assert evidence_gaps(named, 4, unformed_below={"c40": -7.00 - 2 * ENERGY_RESOLUTION})[0].startswith(
        "c40 fits the subcells but formed in none, and lies 20 meV/atom below c11b")
    assert evidence_gaps(named, 4, unformed_below={"c40": -7.00 - ENERGY_RESOLUTION / 2}) == []  # a tie: no gap
    assert evidence_gaps(named, 4, unformed_below={"c40": -6.90}) == []  # above the answer
