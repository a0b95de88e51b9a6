"""Typed settings of every stage, the named presets, and the flags that set them.

Each stage gets a frozen dataclass whose defaults are the paper's scale (the `standard` preset); a
run is the formula plus one of each. A preset is a list of changes from those defaults. Each CLI flag
overrides exactly one field and is described once, in FLAGS: its name, unit and allowed range serve
both `amorph predict --help` and the validation, so `config.json` always shows what ran and an error
names the flag the user typed. This module imports nothing heavy: the CLI checks a run's settings
with it before torch or pymatgen are loaded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

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

# The --db sources used when none is given, in merge order (names as in amorph.matching.sources).
DEFAULT_DATABASES: tuple[str, ...] = ("builtin", "prototypes")


@dataclass(frozen=True)
class PackingSettings:
    """Stage 1: random packing of the starting cell."""

    target_atoms: int = 100  # the paper uses ~100 atoms
    volume_factor: float = 1.15  # cell volume / reference crystal volume (paper: 1.15)


@dataclass(frozen=True)
class MeltQuenchSettings:
    """Stage 2: NVT melt-quench (hold hot, linear ramp, hold cold); steps are per hold."""

    t_high: float = 2000.0  # K
    t_low: float = 300.0  # K
    steps_per_stage: int = 2500  # each hold; the ramp takes ramp_factor times as many (the paper: equal stages)
    # the ramp's length over a hold's. A cooling liquid runs hot of its target by about its cooling rate
    # times the time its kinetic and potential energy take to even out (tens of fs), whatever the
    # thermostat: a short preset slows only its ramp rather than lengthening every stage
    # (amorph.melt_quench.stage_steps; docs/method.md, "Melt-quench")
    ramp_factor: float = 1.0
    timestep: float = 2.0  # fs
    # thermostat coupling, 1/fs: one over its time constant (100 fs), Langevin's friction or Bussi's 1/tau; a stage
    # shorter than 100 time constants tightens it to 1/100 of the stage (amorph.melt_quench.coupling_time_fs)
    friction: float = 0.01
    thermostat: Thermostat = "bussi"
    # FIRE steps on the packed cell's atoms before the MD (amorph.melt_quench.relax_packing); 0: as packed, as the paper
    start_relax_steps: int = 200
    replicas: int = 1  # independent melt-quench trajectories, run as one batch; their subcells are pooled


@dataclass(frozen=True)
class SubcellSettings:
    """Stage 3: orthorhombic subcells (local motifs) cut from the amorphous cell."""

    d_frac: float = 0.1  # spacing of the fractional grid the subcell bounds sit on
    n_min: int = 2
    n_max: int = 24
    # raise n_max so that the primitive cell of every known polymorph the starting cell has room for
    # fits, up to half the starting cell (amorph.motifs.subcells.size_limit; amorph.start.out_of_room);
    # an explicit --n-max turns this off
    fit_polymorphs: bool = True
    max_subcells: int = 2000  # with adaptive: the most that may be relaxed
    adaptive: bool = False  # --max-subcells auto: relax in rounds until the leader is clear at 95%
    # --more-if-inconclusive: subcells drawn beyond the budget and relaxed in rounds only while the
    # answer is inconclusive after it (amorph.sampling.relax_while_inconclusive); 0: none
    more_if_inconclusive: int = 0
    any_composition: bool = False  # False: only whole multiples of the reduced formula
    all_sizes: bool = False  # False: only sizes that some known polymorph's primitive cell divides
    push_cut_contacts: bool = True  # part atoms the cut brought too close (motifs.subcells); False: as cut, as the paper


@dataclass(frozen=True)
class RelaxSettings:
    """Stage 4: relaxation of positions and cell (FIRE with a Frechet cell filter)."""

    fmax: float = 0.05  # eV/A
    max_steps: int = 500
    fusion_distance: float = 1.5  # A; per pair min(this, 0.6 x sum of covalent radii)
    energy_drop_limit: float = 2.0  # eV/atom below the amorphous cell: beyond this the potential failed
    engine: Engine = "batched"  # batched: many cells per forward pass, MD through the same evaluator; sequential: plain ASE calls


@dataclass(frozen=True)
class RunSettings:
    """Everything that defines one `amorph predict` run."""

    formula: str
    preset: Preset = "standard"
    potential: str = "auto"
    device: Device = "auto"
    seed: int = 0
    databases: tuple[str, ...] = DEFAULT_DATABASES  # --db sources of known polymorphs, in merge order
    rule: PredictionRule = DEFAULT_RULE  # --rule: which rule report.json's `prediction` follows
    potential_check: bool = True  # evaluate the reference crystal before any MD (amorph.md.sanity)
    packing: PackingSettings = field(default_factory=PackingSettings)
    melt_quench: MeltQuenchSettings = field(default_factory=MeltQuenchSettings)
    subcells: SubcellSettings = field(default_factory=SubcellSettings)
    relax: RelaxSettings = field(default_factory=RelaxSettings)

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
            packing=PackingSettings(**data["packing"]),
            # a run from before the packed cell was relaxed started the MD as packed
            melt_quench=MeltQuenchSettings(**{"start_relax_steps": 0, **data["melt_quench"]}),
            subcells=SubcellSettings(**data["subcells"]),
            relax=RelaxSettings(**data["relax"]),
        )


# Presets, as changes from the defaults (which are `standard`). smoke: seconds, for tests; quick: a
# CPU workstation (TiO2 with CHGNet in minutes on 2 cores); standard and paper: the paper's scale, for a GPU.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "packing": {"target_atoms": 32},
        # 250 MD steps, not 100: a cooling liquid releases heat faster than a 200-300 fs ramp lets the
        # thermostat take it out; 32-atom Cu ramps ran +4..+11% above target at 150 steps, +1..+7% at
        # 250 over 4 seeds (docs/method.md, "Melt-quench")
        "melt_quench": {"steps_per_stage": 250},
        "subcells": {"d_frac": 0.25, "n_min": 1, "n_max": 8, "max_subcells": 30},
        "relax": {"max_steps": 200},
    },
    # quick: from the TiO2 lever study, then scored on the whole benchmark (docs/accuracy.md): three
    # times the subcells of the first quick preset (40), whose answers rested on 1-4 matched subcells.
    # 150 FIRE steps, not 100: at 100 most subcells of 12 atoms and more stop unconverged, and
    # slow-relaxing polymorphs (anatase) are lost (docs/accuracy.md). Four melt-quench replicas of 125
    # steps per stage, the MD steps of one cell of 500 (on a CPU replicas run one after another): the
    # subcells of one amorphous cell share its history, and which polymorphs a cell makes varies from
    # cell to cell more than a bootstrap can show with two cells (TiO2 seed 1 named rutile at P 0.99
    # from two cells that made no anatase). Replayed from finished runs (benchmarks/replica_mix.py),
    # four cells of 30 subcells, grown while inconclusive, were right and conclusive on TiO2 in 79-80%
    # of assembled runs and wrong and conclusive in 0-4%; two cells were wrong and conclusive in 13-17%.
    # The quench twice as fast (1700 K in 0.25 ps) made anatase as often per subcell; run, TiO2 was
    # anatase and conclusive on five seeds of five (docs/accuracy.md, "Four replicas")
    "quick": {
        "packing": {"target_atoms": 48},
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


Rule = Literal["positive", "non-negative", "fraction"]


@dataclass(frozen=True)
class Flag:
    """One setting as the user sees it: the flag that sets it, what it means, its unit and range."""

    option: str  # the CLI flag, e.g. "--t-high"; a plain name for settings without a flag
    section: str  # which stage's settings hold it ("" for RunSettings itself)
    name: str  # the field
    meaning: str
    unit: str = ""
    rule: Rule = "positive"
    cli: bool = True

    @property
    def help(self) -> str:
        """The --help text: meaning, then unit."""
        return f"{self.meaning}, {self.unit}." if self.unit else f"{self.meaning}."

    def value(self, settings: RunSettings) -> Any:
        return getattr(getattr(settings, self.section) if self.section else settings, self.name)

    def check(self, value: Any) -> None:
        """Refuse a value outside the flag's range, naming the flag."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if self.rule == "positive" and not (number and value > 0):
            raise AmorphError(f"{self.option} must be a positive number, got {value}")
        if self.rule == "non-negative" and not (number and value >= 0):
            raise AmorphError(f"{self.option} must not be negative, got {value}")
        if self.rule == "fraction" and not (number and 0 < value < 1):
            raise AmorphError(f"{self.option} must lie strictly between 0 and 1, got {value}")


FLAGS: tuple[Flag, ...] = (
    Flag("--seed", "", "seed", "Random seed (packing, MD, subcell sampling)", rule="non-negative"),
    Flag("--atoms", "packing", "target_atoms", "Target number of atoms in the amorphous cell"),
    Flag("--volume-factor", "packing", "volume_factor", "Starting cell volume over the ground-state crystal's (the paper: 1.15)"),
    Flag("--t-high", "melt_quench", "t_high", "Melt temperature", "K"),
    Flag("--t-low", "melt_quench", "t_low", "Quench temperature", "K"),
    Flag("--md-steps", "melt_quench", "steps_per_stage", "MD steps of each hold (hot, cold); the ramp takes --ramp-factor "
         "times as many", rule="positive"),
    Flag("--ramp-factor", "melt_quench", "ramp_factor", "The ramp's MD steps over a hold's: a slower cooling rate lets the "
         "liquid follow its target (the paper: 1)", rule="positive"),
    Flag("--timestep", "melt_quench", "timestep", "MD time step", "fs"),
    Flag("--replicas", "melt_quench", "replicas", "Independent melt-quench runs, batched together; subcells pooled"),
    Flag("--friction", "melt_quench", "friction", "Loosest thermostat coupling, one over its time constant (Langevin friction, "
         "Bussi 1/tau); tightened to 1/100 of a stage on shorter stages", "1/fs"),
    Flag("--start-relax-steps", "melt_quench", "start_relax_steps", "FIRE steps on the packed cell's atoms before the "
         "MD, so that the melt starts at its temperature (0: as packed, as the paper)", rule="non-negative"),
    Flag("--d-frac", "subcells", "d_frac", "Fractional grid spacing of subcell bounds, in (0, 1)", rule="fraction"),
    Flag("--n-min", "subcells", "n_min", "Fewest atoms in a subcell"),
    Flag(
        "--n-max",
        "subcells",
        "n_max",
        "Most atoms in a subcell (default: the preset's, raised to fit the primitive cell of every known polymorph the "
        "starting cell has room for)",
    ),
    Flag(
        "--max-subcells",
        "subcells",
        "max_subcells",
        "Budget: subcells relaxed (random sample if more), or 'auto': relax in rounds until the leading "
        "polymorph is ahead at 95% confidence (at most the preset's budget)",
    ),
    Flag(
        "--more-if-inconclusive",
        "subcells",
        "more_if_inconclusive",
        "Reserve: when the answer is inconclusive after the budget, relax up to this many more subcells, in rounds, "
        "until it is conclusive or the rest could not be expected to settle it (0: never)",
        rule="non-negative",
    ),
    Flag("--fmax", "relax", "fmax", "Relaxation force tolerance", "eV/A"),
    Flag("--relax-steps", "relax", "max_steps", "Most FIRE steps per subcell"),
    Flag("fusion distance", "relax", "fusion_distance", "Closest two atoms may come before a result is called fused", "A", cli=False),
)


def flag(option: str) -> Flag:
    """The Flag of a CLI option, e.g. flag("--t-high")."""
    return next(f for f in FLAGS if f.option == option)


def check_choice(option: str, value: str, kind: Any) -> None:
    """Refuse a value that is not one of a Literal type's choices, naming the flag."""
    choices = get_args(kind)
    if value not in choices:
        raise AmorphError(f"{option} must be {', '.join(choices[:-1])} or {choices[-1]}, got '{value}'")


def validate(settings: RunSettings) -> None:
    """Refuse nonsense numbers before anything runs or is written."""
    for setting in FLAGS:
        setting.check(setting.value(settings))
    p, mq, sc = settings.packing, settings.melt_quench, settings.subcells
    if mq.t_low > mq.t_high:
        raise AmorphError(f"--t-low ({mq.t_low} K) must not exceed --t-high ({mq.t_high} K)")
    if mq.timestep > 10:
        raise AmorphError(f"--timestep {mq.timestep} fs is far too long for atomistic MD (use <= 10 fs)")
    if mq.friction * mq.timestep > 1:  # ASE's Langevin heats instead of cooling past 4; Bussi's tau under one step
        raise AmorphError(
            f"--friction {mq.friction:g}/fs couples the thermostat within one {mq.timestep:g} fs step: at most {1 / mq.timestep:g}/fs"
        )
    if mq.thermostat == "bussi" and p.target_atoms < 2:
        raise AmorphError("--thermostat bussi rescales the cell's kinetic energy: it needs at least 2 atoms")
    if sc.n_min > sc.n_max:
        raise AmorphError(f"--n-min ({sc.n_min}) must not exceed --n-max ({sc.n_max})")
    if p.target_atoms > 5000:
        raise AmorphError(f"--atoms {p.target_atoms} is beyond what this tool is meant for (<= 5000)")
    check_choice("--engine", settings.relax.engine, Engine)
    check_choice("--thermostat", settings.melt_quench.thermostat, Thermostat)
    check_choice("--device", settings.device, Device)
    check_choice("--rule", settings.rule, PredictionRule)


# Settings without a FLAGS entry, named as the user sets them
_OTHER_OPTIONS = {
    "formula": "formula",
    "potential": "--potential",
    "device": "--device",
    "databases": "--db",
    "rule": "--rule",
    "subcells.max_subcells": "--max-subcells",
    "subcells.adaptive": "--max-subcells auto",
    "subcells.any_composition": "--any-composition",
    "subcells.all_sizes": "--all-sizes",
    "subcells.push_cut_contacts": "--keep-cut-contacts",
    "subcells.fit_polymorphs": "--n-max",
    "relax.engine": "--engine",
    "melt_quench.thermostat": "--thermostat",
    "potential_check": "--skip-potential-check",
}


def option_name(key: str) -> str:
    """How a user sets a dotted settings key ("melt_quench.t_high" -> "--t-high")."""
    section, _, name = key.rpartition(".")
    for f in FLAGS:
        if (f.section, f.name) == (section, name):
            return f.option
    return _OTHER_OPTIONS.get(key, key)


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
