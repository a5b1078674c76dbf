"""Worker process of :class:`drift_envs.math.verifier.MathVerifier` (JSON lines on stdin/stdout).

Each request is ``{"gold": str, "pred": str}``; each answer ``{"ok": bool}``. The parent bounds the
wall-clock time and kills this process when a check overruns, so no timeout is set here.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache

# Relative gap above which two constant numeric expressions are certainly different answers. It is far
# wider than math-verify's own float tolerance, so a quick reject never contradicts the full check.
_CERTAINLY_DIFFERENT = 1e-4


def main() -> None:
    """Serve verification requests until stdin closes."""
    from math_verify import LatexExtractionConfig, parse, verify

    # Answers arrive already extracted and wrapped in \boxed{}, so only the LaTeX extractor is needed.
    config = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]

    @lru_cache(maxsize=8192)
    def parse_boxed(text: str):
        # gold answers repeat across the K samples and turns of a task, and so do wrong answers
        return parse("\\boxed{" + text + "}", extraction_config=config, parsing_timeout=None)

    def certainly_different(gold, pred) -> bool:
        g, p = gold[0], pred[0]
        if not (getattr(g, "is_number", False) and getattr(p, "is_number", False)):
            return False
        try:
            gv, pv = complex(g.evalf(20)), complex(p.evalf(20))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return False
        return abs(gv - pv) > _CERTAINLY_DIFFERENT * max(1.0, abs(gv))

    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            gold = parse_boxed(request["gold"])
            pred = parse_boxed(request["pred"])
            ok = bool(gold and pred) and not certainly_different(gold, pred) and verify(gold, pred, timeout_seconds=None)
        except Exception:
            ok = False
        sys.stdout.write(json.dumps({"ok": bool(ok)}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
