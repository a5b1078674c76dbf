"""CONTRIBUTING.md's "Adding an environment" walk-through runs as written: its code blocks are taken from
the file, the one that names a module (``# squares_env.py``) is written there in a temp dir, and the others
run in order in a fresh Python process started in that dir, which makes the new env and its source,
steps it, and runs the quickstart's preset checks on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Adding an environment"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_new_env_walk_through_runs_as_written(tmp_path: Path) -> None:
    blocks = _python_blocks(_section((ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"), SECTION))
    modules = {}
    scripts = []
    for block in blocks:
        first = block.splitlines()[0]
        name = re.fullmatch(r"# (\w+\.py)", first)
        if name:
            modules[name.group(1)] = block
        else:
            scripts.append(block)
    assert list(modules) == ["squares_env.py"] and len(scripts) == 2, (list(modules), len(scripts))
    for name, source in modules.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    # one process for every script, in order, as a reader pasting them would run them
    (tmp_path / "walk_through.py").write_text("\n\n".join(scripts) + '\nprint("walk-through ok")\n')
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "walk_through.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "walk-through ok" in out.stdout


def test_the_walk_through_block_is_short() -> None:
    """The new env and its source fit in one module of about 60 lines, with no edit elsewhere (before
    the base owned the shared kwargs and the quickstart asked the env, a new env also needed edits of
    the base's kwargs in its constructor and of drift_train/quickstart.py's ENV_PRESETS)."""
    blocks = _python_blocks(_section((ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"), SECTION))
    module = next(b for b in blocks if b.startswith("# squares_env.py"))
    assert len(module.splitlines()) <= 70


@pytest.mark.parametrize("heading", [SECTION, "## A new task source is one file and one registration line"])
def test_the_sections_hold_python_blocks(heading: str) -> None:
    assert _python_blocks(_section((ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"), heading))
