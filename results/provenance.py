"""What config.json records so that a run can be reproduced: versions, machine, potential."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib import metadata

PACKAGES = ("amorph", "torch", "matgl", "chgnet", "sevenn", "diep", "torch-dftd", "dscribe", "ase", "pymatgen", "spglib", "numpy",
            "pandas", "typer", "rich")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change a result."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, str]:
    """The host and, when there is one, the GPU."""
    info = {"platform": platform.platform(), "processor": platform.machine()}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
        info["torch_threads"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return info


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_line() -> str:
    return " ".join(["amorph", *sys.argv[1:]])
