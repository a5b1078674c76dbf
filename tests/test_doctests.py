"""Every env's docstring example runs as a doctest: one case per registered id (``drift_envs.ENV_IDS``),
so a new env is covered without an edit here, plus the modules of the env core whose docstrings hold
examples. An env module without a ``>>>`` example fails: its docstring is its manual (STYLE.md)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import drift_envs

ENV_MODULES = sorted({entry.split(":")[0] for entry in drift_envs.ENV_IDS.values()})
# the library modules outside the envs whose docstrings hold examples
OTHER_MODULES = ["drift_envs.core", "drift_envs.number_words"]


@pytest.mark.parametrize("module_name", ENV_MODULES + OTHER_MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0, f"{module_name} has no docstring example"
    assert outcome.failed == 0, f"{outcome.failed} of {outcome.attempted} examples of {module_name} failed"


def test_every_registered_env_class_carries_an_example() -> None:
    """The example sits in the env class's own docstring (the manual Gymnasium shows), not elsewhere."""
    for env_id, entry in drift_envs.ENV_IDS.items():
        module, name = entry.split(":")
        doc = getattr(importlib.import_module(module), name).__doc__ or ""
        assert "## Example" in doc and ">>> " in doc and "gym.make(" in doc, env_id
