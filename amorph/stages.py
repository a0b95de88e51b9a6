"""The stage table: every stage of the method, the files it reads and writes, and the settings it reads.

One table serves three purposes. The pipeline runs the stages in its order. Resuming a run skips a
stage only when its outputs exist and nothing it depends on has changed since it ran: stages.json
records, for each stage, the values of the settings it declares and a checksum of every file it
reads, so a changed setting runs that stage again, and every later stage whose inputs that changed
(a stage whose output comes out byte for byte the same stops the chain). benchmarks/rerun.py edits a
copy's settings and lets the same rule decide what runs again. And the run folder's layout
(docs/reading-a-run.md) is each stage's `writes`.

The declarations are enforced, not trusted: while a stage runs it sees the run's settings and folder
through guards that refuse anything its entry does not declare (UndeclaredAccess, a programming error),
so a stage that starts reading a new setting fails every test until the table says so.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from amorph.results import rundir as files
from amorph.results.rundir import RunDir
from amorph.settings import AS_BEFORE, SECTIONS, RunSettings

if TYPE_CHECKING:
    from amorph.progress import ProgressSink
    from amorph.run import Run

RECORDS = files.STAGE_RECORDS
ALWAYS_READABLE = frozenset({"formula"})  # a run folder's formula never changes


@dataclass(frozen=True)
class Condition:
    """Settings a stage reads only when `holds` is true of the run's settings; `label` says when."""

    label: str
    holds: Callable[[RunSettings], bool]
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """One step of the method as the pipeline runs it.

    function: "module:function", imported when the stage runs (some stages start heavy libraries);
    reads: run-folder files it reads (written by earlier stages; a missing optional one is allowed);
    writes: files and folders it writes, the first one marking the stage done;
    settings: what it reads of RunSettings: a section ("relax"), one field ("subcells.n_max") or a
    top-level field ("seed"); "potential" stands for the model the run loaded (its name and checksum);
    when: settings it reads only under a condition on the others (a predicate and the keys), so that a
    fixed-budget run's relaxations do not depend on a rule they never consult."""

    name: str
    function: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    settings: tuple[str, ...]
    when: tuple[Condition, ...] = ()

    def declared(self, settings: RunSettings) -> tuple[str, ...]:
        """The settings this stage reads under these settings."""
        return self.settings + tuple(key for c in self.when if c.holds(settings) for key in c.keys)

    def load(self) -> Callable[[Run, ProgressSink], None]:
        module, _, name = self.function.partition(":")
        return cast("Callable[[Run, ProgressSink], None]", getattr(importlib.import_module(module), name))

    @property
    def done_marker(self) -> str:
        return self.writes[0]


def names_products_in_rounds(settings: RunSettings) -> bool:
    """Stage 4 relaxes in rounds that name the products and judge the answer as they go (--max-subcells
    auto, or a reserve for an inconclusive answer), and so reads the rule and the matching tolerances."""
    return settings.subcells.adaptive or settings.subcells.more_if_inconclusive > 0


STAGES: tuple[Stage, ...] = (
    Stage("collect_references", "amorph.references:collect_references", (), (files.KNOWN_POLYMORPHS, files.SUBCELL_RANGE),
          ("databases", "potential", "packing", "subcells.n_max", "subcells.fit_polymorphs", "melt_quench.t_high",
           "relax.fusion_distance")),
    Stage("build_start_structure", "amorph.start:build_start_structure", (files.KNOWN_POLYMORPHS,), (files.START,),
          ("seed", "packing", "melt_quench.replicas")),
    Stage("run_melt_quench", "amorph.amorphous:run_melt_quench", (files.START,),
          (files.AMORPHOUS_XYZ, files.MELT_QUENCH_LOG, files.MELT_QUENCH_SUMMARY, files.MELT_QUENCH_FAULTS, files.AMORPHOUS_CIF),
          ("seed", "potential", "melt_quench", "relax.fusion_distance", "relax.engine")),
    Stage("cut_subcells", "amorph.motifs.cutting:cut_subcells", (files.AMORPHOUS_XYZ, files.KNOWN_POLYMORPHS, files.SUBCELL_RANGE),
          (files.SUBCELLS_INITIAL, files.SUBCELL_CENSUS), ("seed", "subcells")),
    Stage("crystallize_subcells", "amorph.md.crystallize:crystallize_subcells",
          (files.SUBCELLS_INITIAL, files.AMORPHOUS_XYZ, files.KNOWN_POLYMORPHS),
          (files.SUBCELLS_RELAXED, files.CHECKPOINT, files.SAMPLING),
          ("seed", "potential", "relax", "subcells.adaptive", "subcells.more_if_inconclusive"),
          (Condition("with auto or a reserve", names_products_in_rounds, ("rule", "matching")),)),
    Stage("identify_products", "amorph.matching.products:identify_products", (files.SUBCELLS_RELAXED, files.KNOWN_POLYMORPHS),
          (files.SUBCELLS_CSV, files.PRODUCTS), ("matching",)),
    Stage("compare_with_polymorphs", "amorph.closeness:compare_with_polymorphs", (files.AMORPHOUS_XYZ, files.KNOWN_POLYMORPHS),
          (files.SIMILARITY, files.AMORPHOUS_RELAXED, files.POLYMORPHS_RELAXED), ("potential", "relax.fmax")),
    Stage("rank_polymorphs", "amorph.results.prediction:rank_polymorphs",
          (files.SUBCELLS_CSV, files.KNOWN_POLYMORPHS, files.SUBCELL_RANGE, files.CONFIG, files.SAMPLING,
           files.MELT_QUENCH_SUMMARY, files.SIMILARITY),
          (files.REPORT, files.POLYMORPHS_CSV, files.SIMILARITY_CSV),
          ("seed", "rule", "preset", "databases", "packing", "melt_quench.replicas")),
    Stage("draw_report", "amorph.results.html:draw_report",
          (files.REPORT, files.CONFIG, files.MELT_QUENCH_LOG, files.KNOWN_POLYMORPHS, files.PRODUCTS, files.AMORPHOUS_XYZ,
           files.AMORPHOUS_RELAXED, files.POLYMORPHS_RELAXED),
          (files.REPORT_HTML, files.FIGURES), ()),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def markdown_table() -> str:
    """The stage table as docs/reading-a-run.md shows it (a test keeps the two the same)."""
    def names(items: tuple[str, ...]) -> str:
        return ", ".join(f"`{i}`" for i in items) or "-"

    def settings(s: Stage) -> str:
        return "; ".join([names(s.settings)] + [f"{names(c.keys)} ({c.label})" for c in s.when])

    rows = [f"| {n} | `{s.name}` | {names(s.reads)} | {names(s.writes)} | {settings(s)} |" for n, s in enumerate(STAGES)]
    return "\n".join(["| # | stage | reads | writes | settings read |", "|---|---|---|---|---|", *rows])


def stage(name: str) -> Stage:
    """The table's entry for a stage name."""
    return next(s for s in STAGES if s.name == name)


class UndeclaredAccess(Exception):
    """A stage read a setting or touched a file its STAGES entry does not declare: a bug in amorph."""


class DeclaredSection:
    """One settings section as a stage that declared some of its fields sees it."""

    def __init__(self, section: Any, fields: set[str], where: str):
        self._section, self._fields, self._where = section, fields, where

    def __getattr__(self, name: str) -> Any:
        if name not in self._fields:
            raise UndeclaredAccess(f"{self._where}.{name} is not among the settings its STAGES entry declares")
        return getattr(self._section, name)


class DeclaredSettings:
    """RunSettings as one stage sees them: only what its entry declares."""

    def __init__(self, settings: RunSettings, entry: Stage):
        self._settings, self._entry = settings, entry

    def __getattr__(self, name: str) -> Any:
        declared = self._entry.declared(self._settings)
        if name in SECTIONS and name not in declared:
            fields = {key.partition(".")[2] for key in declared if key.startswith(f"{name}.")}
            if fields:
                return DeclaredSection(getattr(self._settings, name), fields, f"stage {self._entry.name} read {name}")
        elif name in declared or name in ALWAYS_READABLE:
            return getattr(self._settings, name)
        raise UndeclaredAccess(f"stage {self._entry.name} read setting {name}, which its STAGES entry does not declare")


class DeclaredRunDir(RunDir):
    """The run folder as one stage sees it: it reads what its entry declares and writes what it declares."""

    def __init__(self, path: Path, entry: Stage):
        super().__init__(path)
        self.entry = entry

    def _check(self, name: str, action: str) -> None:
        top = Path(name).parts[0]
        allowed = self.entry.writes if action == "write" else (*self.entry.reads, *self.entry.writes)
        if top not in allowed:
            raise UndeclaredAccess(f"stage {self.entry.name} would {action} {name}, which its STAGES entry does not declare")

    def file(self, name: str) -> Path:
        self._check(name, "read")
        return super().file(name)

    def has(self, name: str) -> bool:
        self._check(name, "read")
        return super().has(name)

    def read_json(self, name: str) -> Any:
        self._check(name, "read")
        return super().read_json(name)

    def read_csv(self, name: str) -> Any:
        self._check(name, "read")
        return super().read_csv(name)

    def read_rows(self, name: str) -> list[dict[str, str]]:
        self._check(name, "read")
        return super().read_rows(name)

    def read_atoms(self, name: str) -> Any:
        self._check(name, "read")
        return super().read_atoms(name)

    def _atomic(self, name: str, writer: Callable[[Path], object]) -> Path:
        self._check(name, "write")
        return super()._atomic(name, writer)


@contextmanager
def declared_view(run: Run, entry: Stage) -> Iterator[None]:
    """While a stage runs, its Run sees only the settings and files its entry declares."""
    settings, out = run.settings, run.out
    run._references = None  # read again through the guard: a stage that uses them must declare the file
    run.settings = cast(RunSettings, DeclaredSettings(settings, entry))
    run.out = DeclaredRunDir(out.path, entry)
    try:
        yield
    finally:
        run.settings, run.out = settings, out


def settings_read(entry: Stage, settings: RunSettings, model: str | None = None) -> dict[str, Any]:
    """The values of the settings a stage declares, as stages.json records them; "potential" is the
    setting with the model it loaded (`model`: name and weights checksum), since "auto" can load
    another model on another machine."""
    values: dict[str, Any] = {}
    for key in entry.declared(settings):
        section, _, name = key.partition(".")
        value = getattr(settings, section)
        if name:
            value = getattr(value, name)
        values[key] = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        if key == "potential" and model is not None:
            values[key] = f"{value} ({model})"
    return values


def _checksum(path: Path) -> str | None:
    """sha256 of a file, or of a folder's files with their names; None when absent."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode() + b"\0" + item.read_bytes())
        return digest.hexdigest()
    return None


def fingerprint(entry: Stage, settings: RunSettings, out: RunDir, model: str | None = None) -> dict[str, Any]:
    """What a stage's result depends on: the settings it reads (the potential with the model loaded,
    `model`) and a checksum of each file it reads; tuples become lists, as JSON keeps them."""
    data = {"settings": settings_read(entry, settings, model), "inputs": {name: _checksum(out.file(name)) for name in entry.reads}}
    return cast(dict[str, Any], json.loads(json.dumps(data, default=list)))


def recorded_model(out: RunDir) -> str | None:
    """The model a run folder's config.json says it loaded, as fingerprints name it."""
    if not out.has(files.CONFIG):
        return None
    potential = out.read_json(files.CONFIG).get("potential", {})
    return f"{potential.get('used')} {potential.get('weights_checksum')}"


def same_fingerprint(recorded: dict[str, Any] | None, current: dict[str, Any]) -> bool:
    """Equal, a field missing from a recorded section counting as what runs did before it existed
    (settings.AS_BEFORE, else its default): a settings section that gains a field in a later version
    must not make every earlier run's stages run again."""
    if recorded is None:
        return False
    if recorded.get("inputs") != current.get("inputs") or set(recorded["settings"]) != set(current["settings"]):
        return False
    defaults = json.loads(json.dumps({k: v for k, v in asdict(RunSettings("x")).items() if isinstance(v, dict)}, default=list))
    for key, value in current["settings"].items():
        old = recorded["settings"][key]
        if isinstance(value, dict) and isinstance(old, dict) and key in defaults:
            before = {**defaults[key], **AS_BEFORE.get(key, {})}
            old = {**{k: v for k, v in before.items() if k in value}, **old}
        if old != value:
            return False
    return True


class StageRecords:
    """stages.json: for each stage, what it ran with (its fingerprint), whether it finished, and its seconds."""

    def __init__(self, out: RunDir):
        self.out = out
        self.data: dict[str, dict[str, Any]] = out.read_json(RECORDS)["stages"] if out.has(RECORDS) else {}

    @property
    def exists(self) -> bool:
        return bool(self.data)

    def up_to_date(self, entry: Stage, current: dict[str, Any]) -> bool:
        record = self.data.get(entry.name)
        return record is not None and record.get("finished", False) and same_fingerprint(record["fingerprint"], current)

    def begun_otherwise(self, entry: Stage, current: dict[str, Any]) -> bool:
        """Begun or finished under other settings or inputs (its outputs, a checkpoint among them, are not this run's)."""
        record = self.data.get(entry.name)
        return record is not None and not same_fingerprint(record["fingerprint"], current)

    def start(self, entry: Stage, current: dict[str, Any]) -> None:
        """A stage begins; `attempts` counts its starts under this fingerprint (more than one: it was
        stopped and resumed, and its seconds are the last attempt's)."""
        earlier = self.data.get(entry.name)
        attempts = earlier.get("attempts", 1) + 1 if earlier is not None and not self.begun_otherwise(entry, current) else 1
        self.data[entry.name] = {"fingerprint": current, "finished": False, "attempts": attempts}
        self._save()

    def finish(self, entry: Stage, seconds: float | None) -> None:
        self.data[entry.name] |= {"finished": True, "seconds": seconds}
        self._save()

    def keep(self, names: list[str], settings: RunSettings) -> None:
        """Take these finished stages as up to date under `settings`, though they ran under others: a
        deliberate mix, such as subcells cut under one potential and relaxed under another
        (benchmarks/relax_again.py), which the copy's config.json notes say."""
        for entry in STAGES:
            if entry.name in names and entry.name in self.data:
                self.data[entry.name]["fingerprint"] = fingerprint(entry, settings, self.out, recorded_model(self.out))
        self._save()

    def forget(self, names: list[str]) -> None:
        """Make these stages run again at the next resume (benchmarks/rerun.py --from)."""
        for name in names:
            self.data.pop(name, None)
        self._save()

    def seconds(self) -> dict[str, float]:
        return {name: r["seconds"] for name, r in self.data.items() if r.get("seconds") is not None}

    def resumed(self) -> list[str]:
        """Stages whose seconds do not cover all their work: adopted from before the records, or resumed."""
        return [name for name, r in self.data.items() if r.get("seconds") is None or r.get("attempts", 1) > 1]

    def _save(self) -> None:
        self.out.write_json(RECORDS, {"stages": self.data})


def remove_outputs(out: RunDir, entry: Stage) -> None:
    """Take away what a stage wrote before running it again, so that nothing of the earlier run
    (a checkpoint, a product CIF that will not be made again) is mistaken for the new one's."""
    import shutil

    for name in entry.writes:
        path = out.file(name)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def adopt(out: RunDir, settings: RunSettings) -> StageRecords:
    """Records for a run folder written before stages.json existed: each stage whose output is there is
    taken as run with the folder's own settings on the files it finds (what resuming it always assumed)."""
    records = StageRecords(out)
    if records.exists:
        return records
    for entry in STAGES:
        if not out.has(entry.done_marker):
            break
        records.data[entry.name] = {"fingerprint": fingerprint(entry, settings, out, recorded_model(out)), "finished": True,
                                    "seconds": None}
    records._save()
    return records
