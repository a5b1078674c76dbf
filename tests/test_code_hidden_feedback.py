"""CodeFeedback's score line never says how many hidden tests failed (issue 23.8; red team 2: a reply
with no task logic steered a constant by "(k of them hidden)"): it counts the shown tests and says the
hidden ones decide too, the same sentence whatever the hidden tests did."""

from __future__ import annotations

import re

import gymnasium as gym

import drift_envs  # noqa: F401


def test_the_score_line_counts_shown_tests_and_never_the_hidden_failures():
    env = gym.make("drift/CodeFeedback-v0", feedback="all").unwrapped
    try:
        texts = []
        for index in range(4):
            env.reset(options={"index": index})
            hidden = env.hidden_test_indices(env.task)
            n = len(env.task.meta["tests"])
            name = env.task.meta["entry_point"]
            for body in ("return None", "raise ValueError('no')"):
                obs, reward, *_ = env.step(f"```python\ndef {name}(*args):\n    {body}\n```")
                assert reward == 0.0
                head = obs.splitlines()[0]
                assert re.search(r"\bof them hidden\b|\ba hidden test, not shown\b", obs) is None, obs
                said = (
                    "A hidden test decides too."
                    if len(hidden) == 1
                    else f"{len(hidden)} hidden tests decide too."
                )
                if "could not be tested" not in head:
                    assert f"of the {n - len(hidden)} tests shown." in head and head.endswith(said), head
                texts.append(head)
        assert texts  # every task was scored
    finally:
        env.close()
