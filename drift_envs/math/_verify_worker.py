"""Worker process of :class:`drift_envs.math.verifier.MathVerifier` (JSON lines on stdin/stdout).

Each request is ``{"gold": str, "pred": str}``; each answer ``{"ok": bool}``. The parent bounds the
wall-clock time and kills this process when a check overruns, so no timeout is set here.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache


def main() -> None:
    """Serve verification requests until stdin closes."""
    from math_verify import parse, verify

    @lru_cache(maxsize=4096)
    def parse_gold(text: str):
        # gold answers repeat across the K samples and turns of a task: parse each once
        return parse("\\boxed{" + text + "}", parsing_timeout=None)

    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            gold = parse_gold(request["gold"])
            pred = parse("\\boxed{" + request["pred"] + "}", parsing_timeout=None)
            ok = bool(gold and pred and verify(gold, pred, timeout_seconds=None))
        except Exception:
            ok = False
        sys.stdout.write(json.dumps({"ok": ok}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
