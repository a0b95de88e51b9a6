"""Typed settings of every stage, the named presets, and the flags that set them.

Each stage gets a frozen dataclass whose defaults are the paper's scale (the `standard` preset); a
run is the formula plus one of each. A preset is a list of changes from those defaults. Every
setting is declared once, on its field (`setting(...)`: the flag that sets it, what it means, its
unit and allowed range); FLAGS is read from those declarations and serves `amorph predict --help`
(a test checks each typer option against it), the validation, the mapping from flags to fields
(apply_options, which the CLI and a screen's CSV columns use) and the names errors give. This module
imports nothing heavy: the CLI checks a run's settings with it before torch or pymatgen are loaded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args, get_type_hints

from amorph.errors import AmorphError

Engine = Literal["batched", "sequential"]
# The melt-quench's thermostat (md.dynamics): Langevin, per-atom friction and noise; Bussi, stochastic
# velocity rescaling of the whole cell (Bussi, Donadio & Parrinello 2007), which leaves each atom's
# motion as Newton's equations make it, as the a2c reference code's Nose-Hoover chain does.
Thermostat = Literal["langevin", "bussi"]
Device = Literal["auto", "cpu", "cuda"]
Preset = Literal["smoke", "quick", "standard", "paper"]
# How stage 6 names the polymorph that nucleates first (amorph.matching.rules; every rule is reported)
PredictionRule = Literal["most-frequent", "lowest-energy", "lowest-energy-known"]
# The default, chosen by the benchmark (docs/accuracy.md): of the three, the lowest-energy known
# polymorph among the products was right most often on the high-confidence rows, and its conclusive
# answers were right most often.
DEFAULT_RULE: PredictionRule = "lowest-energy-known"

DEFAULT_FUSION_DISTANCE = 1.5  # A: the closest two atoms may come (per pair at most 0.6 x the sum of covalent radii)

# The --db sources used when none is given, in merge order (names as in amorph.matching.sources).
DEFAULT_DATABASES: tuple[str, ...] = ("builtin", "prototypes")


# How a setting's value is checked: a positive, non-negative or fractional number, one of its Literal
# type's choices, or "free" (a formula, a potential name or a list of sources, each checked where it is used)
ValueRange = Literal["positive", "non-negative", "fraction", "choice", "free"]


@dataclass(frozen=True)
class Declaration:
    """What a field's metadata says of it: the flag that sets it, its meaning, unit and range.

    option: the CLI flag ("--t-high"), or a plain name for a setting without one ("fusion distance");
    inverted: a switch that sets the field False (--keep-cut-contacts sets push_cut_contacts False);
    implies: other fields of the section the flag sets with it (--n-max turns fit_polymorphs off)."""

    option: str
    meaning: str
    unit: str = ""
    allowed: ValueRange = "positive"
    inverted: bool = False
    implies: tuple[tuple[str, Any], ...] = ()


def setting(default: Any, option: str, meaning: str, unit: str = "", allowed: ValueRange = "positive", *,
            inverted: bool = False, implies: tuple[tuple[str, Any], ...] = ()) -> Any:
    """A dataclass field with its Declaration (see Flag)."""
    return field(default=default, metadata={"declaration": Declaration(option, meaning, unit, allowed, inverted, implies)})


@dataclass(frozen=True)
class PackingSettings:
    """Stage 1: random packing of the starting cell."""

    target_atoms: int = setting(100, "--atoms", "Target number of atoms in the amorphous cell")  # the paper: ~100
    volume_factor: float = setting(1.15, "--volume-factor", "Starting cell volume over the ground-state crystal's (the paper: 1.15)")
    # a subcell can become no polymorph longer than the cell it is cut from: the cell grows, up to this
    # many atoms, to hold the known polymorphs that would otherwise be out of its reach (amorph.start.starting_cell)
    grow_to: int = setting(250, "--grow-to", "Most atoms the starting cell may grow to, so that a known polymorph longer than "
                           "it can form (0: it keeps --atoms)", allowed="non-negative")


@dataclass(frozen=True)
class MeltQuenchSettings:
    """Stage 2: NVT melt-quench (hold hot, linear ramp, hold cold); steps are per hold."""

    t_high: float = setting(2000.0, "--t-high", "Melt temperature", "K")
    t_low: float = setting(300.0, "--t-low", "Quench temperature", "K")
    # each hold; the ramp takes ramp_factor times as many (the paper: equal stages)
    steps_per_stage: int = setting(2500, "--md-steps", "MD steps of each hold (hot, cold); the ramp takes --ramp-factor times as many")
    # the ramp's length over a hold's. A cooling liquid runs hot of its target by about its cooling rate
    # times the time its kinetic and potential energy take to even out (tens of fs), whatever the
    # thermostat: a short preset slows only its ramp rather than lengthening every stage
    # (amorph.melt_quench.stage_steps; docs/method.md, "Melt-quench")
    ramp_factor: float = setting(1.0, "--ramp-factor", "The ramp's MD steps over a hold's: a slower cooling rate lets the "
                                 "liquid follow its target (the paper: 1)")
    timestep: float = setting(2.0, "--timestep", "MD time step", "fs")
    # thermostat coupling, 1/fs: one over its time constant (100 fs), Langevin's friction or Bussi's 1/tau; a stage
    # shorter than 100 time constants tightens it to 1/100 of the stage (amorph.melt_quench.coupling_time_fs)
    friction: float = setting(0.01, "--friction", "Loosest thermostat coupling, one over its time constant (Langevin friction, "
                              "Bussi 1/tau); tightened to 1/100 of a stage on shorter stages", "1/fs")
    thermostat: Thermostat = setting("bussi", "--thermostat", "langevin: friction and noise on every atom; bussi: the whole cell's "
                                     "velocities rescaled (stochastic velocity rescaling), each atom's motion left Newtonian",
                                     allowed="choice")
    # FIRE steps on the packed cell's atoms before the MD (amorph.melt_quench.relax_packing); 0: as packed, as the paper
    start_relax_steps: int = setting(200, "--start-relax-steps", "FIRE steps on the packed cell's atoms before the MD, so that "
                                     "the melt starts at its temperature (0: as packed, as the paper)", allowed="non-negative")
    # independent melt-quench trajectories, run as one batch; their subcells are pooled
    replicas: int = setting(1, "--replicas", "Independent melt-quench runs, batched together; subcells pooled")


@dataclass(frozen=True)
class SubcellSettings:
    """Stage 3: orthorhombic subcells (local motifs) cut from the amorphous cell."""

    d_frac: float = setting(0.1, "--d-frac", "Fractional grid spacing of subcell bounds, in (0, 1)", allowed="fraction")
    n_min: int = setting(2, "--n-min", "Fewest atoms in a subcell")
    # an explicit --n-max is taken as it is: it turns fit_polymorphs off
    n_max: int = setting(24, "--n-max", "Most atoms in a subcell (default: the preset's, raised to fit the primitive cell of every "
                         "known polymorph the starting cell has room for)", implies=(("fit_polymorphs", False),))
    # raise n_max so that the primitive cell of every known polymorph the starting cell has room for
    # fits, up to half the starting cell (amorph.motifs.subcells.size_limit; amorph.start.out_of_room)
    fit_polymorphs: bool = setting(True, "--n-max", "Raise the largest subcell to fit the known polymorphs (off with --n-max)",
                                   allowed="free")
    # with adaptive: the most that may be relaxed
    max_subcells: int = setting(2000, "--max-subcells", "Budget: subcells relaxed (random sample if more), or 'auto': relax in "
                                "rounds until the leading polymorph is ahead at 95% confidence (at most the preset's budget)")
    adaptive: bool = setting(False, "--max-subcells auto", "Relax in rounds until the leader is clear at 95%", allowed="free")
    # subcells drawn beyond the budget and relaxed in rounds only while the answer is inconclusive
    # after it (amorph.sampling.relax_while_inconclusive); 0: none
    more_if_inconclusive: int = setting(0, "--more-if-inconclusive", "Reserve: when the answer is inconclusive after the budget, "
                                        "relax up to this many more subcells, in rounds, until it is conclusive or the rest could "
                                        "not be expected to settle it (0: never)", allowed="non-negative")
    any_composition: bool = setting(False, "--any-composition", "Keep subcells of any composition, not only multiples of the formula",
                                    allowed="free")
    all_sizes: bool = setting(False, "--all-sizes", "Keep every subcell size; by default only sizes some known polymorph's "
                              "primitive cell divides", allowed="free")
    # part atoms the cut brought too close (motifs.subcells); False: as cut, as the paper
    push_cut_contacts: bool = setting(True, "--keep-cut-contacts", "Relax subcells exactly as cut, as the paper does; by default "
                                      "atoms that the new periodic boundaries bring too close are pushed apart first",
                                      allowed="free", inverted=True)


@dataclass(frozen=True)
class RelaxSettings:
    """Stage 4: relaxation of positions and cell (FIRE with a Frechet cell filter)."""

    fmax: float = setting(0.05, "--fmax", "Relaxation force tolerance", "eV/A")
    max_steps: int = setting(500, "--relax-steps", "Most FIRE steps per subcell")
    # per pair min(this, 0.6 x sum of covalent radii)
    fusion_distance: float = setting(DEFAULT_FUSION_DISTANCE, "fusion distance", "Closest two atoms may come before a result is called fused", "A")
    energy_drop_limit: float = setting(2.0, "energy drop limit", "How far below the amorphous cell a relaxed subcell may fall "
                                       "before the potential is taken to have failed", "eV/atom")
    # batched: many cells per forward pass, MD through the same evaluator; sequential: plain ASE calls
    engine: Engine = setting("batched", "--engine", "batched: many subcells per forward pass, and MD forces from the same engine "
                             "(matgl, CHGNet); sequential: the plain ASE calculator, one cell per call, for MD and relaxation",
                             allowed="choice")


@dataclass(frozen=True)
class MatchingSettings:
    """Stage 5 (and the naming of stage 4's rounds): how products are compared with known polymorphs.

    The StructureMatcher tolerances are pymatgen's defaults (fractional length, site and angle
    tolerances); products come out of a universal potential strained by a few per cent, which these
    absorb (benchmarks/matching_tolerance.py measures what looser ones change). A product's space
    group is the most symmetric spglib finds over the symprec ladder (A), so a slightly distorted
    crystal is still named by its own group (matching.symmetry)."""

    ltol: float = setting(0.2, "matching.ltol", "StructureMatcher fractional length tolerance")
    stol: float = setting(0.3, "matching.stol", "StructureMatcher site tolerance, in units of (volume per site)^(1/3)")
    angle_tol: float = setting(5.0, "matching.angle_tol", "StructureMatcher angle tolerance", "degrees")
    # tried in turn; checked in validate() (positive, increasing)
    symprec: tuple[float, ...] = setting((0.01, 0.05, 0.1), "matching.symprec", "spglib tolerances tried in turn", "A", allowed="free")


# What a run did before a field existed, where that differs from today's default: a run folder
# recorded without the field is read back (and its stages compared, amorph.stages) with these. Before
# --grow-to the cell kept its --atoms; before --start-relax-steps the MD started from the packing.
AS_BEFORE: dict[str, dict[str, Any]] = {"packing": {"grow_to": 0}, "melt_quench": {"start_relax_steps": 0}}


@dataclass(frozen=True)
class RunSettings:
    """Everything that defines one `amorph predict` run."""

    formula: str = field(metadata={"declaration": Declaration("formula", "Chemical formula", allowed="free")})
    # the CLI's default is quick without a GPU, standard with one (cli.main.predict)
    preset: Preset = setting("standard", "--preset", "smoke | quick | standard | paper. Default: quick without a GPU, standard "
                             "with one", allowed="choice")
    # checked by md.potentials.check_potential_spec
    potential: str = setting("auto", "--potential", "auto | chgnet | emt | matgl:MODEL | sevennet[:MODEL[:MODAL]] | diep | "
                             "ase:MODULE:FACTORY, each optionally +d3 (D3(BJ) dispersion); `amorph potentials` lists them",
                             allowed="free")
    device: Device = setting("auto", "--device", "Where the potential runs", allowed="choice")
    seed: int = setting(0, "--seed", "Random seed (packing, MD, subcell sampling)", allowed="non-negative")
    # --db sources of known polymorphs, in merge order; checked by matching.sources
    databases: tuple[str, ...] = setting(DEFAULT_DATABASES, "--db", "Source of known polymorphs, repeatable, merged in order: "
                                         "builtin | mp | prototypes | DIR | FILE.db", allowed="free")
    rule: PredictionRule = setting(DEFAULT_RULE, "--rule", "Which rule names the first polymorph in report.json's `prediction` "
                                   "(all are reported): most-frequent (the most frequent known polymorph), lowest-energy (the "
                                   "lowest-energy product, the a2c reference code's) or lowest-energy-known (the lowest-energy "
                                   "known one, the default)", allowed="choice")
    # evaluate the reference crystal before any MD (amorph.md.sanity)
    potential_check: bool = setting(True, "--skip-potential-check", "Do not check the potential on the formula's reference "
                                    "crystal before the melt-quench", allowed="free", inverted=True)
    packing: PackingSettings = field(default_factory=PackingSettings)
    melt_quench: MeltQuenchSettings = field(default_factory=MeltQuenchSettings)
    subcells: SubcellSettings = field(default_factory=SubcellSettings)
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    matching: MatchingSettings = field(default_factory=MatchingSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings:
        return cls(
            formula=data["formula"],
            preset=data["preset"],
            potential=data["potential"],
            device=data["device"],
            seed=data["seed"],
            databases=tuple(data.get("databases", DEFAULT_DATABASES)),
            rule=data.get("rule", "most-frequent"),  # a run from before --rule named the most frequent
            potential_check=data.get("potential_check", True),
            packing=PackingSettings(**{**AS_BEFORE["packing"], **data["packing"]}),
            melt_quench=MeltQuenchSettings(**{**AS_BEFORE["melt_quench"], **data["melt_quench"]}),
            subcells=_subcells_as_run(data["subcells"]),
            relax=RelaxSettings(**data["relax"]),
            # a run from before the section matched with these defaults, which were then fixed in code
            matching=MatchingSettings(**_as_tuples(data.get("matching", {}))),
        )


def _subcells_as_run(section: dict[str, Any]) -> SubcellSettings:
    """A run's subcell settings; one made through the Python API before validate() refused 'auto'
    with a reserve ran without the reserve, and is read back as it ran."""
    if section.get("adaptive") and section.get("more_if_inconclusive"):
        section = {**section, "more_if_inconclusive": 0}
    return SubcellSettings(**section)


def _as_tuples(section: dict[str, Any]) -> dict[str, Any]:
    """A settings section read back from JSON, its lists as the tuples the dataclass holds."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


# Presets, as changes from the defaults (which are `standard`). smoke: seconds, for tests; quick: a
# CPU workstation (TiO2 with CHGNet in minutes on 2 cores); standard and paper: the paper's scale, for a GPU.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "packing": {"target_atoms": 32, "grow_to": 0},
        # 250 MD steps, not 100: a cooling liquid releases heat faster than a 200-300 fs ramp lets the
        # thermostat take it out; 32-atom Cu ramps ran +4..+11% above target at 150 steps, +1..+7% at
        # 250 over 4 seeds (docs/method.md, "Melt-quench")
        "melt_quench": {"steps_per_stage": 250},
        "subcells": {"d_frac": 0.25, "n_min": 1, "n_max": 8, "max_subcells": 30},
        "relax": {"max_steps": 200},
    },
    # quick: what a CPU affords in about 10 minutes. 120 subcells (+120 while inconclusive): answers
    # resting on a handful of matched subcells were not reproducible. 150 FIRE steps: at 100 most
    # subcells of 12 atoms and more stop unconverged. Four short melt-quench replicas rather than one
    # long one: which polymorphs an amorphous cell makes varies from cell to cell more than a
    # bootstrap over one cell's subcells can show. The measurements behind each choice are in
    # docs/accuracy-log.md ("Four replicas", "The relaxation's step limit") and docs/method.md.
    "quick": {
        # the cell does not grow for polymorphs longer than it: at 105 atoms (what growth gives MoS2) 2H
        # formed in 1 subcell of 148 and a stacking polytype won the tie, at twice the time (docs/method.md)
        "packing": {"target_atoms": 48, "grow_to": 0},
        # the ramp twice a hold (250 steps, 3.4 K/fs): at 125 steps (6.8 K/fs) ramps ran +3..+12% hot over
        # 28 benchmark runs (docs/method.md, "Melt-quench")
        "melt_quench": {"steps_per_stage": 125, "ramp_factor": 2.0, "replicas": 4},
        "subcells": {"n_max": 12, "max_subcells": 120, "more_if_inconclusive": 120},
        "relax": {"max_steps": 150},
    },
    "standard": {},
    "paper": {
        "subcells": {"d_frac": 0.05, "max_subcells": 10000},
        "relax": {"max_steps": 1000},
    },
}
if set(PRESETS) != set(get_args(Preset)):  # checked once, at import: the names --preset offers are these
    raise ImportError(f"PRESETS {sorted(PRESETS)} and Preset {get_args(Preset)} name different presets")


PRESET_PURPOSE = {"smoke": "tests (Cu/EMT < 1 min)", "quick": "default without a GPU",
                  "standard": "default with a GPU (not yet timed on one)", "paper": "the paper's scale"}


def preset_table() -> str:
    """The README's preset table, from PRESETS (a test keeps the README's copy the same)."""
    rows = ["| preset | atoms | melt-quench replicas x MD steps (hold, ramp, hold) | d_frac | subcell atoms | subcells | relax steps | meant for |",
            "|---|---|---|---|---|---|---|---|"]
    for name in PRESETS:
        s = preset_settings("X", name)
        mq, sc = s.melt_quench, s.subcells
        ramp = round(mq.steps_per_stage * mq.ramp_factor)
        reserve = f" (+{sc.more_if_inconclusive} while inconclusive)" if sc.more_if_inconclusive else ""
        grows = f" (up to {s.packing.grow_to})" if s.packing.grow_to > s.packing.target_atoms else ""
        rows.append(f"| {name} | {s.packing.target_atoms}{grows} | {mq.replicas} x {mq.steps_per_stage}/{ramp}/{mq.steps_per_stage} | "
                    f"{sc.d_frac:g} | {sc.n_min}-{sc.n_max} | {sc.max_subcells}{reserve} | {s.relax.max_steps} | {PRESET_PURPOSE[name]} |")
    return "\n".join(rows)


def preset_settings(formula: str, preset: str, **top: Any) -> RunSettings:
    """The settings of a named preset for a formula; `top` sets potential, device, seed or databases."""
    if preset not in PRESETS:
        raise AmorphError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    settings = RunSettings(formula=formula, preset=preset, **top)  # type: ignore[arg-type]
    for section, changes in PRESETS[preset].items():
        settings = override(settings, section, **changes)
    return settings


def override(settings: RunSettings, section: str, **values: Any) -> RunSettings:
    """Replace fields of one stage's settings, skipping values left as None (flag not given)."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return settings
    return replace(settings, **{section: replace(getattr(settings, section), **given)})


NUMBER_RANGES: tuple[ValueRange, ...] = ("positive", "non-negative", "fraction")
SECTIONS: tuple[str, ...] = ("packing", "melt_quench", "subcells", "relax", "matching")


@dataclass(frozen=True)
class Flag:
    """One setting as the user sees it, read from its field's Declaration: the flag that sets it, what
    it means, its unit and range, and the field it sets."""

    section: str  # which stage's settings hold it ("" for RunSettings itself)
    name: str  # the field
    declaration: Declaration
    kind: Any  # the field's type (a Literal's choices for the range "choice")

    @property
    def option(self) -> str:
        return self.declaration.option

    @property
    def allowed(self) -> ValueRange:
        return self.declaration.allowed

    @property
    def cli(self) -> bool:
        """Set by a flag of `amorph predict` (a plain name is a setting of the Python API and config.json only)."""
        return self.option.startswith("--") and " " not in self.option and self.name not in {"fit_polymorphs", "adaptive"}

    @property
    def help(self) -> str:
        """The --help text: meaning, then unit."""
        d = self.declaration
        return f"{d.meaning}, {d.unit}." if d.unit else f"{d.meaning}."  # meanings end without a full stop

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    def value(self, settings: RunSettings) -> Any:
        return getattr(getattr(settings, self.section) if self.section else settings, self.name)

    def check(self, value: Any) -> None:
        """Refuse a value outside the flag's range, naming the flag."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if self.allowed == "positive" and not (number and value > 0):
            raise AmorphError(f"{self.option} must be a positive number, got {value}")
        if self.allowed == "non-negative" and not (number and value >= 0):
            raise AmorphError(f"{self.option} must not be negative, got {value}")
        if self.allowed == "fraction" and not (number and 0 < value < 1):
            raise AmorphError(f"{self.option} must lie strictly between 0 and 1, got {value}")
        if self.allowed == "choice":
            check_choice(self.option, value, self.kind)


def _declared(cls: type, section: str) -> list[Flag]:
    hints = get_type_hints(cls)
    return [Flag(section, f.name, f.metadata["declaration"], hints[f.name]) for f in fields(cls) if "declaration" in f.metadata]


FLAGS: tuple[Flag, ...] = tuple(
    _declared(RunSettings, "") + [flag for section in SECTIONS for flag in _declared(type(getattr(RunSettings("x"), section)), section)]
)


def flag(option: str) -> Flag:
    """The Flag of a CLI option, e.g. flag("--t-high") (the field it sets, where one flag sets two)."""
    return next(f for f in FLAGS if f.option == option and f.cli)


def check_choice(option: str, value: str, kind: Any) -> None:
    """Refuse a value that is not one of a Literal type's choices, naming the flag."""
    choices = get_args(kind)
    if value not in choices:
        raise AmorphError(f"{option} must be {', '.join(choices[:-1])} or {choices[-1]}, got '{value}'")


def apply_options(settings: RunSettings, values: dict[str, Any]) -> RunSettings:
    """Set fields by the flags that name them, {"--t-high": 1800, "--keep-cut-contacts": True, ...};
    None (a flag not given) and False for a switch leave a field as it is. A switch that turns a
    setting off (inverted) sets its field False; a flag's `implies` sets its other fields with it."""
    for option, value in values.items():
        if value is None:
            continue
        setting = flag(option)
        if isinstance(value, bool) and not value:  # a switch not given
            continue
        if setting.declaration.inverted:
            value = False
        extra = dict(setting.declaration.implies)
        if setting.section:
            settings = override(settings, setting.section, **{setting.name: value}, **extra)
        else:
            settings = replace(settings, **{setting.name: value})
    return settings


def validate(settings: RunSettings) -> None:
    """Refuse nonsense before anything runs or is written: each declared setting's range, then the
    rules between settings. The Python API (amorph.pipeline.prepare) and the CLI both run this."""
    for setting in FLAGS:
        setting.check(setting.value(settings))
    p, mq, sc = settings.packing, settings.melt_quench, settings.subcells
    if mq.t_low > mq.t_high:
        raise AmorphError(f"--t-low ({mq.t_low} K) must not exceed --t-high ({mq.t_high} K)")
    if mq.timestep > MAX_TIMESTEP_FS:
        raise AmorphError(f"--timestep {mq.timestep} fs is far too long for atomistic MD (use <= {MAX_TIMESTEP_FS:g} fs)")
    if mq.friction * mq.timestep > 1:  # ASE's Langevin heats instead of cooling past 4; Bussi's tau under one step
        raise AmorphError(
            f"--friction {mq.friction:g}/fs couples the thermostat within one {mq.timestep:g} fs step: at most {1 / mq.timestep:g}/fs"
        )
    if mq.thermostat == "bussi" and p.target_atoms < 2:
        raise AmorphError("--thermostat bussi rescales the cell's kinetic energy: it needs at least 2 atoms")
    if sc.n_min > sc.n_max:
        raise AmorphError(f"--n-min ({sc.n_min}) must not exceed --n-max ({sc.n_max})")
    if p.target_atoms > MAX_ATOMS:
        raise AmorphError(f"--atoms {p.target_atoms} is beyond what this tool is meant for (<= {MAX_ATOMS})")
    if sc.adaptive and sc.more_if_inconclusive:  # auto stops by its own rule: it has no reserve to draw on
        raise AmorphError("--more-if-inconclusive needs a whole-number --max-subcells; 'auto' stops by its own rule")
    ladder = settings.matching.symprec
    if not ladder or any(not (isinstance(t, (int, float)) and t > 0) for t in ladder) or list(ladder) != sorted(ladder):
        raise AmorphError(f"matching.symprec must be positive tolerances in increasing order, got {list(ladder)}")


MAX_TIMESTEP_FS = 10.0  # beyond this no atomistic MD is stable
MAX_ATOMS = 5000  # amorphous cells beyond this are not what a2c's method (or this tool) is for


def option_name(key: str) -> str:
    """How a user sets a dotted settings key ("melt_quench.t_high" -> "--t-high")."""
    return next((f.option for f in FLAGS if f.key == key), key)


def flat_settings(data: dict[str, Any]) -> dict[str, Any]:
    """RunSettings.to_dict() (or config.json's "settings") as {"section.name": value}, lists as tuples."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= {f"{key}.{k}": tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        else:
            out[key] = tuple(value) if isinstance(value, list) else value
    return out


NOT_RESULTS = frozenset({"preset", "potential_check"})  # a label and a check: neither changes what a run finds


def differences(recorded: RunSettings, given: RunSettings) -> list[str]:
    """Every setting that differs between a run's config.json and the one asked for, as
    "--seed 0 -> 5". The preset's name is left out (only the values it sets count); everything
    else can change the result, or which rule report.json names."""
    old, new = flat_settings(recorded.to_dict()), flat_settings(given.to_dict())
    return [
        f"{option_name(key)} {old.get(key)} -> {new.get(key)}"
        for key in sorted(set(old) | set(new))
        if key not in NOT_RESULTS and old.get(key) != new.get(key)
    ]
