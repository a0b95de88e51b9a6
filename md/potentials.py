"""Named interatomic potentials behind one interface: an ASE calculator plus what it covers.

`--potential` takes: `emt`, `chgnet`, `matgl:MODEL` (a matgl model name or a local directory),
`sevennet[:MODEL[:MODAL]]` and `diep[:DIR]` (weights shipped in their packages: md.shipped_potentials),
`ase:MODULE:FACTORY` (any installed ASE calculator: md.ase_potential) and `auto` (the default matgl
model when cached or downloadable, else chgnet); any of them with `+d3` appended gets Grimme's
D3(BJ) dispersion added (md.dispersion).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ase.calculators.calculator import Calculator

from amorph.errors import AmorphError
from amorph.network import PROBE_SECONDS, tcp_reachable
from amorph.settings import Device, check_choice

# matgl's universal potential trained on MatPES (PBE); name as matgl's own examples give it
# (matgl/ext/alchmtk.py in matgl 4.1.2 loads "TensorNet-MatPES-PBE-v2025.1-PES").
DEFAULT_MATGL_MODEL = "TensorNet-MatPES-PBE-v2025.1-PES"
MATGL_HF_ORG = "materialyze"
CHGNET_VERSION = "0.3.0"
EMT_METALS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"})
D3_SUFFIX = "+d3"  # md.dispersion; kept here so a spec is parsed without importing torch


class TorchModel(Protocol):
    """What amorph needs of a loaded torch model (a matgl Potential or a CHGNet): a torch Module.

    Each batched evaluator (md.evaluators) also reads its own backend's attributes (a matgl model's
    cutoff and element types, CHGNet's graph converter and layers); those are typed Any here rather
    than copied from two libraries that do not annotate them.
    """

    def eval(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __getattr__(self, name: str) -> Any: ...


@dataclass
class LoadedPotential:
    """A ready-to-use potential: a calculator factory and the facts config.json records."""

    name: str  # what the run used, e.g. "chgnet", "matgl:TensorNet-MatPES-PBE-v2025.1-PES"
    description: str
    elements: frozenset[str]
    device: str
    checksum: str  # sha256 of the weights (state_dict tensors), "analytic" for EMT
    make_calculator: Callable[[], Calculator]
    model: TorchModel | None = None  # the torch model, for the batched evaluators; None for EMT
    notes: list[str] = field(default_factory=list)
    dispersion: bool = False  # D3(BJ) added on top (md.dispersion): make_calculator includes it
    version: str = ""  # the package that holds the model, with its version, e.g. "chgnet 0.4.2"
    training: str = ""  # the level of theory of its training data, e.g. "PBE/PBE+U (MPtrj)"
    modal: str | None = None  # a multi-fidelity model's head (SevenNet-MF), as the model names it

    @property
    def base_name(self) -> str:
        """The potential without its dispersion correction: what decides the batched evaluator."""
        return self.name.removesuffix(D3_SUFFIX) if self.dispersion else self.name

    def torch_model(self) -> TorchModel:
        """The torch model, for an evaluator that batches it."""
        if self.model is None:
            raise ValueError(f"potential '{self.name}' has no torch model to batch")
        return self.model

    def check_covers(self, elements: list[str]) -> None:
        """Refuse a formula with elements the potential was not made for."""
        missing = sorted(set(elements) - self.elements)
        if missing:
            raise AmorphError(f"potential '{self.name}' does not cover element(s) {', '.join(missing)}")


# Device files that a GPU driver makes (NVIDIA; AMD ROCm; CUDA under WSL2). Without any of them torch
# cannot see a GPU, and asking torch costs its import (seconds), before a typo could be answered.
GPU_DRIVER_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def gpu_driver_present() -> bool:
    return any(os.path.exists(p) for p in GPU_DRIVER_FILES)


def resolve_device(device: str) -> str:
    """'auto' -> cuda when a GPU is visible, else cpu; 'cuda' without a GPU is an error."""
    check_choice("--device", device, Device)
    if device == "auto" and not gpu_driver_present():
        return "cpu"
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise AmorphError("--device cuda was asked for, but torch sees no CUDA GPU")
    return device


def weights_checksum(module: TorchModel) -> str:
    """sha256 over a torch module's parameters and buffers, in key order."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def load_potential(spec: str, device: str = "auto") -> LoadedPotential:
    """Turn a `--potential` value into a LoadedPotential; AmorphError on anything unusable."""
    spec = spec.strip()
    check_potential_spec(spec)
    if spec.endswith(D3_SUFFIX):
        return with_d3(load_potential(spec.removesuffix(D3_SUFFIX), device))
    if spec == "emt":
        return _load_emt()
    dev = resolve_device(device)
    if spec == "chgnet":
        return _load_chgnet(dev)
    if spec.startswith("matgl:"):
        return _load_matgl(spec.removeprefix("matgl:") or DEFAULT_MATGL_MODEL, dev)
    if spec == "matgl":
        return _load_matgl(DEFAULT_MATGL_MODEL, dev)
    family, _, rest = spec.partition(":")
    if family == "sevennet":
        from amorph.md.shipped_potentials import load_sevennet

        return load_sevennet(rest, dev)
    if family == "diep":
        from amorph.md.shipped_potentials import load_diep

        return load_diep(rest, dev)
    if family == "ase":
        from amorph.md.ase_potential import load_ase

        return load_ase(rest, dev)
    return _load_auto(dev)  # check_potential_spec admits nothing else


def _load_emt() -> LoadedPotential:
    from ase.calculators.emt import EMT

    return LoadedPotential(
        name="emt",
        description="ASE EMT (effective medium theory, Jacobsen et al. 1996); for tests and demos",
        elements=EMT_METALS,
        device="cpu",
        checksum="analytic",
        make_calculator=EMT,
        version=f"ase {_version('ase')}",
        training="none (analytic, fitted to experiment)",
    )


def _load_chgnet(device: str) -> LoadedPotential:
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.core import Element

    with quiet():
        model = CHGNet.load(model_name=CHGNET_VERSION, use_device=device, verbose=False)

    def make() -> Calculator:
        with quiet():
            return CHGNetCalculator(model=model, use_device=device)

    # CHGNet 0.3.0 was trained on MPtrj, which covers Z = 1..94.
    elements = frozenset(el.symbol for el in Element if el.Z <= 94)
    return LoadedPotential(
        name="chgnet",
        description=f"CHGNet {CHGNET_VERSION} (Deng et al. 2023), weights from the chgnet package",
        elements=elements,
        device=device,
        checksum=weights_checksum(model),
        make_calculator=make,
        model=model,
        version=f"chgnet {_version('chgnet')}",
        training="PBE/PBE+U with the Materials Project's corrections (MPtrj)",
    )


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


def _matgl_cached_files(name: str) -> Path | None:
    """The snapshot directory of a matgl model already in the local cache, or None."""
    from huggingface_hub import try_to_load_from_cache
    from matgl.config import MATGL_CACHE

    repo = name if "/" in name else f"{MATGL_HF_ORG}/{name}"
    found = [try_to_load_from_cache(repo, fn, cache_dir=str(MATGL_CACHE)) for fn in ("model.json", "model.pt", "state.pt")]
    if all(isinstance(f, str) for f in found):
        return Path(found[0]).parent  # type: ignore[arg-type]
    return None


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Can the Hugging Face hub be reached? A TCP connect with a short timeout.

    matgl's own loader retries for about a minute when offline; this answers in seconds.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return tcp_reachable(host, 443, timeout)


def matgl_directory(name: str) -> Path | None:
    """The local directory a matgl model name points to (None for a hub name); AmorphError when
    it lacks the files matgl saves. Checked before matgl is imported, so a wrong path answers at once."""
    local = Path(name).expanduser()
    if not (os.sep in name or name.startswith(".") or local.exists()):
        return None
    missing = [fn for fn in ("model.json", "model.pt", "state.pt") if not (local / fn).is_file()]
    if missing:
        raise AmorphError(f"matgl model directory '{name}' is missing {', '.join(missing)}")
    return local


def check_potential_spec(spec: str) -> None:
    """Refuse a `--potential` value that cannot name a potential, without loading anything."""
    spec = spec.strip()
    base = spec.removesuffix(D3_SUFFIX)
    family, _, rest = base.partition(":")
    if family == "matgl" and rest:
        matgl_directory(rest)
    elif family == "sevennet":
        from amorph.md.shipped_potentials import parse_sevennet

        parse_sevennet(rest)
    elif family == "ase":
        from amorph.md.ase_potential import parse_ase_spec

        parse_ase_spec(rest)
    elif family == "diep" and rest and not Path(rest).expanduser().is_dir():
        raise AmorphError(f"DIEP model folder '{rest}' does not exist")
    elif family not in ("sevennet", "diep", "ase") and base not in ("emt", "chgnet", "matgl", "auto"):
        raise AmorphError(
            f"unknown potential '{spec}' (choose auto, chgnet, emt, matgl:MODEL, sevennet[:MODEL[:MODAL]], diep or "
            f"ase:MODULE:FACTORY, each optionally with {D3_SUFFIX})"
        )


def with_d3(base: LoadedPotential) -> LoadedPotential:
    """`base` plus Grimme's D3(BJ) dispersion with PBE's parameters (md.dispersion)."""
    from importlib.metadata import version

    from pymatgen.core import Element

    from amorph.md.dispersion import D3_MAX_Z, with_d3_calculator

    covered = frozenset(el.symbol for el in Element if el.Z <= D3_MAX_Z)
    make_base = base.make_calculator
    return replace(
        base,
        name=base.name + D3_SUFFIX,
        description=f"{base.description} + DFT-D3(BJ), PBE parameters (Grimme et al. 2010, 2011; torch-dftd {version('torch-dftd')})",
        elements=base.elements & covered,
        make_calculator=lambda: with_d3_calculator(make_base()),
        dispersion=True,
    )


def _load_matgl(name: str, device: str) -> LoadedPotential:
    local = matgl_directory(name)

    import matgl
    from matgl.ext.ase import PESCalculator

    if local is not None:
        source: str | Path = local
    else:
        cached = _matgl_cached_files(name)
        if cached is not None:
            source = cached
        elif hub_reachable():
            source = name
        else:
            raise AmorphError(
                f"matgl model '{name}' is not in the local cache and the Hugging Face hub cannot be reached "
                "(offline?); use --potential chgnet, or a local model directory with --potential matgl:DIR"
            )
    with quiet():
        try:
            potential = matgl.load_model(source)
        except Exception as err:  # matgl wraps every failure in RuntimeError/ValueError
            raise AmorphError(f"could not load matgl model '{name}': {err}") from None
    potential = potential.to(device)
    model = getattr(potential, "model", None)
    element_types = getattr(model, "element_types", None)
    if not element_types:
        raise AmorphError(f"matgl model '{name}' does not say which elements it covers (not a PES model?)")

    def make() -> Calculator:
        with quiet():
            return PESCalculator(potential, stress_unit="eV/A3")  # matgl's default unit is GPa

    label = str(local.resolve()) if local is not None else name
    return LoadedPotential(
        name=f"matgl:{label}",
        description=f"matgl {type(model).__name__} potential '{label}' (matgl {matgl.__version__})",
        elements=frozenset(element_types),
        device=device,
        checksum=weights_checksum(potential),
        make_calculator=make,
        model=potential,
        version=f"matgl {matgl.__version__}",
        training="PBE (MatPES)" if "PBE" in label else ("r2SCAN (MatPES)" if "r2SCAN" in label else "see the model's card"),
    )


def _load_auto(device: str) -> LoadedPotential:
    """The default matgl model when cached or downloadable, else chgnet (decided in seconds)."""
    if _matgl_cached_files(DEFAULT_MATGL_MODEL) is not None or hub_reachable():
        try:
            return _load_matgl(DEFAULT_MATGL_MODEL, device)
        except AmorphError as err:
            fallback = f"matgl default model unavailable ({err}); using chgnet"
    else:
        fallback = f"matgl model {DEFAULT_MATGL_MODEL} is not cached and the hub is unreachable; using chgnet"
    loaded = _load_chgnet(device)
    loaded.notes.append(fallback)
    return loaded


@contextlib.contextmanager
def quiet():
    """Silence the banners model loaders print, so the terminal shows only amorph's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield
