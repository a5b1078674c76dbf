"""The same replies get the same MathFeedback verdicts on a quiet machine and under load we create (issue 23.10).

Eight busy-loop processes (each ends by itself after at most a minute, and is killed by its PID at the
end) load the machine while the same replies, symbolic checks, refused readings and an answer that
needs more than its CPU budget, are checked again. A wall-clock budget measured the machine (at load 9
on 2 cores, eight 2-second timeouts in a row turned right answers wrong); the CPU budget measures the
answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math.verifier import MathVerifier

BUSY_LOOP = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"

#: (gold, reply): symbolic forms that need a worker, refused readings, and a bomb over its CPU budget
CASES = [
    ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{2}}}"),
    ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{3}}}"),
    ("x^2 + 2x + 1", "\\boxed{(x+1)^2}"),
    ("x^2 + 2x + 1", "\\boxed{(x+2)^2}"),
    ("7", "\\boxed{6=7}"),
    ("7", "\\boxed{18-11=7}"),
    ("[0, 1)", "\\boxed{[0,1)}"),
    ("\\pi/2", "\\boxed{\\frac{\\pi}{2}}"),
    ("5", "\\boxed{9^{9^{9^{9}}}}"),  # over its CPU budget at any load: wrong
    ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{\\sqrt{8}}{4}}"),
]


def _verdicts(env, replies) -> list:
    out = []
    for i, reply in enumerate(replies):
        env.reset(options={"index": i})
        info = env.step(reply)[4]
        out.append("undecided" if info["undecided"] else info["correct"])
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process control")
def test_the_same_replies_get_the_same_verdicts_under_load(tmp_path: Path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        "".join(json.dumps({"problem": f"p{i}", "answer": g}) + "\n" for i, (g, _) in enumerate(CASES))
    )
    # the CPU budget decides; the wall backstop is generous because a worker restarted after the bomb
    # must import sympy and math-verify (about 2.5 CPU seconds) on the loaded machine
    env = gym.make(
        "drift/MathFeedback-v0", dataset=str(path), max_turns=1, timeout_s=0.5, max_wait_s=60.0
    ).unwrapped
    env._verifier = MathVerifier(max_workers=2)  # its own pool: the bomb's kills stay in this test
    env._verifier.warm_up()
    replies = [reply for _, reply in CASES]
    loops = []
    try:
        quiet = _verdicts(env, replies)
        loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(8)]
        time.sleep(0.5)  # let them take the cores
        loaded = _verdicts(env, replies)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        env._verifier.close()
    assert quiet == [True, False, True, False, False, True, True, True, False, True]
    assert loaded == quiet
