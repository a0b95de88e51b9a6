"""What `amorph potentials` lists: every potential amorph knows, whether it is installed, whether its
weights are on this machine (so it runs offline), and, for those that load, their elements, training
data, checksum and whether the batched engine drives them."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

from amorph.errors import AmorphError
from amorph.md.potentials import DEFAULT_MATGL_MODEL, load_potential

BATCHED_FAMILIES = ("chgnet", "matgl", "diep", "sevennet")  # md.evaluators.make_evaluator


@dataclass(frozen=True)
class PotentialStatus:
    """One row of `amorph potentials`."""

    potential: str  # the --potential value
    package: str  # the Python package that holds it
    installed: bool
    offline: bool  # its weights are on this machine: a run needs no network
    elements: int | None  # how many elements it covers (None: not loaded)
    training: str  # level of theory of its training data
    batched: bool  # many cells per forward pass (md.evaluators); else one at a time through ASE
    checksum: str  # of the weights, as config.json records it
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _weights_here(spec: str) -> tuple[bool, str]:
    """Are the weights of `spec` on this machine? (answer, why not), without loading the model."""
    family, _, rest = spec.partition(":")
    if family in ("emt", "chgnet"):
        return True, ""  # EMT is analytic; CHGNet's weights ship in its wheel
    if family == "matgl":
        from amorph.md.potentials import _matgl_cached_files

        cached = _matgl_cached_files(rest or DEFAULT_MATGL_MODEL) is not None
        return cached, "" if cached else "downloads from the Hugging Face hub on first use"
    if family == "sevennet":
        from amorph.md.shipped_potentials import parse_sevennet, sevennet_checkpoint

        try:
            sevennet_checkpoint(parse_sevennet(rest)[0])
        except AmorphError as err:
            return False, str(err)
        return True, ""
    if family == "diep":
        from diep.pretrained import DEFAULT_MODEL_DIR

        complete = all((DEFAULT_MODEL_DIR / f).is_file() for f in ("model.json", "model.pt", "state.pt"))
        return complete, "" if complete else f"model folder {DEFAULT_MODEL_DIR} is incomplete"
    raise ValueError(spec)


# (--potential, package, training data as published, for rows that cannot be loaded here)
KNOWN: tuple[tuple[str, str, str], ...] = (
    ("chgnet", "chgnet", "PBE/PBE+U with the Materials Project's corrections (MPtrj)"),
    (f"matgl:{DEFAULT_MATGL_MODEL}", "matgl", "PBE (MatPES)"),
    ("sevennet:7net-0", "sevenn", "PBE/PBE+U (MPtrj)"),
    ("sevennet:7net-l3i5", "sevenn", "PBE/PBE+U (MPtrj)"),
    ("sevennet:7net-mf-0:pbe", "sevenn", "PBE/PBE+U (MPtrj)"),
    ("sevennet:7net-mf-0:r2scan", "sevenn", "r2SCAN (Materials Project r2SCAN)"),
    ("diep", "diep", "r2SCAN (MatPES)"),
    ("emt", "ase", "none (analytic, fitted to experiment)"),
)


def survey(load: bool = True) -> list[PotentialStatus]:
    """Every known potential's status; with `load`, those whose weights are here are loaded on the
    CPU for their elements, training data and checksum (seconds each)."""
    rows = []
    for spec, package, training in KNOWN:
        installed = _installed(package)
        offline, why = _weights_here(spec) if installed else (False, 'not installed: pip install "amorph[potentials]"'
                                                              if package in ("sevenn", "diep") else "not installed")
        family = spec.partition(":")[0]
        row = PotentialStatus(spec, package, installed, offline, None, training, family in BATCHED_FAMILIES, "", why)
        if load and installed and offline:
            try:
                loaded = load_potential(spec, "cpu")
            except AmorphError as err:
                row = PotentialStatus(**(row.to_dict() | {"offline": False, "note": str(err)}))
            else:
                row = PotentialStatus(**(row.to_dict() | {"elements": len(loaded.elements), "training": loaded.training or training,
                                                         "checksum": loaded.checksum}))
        rows.append(row)
    return rows
