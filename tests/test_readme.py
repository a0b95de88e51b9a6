"""The README's examples, run, so the README cannot drift from what amorph does.

- Every `$ amorph ...` line of the README's ```console blocks is run, in order, in one temporary
  working directory, with the `amorph` console script of this environment; each must exit 0.
  Where the README shows output under a command, the command's stdout must be exactly that
  (lines compared with trailing spaces removed; COLUMNS=120, the width the README shows), so the
  smoke run's table and prediction line are checked as printed. A command that writes `> FILE`
  must leave FILE non-empty.
- The ```python blocks are executed in a temporary working directory; a `print(...)  # VALUE`
  line must print VALUE.
- A console or python block right after a `<!-- readme-test: skip (REASON) -->` line is not run: those are
  the README's real runs, which take minutes (CHGNet on TiO2) or need the internet (`--db mp`,
  matgl models from the hub). Each of them is reported as skipped with that reason; their flags
  are still checked against `amorph ... --help`.

Cost on 2 CPU cores: two Cu/EMT smoke runs (~20 s each) and a few `amorph db` and `amorph compare`
calls (~2-4 s each).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s*(?:\((?P<reason>.*)\))?\s*-->")
PROMPT = "$ "
COLUMNS = "120"  # the terminal width the README's shown output was printed at


@dataclass
class Block:
    lang: str
    lines: list[str]
    line_number: int  # of the opening fence, 1-based
    skip_reason: str | None = None


@dataclass
class Command:
    text: str  # without the prompt
    expected: list[str] = field(default_factory=list)  # the output shown under it, if any
    line_number: int = 0


def readme_blocks(text: str) -> list[Block]:
    """Fenced code blocks, each marked with the skip reason of a skip comment right before it."""
    blocks, current, pending_skip = [], None, None
    for number, line in enumerate(text.splitlines(), start=1):
        if current is not None:
            if line.startswith("```"):
                blocks.append(current)
                current = None
            else:
                current.lines.append(line)
            continue
        if line.startswith("```"):
            current = Block(line[3:].strip(), [], number, pending_skip)
            pending_skip = None
        elif (mark := SKIP_MARK.search(line)) is not None:
            pending_skip = (mark.group("reason") or "marked not to run").strip()
        elif line.strip():
            pending_skip = None  # the mark applies only to the block right after it
    assert current is None, f"README.md: code block opened at line {current.line_number} is not closed"
    return blocks


def console_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    for offset, line in enumerate(block.lines, start=1):
        if line.startswith(PROMPT):
            commands.append(Command(line[len(PROMPT):].strip(), [], block.line_number + offset))
        elif commands:
            commands[-1].expected.append(line.rstrip())
    for command in commands:
        while command.expected and not command.expected[-1]:
            command.expected.pop()
    return commands


def _blocks() -> list[Block]:
    return readme_blocks(README.read_text(encoding="utf-8"))


def _run_commands() -> list[Command]:
    return [c for b in _blocks() if b.lang == "console" and b.skip_reason is None for c in console_commands(b)]


def _skipped_commands() -> list[tuple[Command, str]]:
    return [(c, b.skip_reason) for b in _blocks() if b.lang == "console" and b.skip_reason is not None
            for c in console_commands(b)]


def _amorph() -> str:
    """The console script of the environment running the tests (not whatever else is on PATH)."""
    beside = Path(sys.executable).with_name("amorph")
    if beside.exists():
        return str(beside)
    found = shutil.which("amorph")
    assert found, "the amorph console script is not installed (pip install -e .)"
    return found


def _env(columns: str = COLUMNS) -> dict[str, str]:
    env = dict(os.environ)
    env["COLUMNS"] = columns
    env.pop("LINES", None)
    env["PATH"] = str(Path(_amorph()).parent) + os.pathsep + env.get("PATH", "")
    return env


def _shell(command: str, cwd: Path, columns: str = COLUMNS) -> subprocess.CompletedProcess[str]:
    assert command.startswith("amorph "), f"README command does not start with amorph: {command}"
    line = shlex.quote(_amorph()) + command[len("amorph"):]
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=_env(columns), capture_output=True,
                          text=True, timeout=600)


def _prediction_line(lines: list[str]) -> str | None:
    return next((line.strip() for line in lines if ": first to nucleate: " in line), None)


def test_readme_shows_a_smoke_run_that_the_test_runs():
    commands = _run_commands()
    smoke = [c for c in commands if c.text.startswith("amorph predict") and "--preset smoke" in c.text]
    assert smoke, "README.md: the quick start should show an `amorph predict ... --preset smoke` run"
    assert _prediction_line(smoke[0].expected), "README.md: the smoke run should show its prediction line"
    assert any(b.lang == "python" for b in _blocks()), "README.md: the Python example is missing"


def test_readme_console_commands_run_and_print_what_the_readme_shows(tmp_path):
    commands = _run_commands()
    assert commands
    for command in commands:
        done = _shell(command.text, tmp_path)
        where = f"README.md line {command.line_number}: `{command.text}`"
        assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stderr[-3000:]}"
        redirect = re.search(r">\s*(\S+)\s*(?:#.*)?$", command.text)
        if redirect:
            written = tmp_path / redirect.group(1)
            assert written.is_file() and written.stat().st_size > 0, f"{where} wrote nothing to {written.name}"
        if not command.expected:
            continue
        printed = [line.rstrip() for line in done.stdout.splitlines()]
        while printed and not printed[-1]:
            printed.pop()
        shown = _prediction_line(command.expected)
        if shown is not None:
            assert _prediction_line(printed) == shown, f"{where}: prediction line differs from the README's"
        assert printed == command.expected, (
            f"{where} printed something else than the README shows:\n" + "\n".join(printed))


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = [b for b in _blocks() if b.lang == "python" and b.skip_reason is None]  # the SLURM one needs a cluster
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        source = "\n".join(block.lines)
        expected = [m.group(1).strip() for line in block.lines
                    if (m := re.match(r"\s*print\(.*\)\s*#\s*(.+)$", line))]
        capsys.readouterr()
        exec(compile(source, f"README.md (python block at line {block.line_number})", "exec"), {})
        printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
        if expected:
            assert printed[-len(expected):] == expected, (
                f"README.md python block at line {block.line_number} printed {printed}, the README says {expected}")


@pytest.mark.parametrize("command, reason", _skipped_commands(), ids=[c.text for c, _ in _skipped_commands()])
def test_readme_commands_not_run_use_real_flags(command, reason, tmp_path):
    words = shlex.split(command.text, comments=True)
    sub = [w for w in words[1:] if not w.startswith("-")][:1]
    assert sub, f"README.md line {command.line_number}: no subcommand in `{command.text}`"
    help_text = _shell(f"amorph {sub[0]} --help", tmp_path, columns="200")
    assert help_text.returncode == 0, help_text.stderr
    for flag in (w.split("=")[0] for w in words if w.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text.stdout), (
            f"README.md line {command.line_number}: `amorph {sub[0]}` has no {flag}")
    pytest.skip(f"not run ({reason}): {command.text}")
