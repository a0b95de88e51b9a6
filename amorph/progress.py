"""How the pipeline reports progress without knowing who is watching (rich in the CLI, nothing in tests)."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    """Stage-level progress: one bar per stage, advanced as work gets done."""

    def start(self, description: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...

    def note(self, text: str) -> None: ...


class SilentProgress:
    """A ProgressSink that shows nothing."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass

    def note(self, text: str) -> None:
        pass
