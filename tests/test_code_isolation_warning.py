"""A weak sandbox level is never silent (issue 23.6): at ``basic`` the candidate can read the host's files,
a benchmark's own tests included, so asking for it (or falling back to it) raises a SandboxWarning."""

from __future__ import annotations

import warnings

import pytest

from drift_envs.code.sandbox import Sandbox, SandboxWarning


@pytest.mark.parametrize("isolation", ["basic", "none"])
def test_asking_for_the_basic_level_is_loud(isolation):
    with pytest.warns(SandboxWarning, match="look.*up"):
        sandbox = Sandbox(isolation=isolation, workers=1)
    sandbox.close()


def test_the_full_level_is_quiet_and_a_fallback_is_loud():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sandbox = Sandbox(workers=1)
        try:
            level = sandbox.isolation["level"]
        finally:
            sandbox.close()
    loud = [w for w in caught if issubclass(w.category, SandboxWarning)]
    assert (level == "basic") == bool(loud), (level, [str(w.message) for w in loud])
