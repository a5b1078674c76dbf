"""Worker process of :class:`drift_envs.math.verifier.MathVerifier` (JSON lines on stdin/stdout).

Each request is ``{"gold": str, "pred": str, "gold_raw": bool, "pred_raw": bool, "cpu_s": float}`` (a
raw text is parsed as written, with math-verify's default extraction; otherwise it is one box's
content); each answer ``{"ok": bool, "cpu_s": float}`` (the CPU seconds the check used), plus
``"retire": true`` when this worker has grown past its resident-memory budget and exits (the parent
starts another).

Time: the parent watches this process's CPU time and kills it once a check has used ``cpu_s``; as a
backstop the kernel's ``RLIMIT_CPU`` is set before each check to the CPU time used so far plus the
budget, rounded up, plus one second (``SIGXCPU`` ends the process; the parent reads that as the budget
spent). No wall-clock timeout is set here: a loaded machine must not change a verdict.

Besides math-verify's own verdict, a prediction that is a false relation between numbers (``6=7``,
``x=6=7``: math-verify keeps the last right-hand side when the gold is no relation, so these read as 7)
is incorrect when the gold is no relation; a true one (``18-11=7``) and an assignment (``x=7``) are not
touched. Memory is bounded three ways:

- parsed answers are cached only when short, in an LRU cache with a budget on the characters it holds
  (a parsed answer takes about ten times its text's size, so the cache holds a few tens of MB);
- sympy's cache and math-verify's small caches, bounded in entries but not in bytes, are cleared
  after any long answer;
- the process runs under an address-space limit (``--memory-mb``; a parse that needs more fails with
  ``MemoryError`` and counts as incorrect) and retires once its resident set exceeds ``--retire-mb``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections import OrderedDict

# Relative gap above which two constant numeric expressions are certainly different answers. It is far
# wider than math-verify's own float tolerance, so a quick reject never contradicts the full check.
_CERTAINLY_DIFFERENT = 1e-4

#: checked once at start-up, before "ready": sympy imports much of itself lazily on first use (the
#: first polynomial check in a fresh worker took 0.5 CPU seconds, the next 0.02), and a check's CPU
#: budget must pay for the answer, not for whichever modules its worker had not loaded yet. Kept
#: short: every worker start pays for it, and a restart on a loaded machine is what waits longest
WARM_UP = [
    ("x^2 + 2x + 1", "(x+1)^2"),  # 0.6 CPU s the first time: after it, a fresh kind of check costs < 0.15 s
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
]

#: answers longer than this are parsed every time: they are rarely repeated and costly to hold
CACHE_MAX_ANSWER_CHARS = 1_000
#: golds are checked again and again (a task's K samples, its turns), so longer ones are cached too (a
#: MATH solution with several boxes is read whole)
CACHE_MAX_GOLD_CHARS = 20_000
#: total characters of the answers the cache holds
CACHE_BUDGET_CHARS = 2_000_000


class ParseCache:
    """An LRU cache of parsed answers bounded by the total length of the answer texts it holds."""

    def __init__(
        self, budget_chars: int = CACHE_BUDGET_CHARS, max_chars: int = CACHE_MAX_ANSWER_CHARS
    ) -> None:
        self.budget_chars = budget_chars
        self.max_chars = max_chars
        self.chars = 0
        self._items: OrderedDict[str, object] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, text: str, parse):
        """``parse(text)``, from the cache when it holds ``text``."""
        if text in self._items:
            self._items.move_to_end(text)
            return self._items[text]
        value = parse(text)
        if len(text) <= self.max_chars:
            self._items[text] = value
            self.chars += len(text)
            while self.chars > self.budget_chars:
                old, _ = self._items.popitem(last=False)
                self.chars -= len(old)
        return value


def _resident_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:  # no procfs: the peak is an upper bound of the current size
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _limit_memory(memory_mb: int) -> None:
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _limit_cpu(budget_s: float) -> None:
    """The kernel's backstop for one check: SIGXCPU once this process has used ``budget_s`` more CPU
    seconds (rounded up, plus one: the parent's own watch ends an overrun first)."""
    limit = math.ceil(time.process_time() + budget_s) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY and hard <= limit:
        return  # a hard limit already lower: the kernel enforces that one
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))


def _false_relation(expr, Eq, And, FiniteSet, Tuple) -> bool:
    """True when ``expr`` is (or, in a set or tuple, holds) an equation or chain of them with a link
    between two numbers that differ: ``6=7``, ``x=6=7`` (``And(Eq(x, 6), Eq(6, 7))``)."""
    if isinstance(expr, (FiniteSet, Tuple)):
        return any(_false_relation(e, Eq, And, FiniteSet, Tuple) for e in expr.args)
    links = expr.args if isinstance(expr, And) else (expr,)
    for link in links:
        if not isinstance(link, Eq):
            continue
        lhs, rhs = link.lhs, link.rhs
        if not (getattr(lhs, "is_number", False) and getattr(rhs, "is_number", False)):
            continue  # an assignment or an equation in unknowns: math-verify's to judge
        try:
            a, b = complex(lhs.evalf(30)), complex(rhs.evalf(30))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            continue
        if abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b)):
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    """Serve verification requests until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory-mb", type=int, default=0, help="address-space limit in MiB (0: none)")
    parser.add_argument(
        "--retire-mb", type=int, default=0, help="exit after an answer past this resident size (0: never)"
    )
    args = parser.parse_args(argv)
    import math_verify.parser
    from math_verify import LatexExtractionConfig, parse, verify
    from sympy import And, Eq, FiniteSet, Tuple
    from sympy.core.cache import clear_cache
    from sympy.core.relational import Relational

    # math-verify's own small caches are keyed on the whole text (20 entries each): 20 MB answers would
    # stay in them, so they are emptied with sympy's after a long answer
    library_caches = [
        getattr(math_verify.parser, name, None)
        for name in ("parse_latex_cached", "parse_expr_cached", "extract_latex")
    ]
    library_caches = [c for c in library_caches if hasattr(c, "cache_clear")]

    _limit_memory(args.memory_mb)  # after the imports, which map far more address space than they use
    # SIGXCPU (the CPU backstop) dumps core by default: no core file of a bomb lands in the caller's folder
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    # Answers arrive already extracted and wrapped in \boxed{}, so only the LaTeX extractor is needed.
    config = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]
    cache = ParseCache()
    gold_cache = ParseCache(max_chars=CACHE_MAX_GOLD_CHARS)

    def parse_boxed(text: str):
        return parse("\\boxed{" + text + "}", extraction_config=config, parsing_timeout=None)

    def parse_raw(text: str):
        return parse(text, parsing_timeout=None)

    def parsed(text: str, raw: bool, store: ParseCache):
        # one cache for both readings: the key says which
        return store.get(
            ("R" if raw else "B") + text, lambda key: parse_raw(key[1:]) if raw else parse_boxed(key[1:])
        )

    def certainly_different(gold, pred) -> bool:
        g, p = gold[0], pred[0]
        if not (getattr(g, "is_number", False) and getattr(p, "is_number", False)):
            return False
        try:
            gv, pv = complex(g.evalf(20)), complex(p.evalf(20))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return False
        return abs(gv - pv) > _CERTAINLY_DIFFERENT * max(1.0, abs(gv))

    for warm_gold, warm_pred in WARM_UP:
        try:
            verify(parse_boxed(warm_gold), parse_boxed(warm_pred), timeout_seconds=None)
        except Exception:  # noqa: BLE001  (a warm-up that fails only leaves the imports for later)
            pass
    print("ready", flush=True)

    def false_relation(gold, pred) -> bool:
        # math-verify unwraps a relation to its last right-hand side only when the gold is no relation
        g = gold[0]
        if isinstance(g, Relational) or (
            isinstance(g, And) and all(isinstance(a, Relational) for a in g.args)
        ):
            return False
        return _false_relation(pred[0], Eq, And, FiniteSet, Tuple)

    for line in sys.stdin:
        start = time.process_time()
        try:
            request = json.loads(line)
            if request.get("cpu_s"):
                _limit_cpu(float(request["cpu_s"]))
            gold = parsed(request["gold"], bool(request.get("gold_raw")), gold_cache)
            pred = parsed(request["pred"], bool(request.get("pred_raw")), cache)
            ok = (
                bool(gold and pred)
                and not certainly_different(gold, pred)
                and not false_relation(gold, pred)
                and verify(gold, pred, timeout_seconds=None)
            )
            long_answer = len(request["pred"]) > CACHE_MAX_ANSWER_CHARS
            long_answer = long_answer or len(request["gold"]) > CACHE_MAX_GOLD_CHARS
        except Exception:  # MemoryError included: an answer too big to parse is not a correct answer
            ok, long_answer = False, True
        used = time.process_time() - start
        if long_answer:
            gold = pred = None
            clear_cache()
            for library_cache in library_caches:
                library_cache.cache_clear()
        retire = args.retire_mb > 0 and _resident_mb() > args.retire_mb
        answer = {"ok": bool(ok), "cpu_s": round(used, 4), **({"retire": True} if retire else {})}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if retire:
            return


if __name__ == "__main__":
    main()
