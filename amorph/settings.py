"""Typed settings of every stage, and the named presets that fill them.

Each stage gets a frozen dataclass; a run is the formula plus one of each. Each CLI flag
overrides exactly one field (see cli/main.py), so `config.json` always shows what ran.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from amorph.errors import AmorphError


# matching.sources.DEFAULT_SOURCES says the same; spelled here too so settings stay free of heavy imports
# (tests/test_sources.py checks that the two agree).
DEFAULT_DATABASES: tuple[str, ...] = ("builtin", "prototypes")


@dataclass(frozen=True)
class PackingSettings:
    """Stage 1: random packing of the starting cell."""

    target_atoms: int = 100  # the paper uses ~100 atoms
    volume_factor: float = 1.15  # cell volume / reference crystal volume (paper: 1.15)


@dataclass(frozen=True)
class MeltQuenchSettings:
    """Stage 2: NVT melt-quench (hold hot, linear ramp, hold cold); steps are per stage."""

    t_high: float = 2000.0  # K
    t_low: float = 300.0  # K
    steps_per_stage: int = 2500  # three stages: hold, ramp, hold
    timestep: float = 2.0  # fs
    friction: float = 0.01  # Langevin friction, 1/fs (relaxation time 100 fs)
    replicas: int = 1  # independent melt-quench trajectories, run as one batch; their subcells are pooled


@dataclass(frozen=True)
class SubcellSettings:
    """Stage 3: orthorhombic subcells (local motifs) cut from the amorphous cell."""

    d_frac: float = 0.1  # spacing of the fractional grid the subcell bounds sit on
    n_min: int = 2
    n_max: int = 24
    max_subcells: int = 2000  # with adaptive: the most that may be relaxed
    adaptive: bool = False  # --max-subcells auto: relax in rounds until the leader is clear at 95%
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
    engine: str = "batched"  # batched: many cells per forward pass, MD through the same evaluator; sequential: plain ASE calls


@dataclass(frozen=True)
class RunSettings:
    """Everything that defines one `amorph predict` run."""

    formula: str
    preset: str = "standard"
    potential: str = "auto"
    device: str = "auto"
    seed: int = 0
    databases: tuple[str, ...] = DEFAULT_DATABASES  # --db sources of known polymorphs, in merge order
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
            packing=PackingSettings(**data["packing"]),
            melt_quench=MeltQuenchSettings(**data["melt_quench"]),
            subcells=SubcellSettings(**data["subcells"]),
            relax=RelaxSettings(**data["relax"]),
        )


# Presets. smoke: seconds, for tests; quick: a CPU workstation (TiO2 with CHGNet in < 20 min
# on 2 cores); standard and paper: the paper's scale, meant for a GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        packing=PackingSettings(target_atoms=32),
        melt_quench=MeltQuenchSettings(steps_per_stage=100),
        subcells=SubcellSettings(d_frac=0.25, n_min=1, n_max=8, max_subcells=30),
        relax=RelaxSettings(fmax=0.05, max_steps=200),
    ),
    "quick": dict(
        packing=PackingSettings(target_atoms=48),
        melt_quench=MeltQuenchSettings(steps_per_stage=200),
        subcells=SubcellSettings(d_frac=0.1, n_min=2, n_max=12, max_subcells=40),
        relax=RelaxSettings(fmax=0.05, max_steps=250),
    ),
    "standard": dict(
        packing=PackingSettings(target_atoms=100),
        melt_quench=MeltQuenchSettings(steps_per_stage=2500),
        subcells=SubcellSettings(d_frac=0.1, n_min=2, n_max=24, max_subcells=2000),
        relax=RelaxSettings(fmax=0.05, max_steps=500),
    ),
    "paper": dict(
        packing=PackingSettings(target_atoms=100),
        melt_quench=MeltQuenchSettings(steps_per_stage=2500),
        subcells=SubcellSettings(d_frac=0.05, n_min=2, n_max=24, max_subcells=10000),
        relax=RelaxSettings(fmax=0.05, max_steps=1000),
    ),
}


def preset_settings(formula: str, preset: str, **top: Any) -> RunSettings:
    """The settings of a named preset for a formula."""
    if preset not in PRESETS:
        raise AmorphError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    return RunSettings(formula=formula, preset=preset, **PRESETS[preset], **top)


def override(settings: RunSettings, section: str, **values: Any) -> RunSettings:
    """Replace fields of one stage's settings, skipping values left as None (flag not given)."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return settings
    return replace(settings, **{section: replace(getattr(settings, section), **given)})


def validate(settings: RunSettings) -> None:
    """Refuse nonsense numbers before anything runs or is written."""
    p, mq, sc, rx = settings.packing, settings.melt_quench, settings.subcells, settings.relax

    def positive(name: str, value: float) -> None:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise AmorphError(f"{name} must be a positive number, got {value}")

    positive("--atoms", p.target_atoms)
    positive("volume factor", p.volume_factor)
    positive("--t-high", mq.t_high)
    positive("--t-low", mq.t_low)
    positive("--timestep", mq.timestep)
    positive("--replicas", mq.replicas)
    positive("friction", mq.friction)
    positive("--fmax", rx.fmax)
    positive("--n-min", sc.n_min)
    positive("--n-max", sc.n_max)
    positive("--max-subcells", sc.max_subcells)
    positive("--relax-steps", rx.max_steps)
    positive("fusion distance", rx.fusion_distance)
    if mq.steps_per_stage < 0:
        raise AmorphError(f"--md-steps must not be negative, got {mq.steps_per_stage}")
    if mq.t_low > mq.t_high:
        raise AmorphError(f"--t-low ({mq.t_low} K) must not exceed --t-high ({mq.t_high} K)")
    if mq.timestep > 10:
        raise AmorphError(f"--timestep {mq.timestep} fs is far too long for atomistic MD (use <= 10 fs)")
    if not 0 < sc.d_frac < 1:
        raise AmorphError(f"--d-frac must lie strictly between 0 and 1, got {sc.d_frac}")
    if sc.n_min > sc.n_max:
        raise AmorphError(f"--n-min ({sc.n_min}) must not exceed --n-max ({sc.n_max})")
    if p.target_atoms > 5000:
        raise AmorphError(f"--atoms {p.target_atoms} is beyond what this tool is meant for (<= 5000)")
    if rx.engine not in ("batched", "sequential"):
        raise AmorphError(f"--engine must be batched or sequential, got '{rx.engine}'")
    if settings.device not in ("auto", "cpu", "cuda"):
        raise AmorphError(f"--device must be auto, cpu or cuda, got '{settings.device}'")
    if settings.seed < 0:
        raise AmorphError(f"--seed must be a non-negative integer, got {settings.seed}")
