"""The DRIFT reference release's own evaluation code, loaded at test time from a local git mirror.

Tests that compare our release-named metrics with the numbers the release computes call its functions
here rather than a transcription. The code is read from the mirror of github.com/2020-qqtcg/DRIFT
(``DRIFT_RELEASE_GIT``, default ``/work/.mirror/2020-qqtcg+DRIFT/repo``, a bare git dir; ``git fetch``
or the project's search tool's ``fetch`` makes one) into a temporary folder, never into this repo; a
test that needs it skips with the reason when there is no mirror.

``src/benchmark.py`` and ``src/prompting.py`` import as they are (they need ``datasets``). The
evaluation script ``src/eval_math_multiturn_vllm.py`` imports vLLM at its top, which takes about a
minute to import on a CPU machine and is not installed beside transformers here; so its top-level
definitions (every function and constant) are executed from its own source with the names its import
lines would bind, the vLLM ones being :class:`ScriptedLLM` (the model: the replies are the test's
input) and :class:`SamplingParams` (its settings, which scripted replies have no use for). Nothing of
the release's code is rewritten.
"""

from __future__ import annotations

import argparse
import ast
import collections
import datetime
import importlib.util
import inspect
import json
import logging
import os
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

RELEASE_GIT = Path(os.environ.get("DRIFT_RELEASE_GIT", "/work/.mirror/2020-qqtcg+DRIFT/repo"))
FILES = ("src/benchmark.py", "src/prompting.py", "src/eval_math_multiturn_vllm.py")


class SamplingParams:
    """Stands for ``vllm.SamplingParams``: keeps the settings the release passes; scripted replies ignore them."""

    def __init__(self, **settings: typing.Any) -> None:
        self.settings = settings


class _Output:
    def __init__(self, text: str) -> None:
        self.outputs = [types.SimpleNamespace(text=text)]


class ScriptedLLM:
    """Stands for ``vllm.LLM``: ``generate`` answers each prompt with ``reply(prompt)``, in order."""

    def __init__(self, reply: Callable[[str], str]) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[str], sampling_params: typing.Any, **_: typing.Any) -> list[_Output]:
        """One output per prompt, as vLLM returns them."""
        self.prompts.extend(prompts)
        return [_Output(self.reply(p)) for p in prompts]


def release_source(path: str) -> str:
    """The text of ``path`` at the mirror's HEAD; skips the test when there is no mirror."""
    if not RELEASE_GIT.exists():
        pytest.skip(f"no mirror of github.com/2020-qqtcg/DRIFT at {RELEASE_GIT} (set DRIFT_RELEASE_GIT)")
    result = subprocess.run(
        ["git", f"--git-dir={RELEASE_GIT}", "show", f"HEAD:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"the release mirror at {RELEASE_GIT} has no {path}: {result.stderr.strip()}")
    return result.stdout


def load_release(folder: Path, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """``benchmark``, ``prompting`` and ``evaluate`` (the evaluation script's definitions) of the release,
    written to ``folder`` and loaded; ``sys.modules`` gets ``benchmark``/``prompting`` for the test only
    (the script imports them by those names, also inside functions)."""
    pytest.importorskip("datasets", reason="the release's benchmark.py imports datasets")
    for path in FILES:
        (folder / Path(path).name).write_text(release_source(path))
    modules = {}
    for name in ("prompting", "benchmark"):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        modules[name] = module
    script = folder / "eval_math_multiturn_vllm.py"
    tree = ast.parse(script.read_text(), filename=str(script))
    # every definition and constant of the script; its import lines are replaced by the names they bind
    body = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Try, ast.If))]
    namespace: dict[str, typing.Any] = {
        "__name__": "drift_release_eval",
        "argparse": argparse,
        "inspect": inspect,
        "json": json,
        "logging": logging,
        "os": os,
        "sys": sys,
        "defaultdict": collections.defaultdict,
        "datetime": datetime.datetime,
        **{name: getattr(typing, name) for name in ("Any", "Dict", "List", "Optional")},
        **{k: v for k, v in vars(modules["benchmark"]).items() if not k.startswith("__")},
        **{k: v for k, v in vars(modules["prompting"]).items() if not k.startswith("__")},
        "tqdm": pytest.importorskip("tqdm.auto").tqdm,
        "AutoTokenizer": pytest.importorskip("transformers").AutoTokenizer,
        "LLM": ScriptedLLM,
        "SamplingParams": SamplingParams,
        "LoRARequest": None,
        "LORA_AVAILABLE": False,
    }
    exec(compile(ast.Module(body=body, type_ignores=[]), str(script), "exec"), namespace)  # noqa: S102
    return types.SimpleNamespace(
        benchmark=modules["benchmark"],
        prompting=modules["prompting"],
        evaluate=types.SimpleNamespace(**namespace),
    )


def release_args(
    release: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, *argv: str
) -> argparse.Namespace:
    """The evaluation script's own ``parse_args()`` defaults, with ``argv`` on top."""
    monkeypatch.setattr(
        sys,
        "argv",
        ["eval_math_multiturn_vllm.py", "--model_name_or_path", "scripted", "--output_json", "-", *argv],
    )
    return release.evaluate.parse_args()
