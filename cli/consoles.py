"""The two rich consoles every command prints through: stdout for results, stderr for progress and
notes (so that --json output stays clean). A module of its own so that a light command (`amorph db
list`) prints without importing the report code and, through it, pymatgen's matcher."""

from __future__ import annotations

from rich.console import Console

stderr = Console(stderr=True)
stdout = Console()
