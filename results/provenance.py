"""What config.json records so that a run can be reproduced: versions, machine, potential."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata

PACKAGES = ("amorph", "torch", "matgl", "chgnet", "sevenn", "diep", "torch-dftd", "dscribe", "ase", "pymatgen", "spglib", "numpy",
            "pandas", "typer", "rich")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change a result."""
    versions = {"python": platform.python_version(), "amorph_commit": source_commit()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_commit() -> str:
    """The git commit amorph runs from ('+ changes' when the tree differs from it), or 'unknown' when
    it was installed from a package rather than run from a checkout: a result is tied to the code
    that made it, not only to a version number that does not move between commits."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "unknown (not a git checkout)"
    git = ["git", "--no-optional-locks", "-C", str(root)]  # never takes the index lock from a user's git
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # this checkout, whatever GIT_DIR says
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, env=env)
        dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git did not answer)"
    if head.returncode != 0:
        return "unknown (git did not answer)"
    return head.stdout.strip() + (" + changes" if dirty.stdout.strip() else "")


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


def measured_on() -> str:
    """The line a benchmark prints first, so that a number pasted into docs/ carries the code, the
    date and the machine that made it."""
    where = machine()
    cores = os.cpu_count() or 0
    gpu = f", {where['gpu']}" if "gpu" in where else ", no GPU"
    return f"measured: amorph {source_commit()}, {utc_now()}, {where['platform']}, {cores} CPU cores{gpu}"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_line() -> str:
    return " ".join(["amorph", *sys.argv[1:]])
