"""One writer per run folder: a lock file naming the process that holds it.

Two `amorph` processes writing into one folder (a resume started while the run still goes on, or two
shells given the same --out) would interleave stages and leave files from both. The lock is a file
made with O_EXCL holding the holder's host and PID. Written here on purpose, not with a locking
library: what is needed beyond an exclusive create is to tell a live holder from a dead one (a run
killed with SIGKILL leaves its lock behind), and that is one `os.kill(pid, 0)`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from amorph.errors import AmorphError

LOCK = ".amorph.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a run folder's lock."""

    host: str
    pid: int
    since: str

    def alive(self) -> bool:
        """True unless the holder is on this host and its process is gone (another host: assume alive)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a live process of another user
            return True
        return True


def holder(folder: Path) -> Holder | None:
    """The lock's holder, or None when the folder is not locked (or the lock file is unreadable)."""
    try:
        data = json.loads((Path(folder) / LOCK).read_text())
        return Holder(str(data["host"]), int(data["pid"]), str(data.get("since", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_unlocked(folder: Path) -> None:
    """Refuse a folder that a live process is writing into (before anything of ours is written)."""
    found = holder(folder)
    if found is not None and found.alive() and found.pid != os.getpid():
        raise AmorphError(
            f"{folder} is in use by process {found.pid} on {found.host} (since {found.since}); "
            "wait for it to finish or stop it first"
        )


class RunLock:
    """`with RunLock(folder):` holds the folder's lock, taking over one left by a dead process."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.took_over: Holder | None = None

    def __enter__(self) -> RunLock:
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                check_unlocked(self.path.parent)  # a live holder: refused, by name
                self.took_over = holder(self.path.parent)
                self.path.unlink(missing_ok=True)  # a dead process's (or an unreadable) lock
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(record)
            return self
        raise AmorphError(f"could not lock {self.path.parent}: another process keeps taking it")

    def __exit__(self, *exc: object) -> None:
        found = holder(self.path.parent)
        if found is not None and found.pid == os.getpid():
            self.path.unlink(missing_ok=True)
