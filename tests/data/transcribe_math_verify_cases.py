"""Transcribe math-verify's upstream test inputs into ``math_verify_cases.json`` (run by hand, not by pytest).

    python tests/data/transcribe_math_verify_cases.py /path/to/Math-Verify [COMMIT]

Reads every ``@pytest.mark.parametrize`` list of the upstream ``tests/*.py`` whose arguments start with
``gold, pred`` and keeps the literal inputs (``gold``, ``pred``, the upstream ``expected`` and the
arguments after it), nothing of the library's code. Each case is then written in the env's terms:

- ``answer``: the task's gold answer as a dataset would hold it: the upstream gold with its outer math
  delimiters (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``) removed; a gold holding ``\\boxed{}`` or
  inner ``$`` stays as written (the env must read it as math-verify does);
- ``reply``: the model's reply in the env's format: a pred that already holds a ``\\boxed{}`` as
  written; a pred that is one math expression (wrapped in delimiters, or bare and short) inside
  ``\\boxed{}``. Free text with no box (a bare pred with a word in it counts as free text) (``the number is 1,000.99€``) is not a reply in the env's
  format and is left out, with the reason in ``skipped``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).with_name("math_verify_cases.json")
DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")  # a word that is no LaTeX command: "the number is 10"


def strip_delims(text: str) -> str | None:
    """``text`` without one pair of outer math delimiters, or None when it is not wrapped in one."""
    s = text.strip()
    for left, right in DELIMS:
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            inner = s[len(left) : len(s) - len(right)]
            if "$" not in inner and "\\(" not in inner and "\\[" not in inner:
                return inner.strip()
    return None


def env_form(gold: str, pred: str) -> tuple[dict | None, str]:
    """``({"answer", "reply"}, "")`` for a case, or ``(None, why)`` when the pred is no env-format reply."""
    inner = strip_delims(gold)
    answer = inner if inner is not None and "\\boxed" not in inner else gold.strip()
    if "\\boxed" in pred:
        return {"answer": answer, "reply": pred}, ""
    inner = strip_delims(pred)
    if inner is None and "$" not in pred and len(pred.strip()) <= 40 and not PROSE.search(pred):
        inner = pred.strip()
    if inner is None:
        return None, "free text with no \\boxed{} answer: not a reply in the env's format"
    if not inner:
        return None, "empty pred"
    return {"answer": answer, "reply": f"\\boxed{{{inner}}}"}, ""


def cases_of(path: Path, source: str) -> list[tuple[str, str, dict]]:
    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(deco.args[0]).split(",")]
            if names[:2] != ["gold", "pred"]:
                continue
            for element in deco.args[1].elts:
                try:
                    item = ast.literal_eval(element)
                except ValueError:  # an f-string or a call: not a literal input, so not transcribed
                    print(f"{path.name}:{element.lineno}: not a literal, left out", file=sys.stderr)
                    continue
                values = dict(zip(names, item, strict=True))
                extra = {k: v for k, v in values.items() if k not in ("gold", "pred")}
                out.append((f"{path.name}::{node.name}", values["gold"], values["pred"], extra))
    return out


def main() -> None:
    repo = Path(sys.argv[1])
    commit = sys.argv[2] if len(sys.argv) > 2 else "HEAD"
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    files = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "--name-only", sha, "tests/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    cases, skipped = [], []
    for name in sorted(f for f in files if f.endswith(".py")):
        source = subprocess.run(
            ["git", "-C", str(repo), "show", f"{sha}:{name}"], capture_output=True, text=True, check=True
        ).stdout
        for test, gold, pred, extra in cases_of(Path(name), source):
            form, why = env_form(gold, pred)
            record = {
                "id": f"{test}[{len(cases) + len(skipped)}]",
                "gold": gold,
                "pred": pred,
                "upstream": extra,
            }
            if form is None:
                skipped.append({**record, "why": why})
            else:
                cases.append({**record, **form})
    OUT.write_text(
        json.dumps(
            {
                "about": "Inputs of math-verify's upstream tests (huggingface/Math-Verify, tests/*.py, MIT licence), "
                "transcribed by tests/data/transcribe_math_verify_cases.py into the env's terms: 'answer' is the "
                "task's gold answer, 'reply' the model's reply; 'gold'/'pred' are the upstream inputs and "
                "'upstream' the rest of the upstream parameters (its expected value under its own configs).",
                "source": f"https://github.com/huggingface/Math-Verify/tree/{sha}/tests",
                "cases": cases,
                "skipped": skipped,
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"{len(cases)} cases, {len(skipped)} skipped -> {OUT}")


if __name__ == "__main__":
    main()
