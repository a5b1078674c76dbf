r"""TheoremQA in MathFeedback: the ``theoremqa`` file schema and its typed answers.

TheoremQA (``TIGER-Lab/TheoremQA``, 800 questions, split ``test``) rows hold ``Question``, ``Answer``
(a string on the hub; a bool, number or list in the original JSON), ``Answer_type`` and ``Picture``.
The answer types and how a reply is judged against each:

=====================  ==========================================================================
``bool``               ``True``/``False``; the reply may also say ``yes``/``no``, ``true``/``false``
``option``             a letter such as ``(c)``; ``c``, ``(C)``, ``option c`` match; naming two is wrong
``integer``            the value exactly (``12``, ``12.0``, ``1.2 \times 10^{1}``, ``12 m/s``)
``float``              within TheoremQA's own tolerance, 4 % of the gold (:data:`FLOAT_REL_TOL`)
``list of integer``    the same numbers in any order (TheoremQA sorts both lists), each judged as its
``list of float``      type; ``[1, 2]``, ``(1, 2)``, ``1, 2`` and one ``\boxed{}`` per element are lists
=====================  ==========================================================================

A number may carry units (``3.5 m/s``, ``12\,\mathrm{kg}``, ``300 K``), which are ignored, and a
percent sign: ``25\%`` answers both a gold of 25 and one of 0.25. Values are read from plain
numbers, scientific notation and arithmetic LaTeX (``\frac{\sqrt{3}}{2}``, ``2\pi``,
``3\times10^{-4}``) in this process; anything else goes to math-verify through
:func:`~drift_envs.math.verifier.check_answer`, the env's own checker.
"""

from __future__ import annotations

import ast
import math
import operator
import re

from drift_envs.core import Task, Verdict
from drift_envs.math.answers import Committed, normalize_answer
from drift_envs.math.sources import math_schema
from drift_envs.math.verifier import GoldAnswer, MathVerifier, check_answer
from drift_envs.sources.records import DataError, Row, require_field

__all__ = ["ANSWER_TYPES", "FLOAT_REL_TOL", "read_value", "theoremqa_verdict"]

ANSWER_TYPES = ("bool", "option", "integer", "float", "list of integer", "list of float")
#: relative tolerance of a ``float`` answer: TheoremQA's own evaluation accepts a prediction within 4 %
FLOAT_REL_TOL = 0.04

#: longest expression evaluated in-process (anything longer goes to math-verify's bounded workers)
MAX_EXPRESSION_CHARS = 500

_TRUE = {"true", "yes", "correct", "right"}
_FALSE = {"false", "no", "incorrect", "wrong"}


# ---- the schema -----------------------------------------------------------------------------------


def _gold_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_gold_text(v) for v in value) + "]"
    return str(value).strip()


@math_schema(
    "theoremqa",
    detect=lambda d: "Question" in d and "Answer" in d and "Answer_type" in d,
    expects="TheoremQA (Question, Answer, Answer_type)",
    meta_fields=("Answer_type", "field", "subfield", "theorem"),
)
def _theoremqa(row: Row) -> tuple[str, str]:
    question = require_field(row, "Question")
    answer_type = require_field(row, "Answer_type").strip().lower()  # the data has "Option" as well
    if answer_type not in ANSWER_TYPES:
        raise DataError(
            f"{row.where}: field 'Answer_type' is {answer_type!r}; expected one of {ANSWER_TYPES}"
        )
    if row.data.get("Answer") is None or _gold_text(row.data["Answer"]) == "":
        raise DataError(f"{row.where}: missing field 'Answer'")
    gold = _gold_text(row.data["Answer"])
    if _parse_gold(gold, answer_type, row.where) is None:  # a gold that cannot be read is refused here
        raise DataError(f"{row.where}: field 'Answer' {gold!r} cannot be read as Answer_type {answer_type!r}")
    return question, gold


# ---- reading values -------------------------------------------------------------------------------

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCS = {"sqrt": math.sqrt, "ln": math.log, "log": math.log10, "exp": math.exp}
_CONSTS = {"pi": math.pi, "e": math.e}
_FRAC_RE = re.compile(r"\\frac\{([^{}]*)\}\{([^{}]*)\}")
_SQRT_N_RE = re.compile(r"\\sqrt\[([^\[\]]*)\]\{([^{}]*)\}")
_SQRT_RE = re.compile(r"\\sqrt\{([^{}]*)\}")
_SCI_TIMES_RE = re.compile(r"(?:\\times|\\cdot|\*|x)10\^")
# units after a number: letters, \mathrm{...}, ^2, /, ·, ° and the like, but no further digits
# unless in an exponent (m/s^2, kg*m^2, km/h, ohms, \Omega)
_UNIT_RE = re.compile(r"^(?:\\?[A-Za-zΩμ°·/*]|\^\{?-?\d+\}?|\\mathrm\{[^{}]*\}|\\text\{[^{}]*\}|[(){}])+$")
_NUMBER_HEAD_RE = re.compile(
    r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:\\times10\^\{?[-+]?\d+\}?)?)(.*)$"
)
_LETTER_RE = re.compile(r"^\(?([a-jA-J])\)?$")


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTS:
        return _CONSTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 400 or abs(left) > 1e100):
            raise ValueError("exponent too large to evaluate here")
        return _OPS[type(node.op)](left, right)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and len(node.args) == 1
        and not node.keywords
    ):
        return _FUNCS[node.func.id](_eval(node.args[0]))
    raise ValueError(f"not arithmetic: {ast.dump(node)[:80]}")


def _arithmetic(latex: str) -> float | None:
    """The value of an arithmetic LaTeX expression (fractions, roots, powers, pi), or None."""
    if len(latex) > MAX_EXPRESSION_CHARS:
        return None
    s = latex
    for _ in range(20):  # innermost first; each pass removes one level of nesting
        new = _SQRT_N_RE.sub(r"((\2)**(1/(\1)))", s)
        new = _FRAC_RE.sub(r"((\1)/(\2))", new)
        new = _SQRT_RE.sub(r"sqrt(\1)", new)
        if new == s:
            break
        s = new
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("\\pi", "pi").replace("\\ln", "ln")
    s = (
        s.replace("\\log", "log")
        .replace("\\exp", "exp")
        .replace("{", "(")
        .replace("}", ")")
        .replace("^", "**")
    )
    s = re.sub(r"(\d|\))\s*(pi|sqrt|ln|log|exp|\()", r"\1*\2", s)  # implicit products: 2pi, 3sqrt(2), )(
    s = re.sub(r"\bpi\s*(\d|\()", r"pi*\1", s)
    if "\\" in s or not re.fullmatch(r"[0-9.+\-*/() a-z]*", s) or not s.strip():
        return None
    try:
        value = _eval(ast.parse(s, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def read_value(text: str) -> tuple[float, bool] | None:
    """``(value, percent)`` of a numeric answer with its units dropped; None when it is not one.

    ``percent`` says the answer carried a ``%``. Commas are thousands separators only in ``1,234``
    form (as :func:`~drift_envs.math.answers.normalize_answer` reads them).
    """
    s = normalize_answer(text)
    s = re.sub(r"\\(?:mathrm|text|mbox|operatorname)\s*\{([^{}]*)\}", r"\1", s)
    percent = False
    for sign in ("\\%", "%"):
        if s.endswith(sign):
            s, percent = s[: -len(sign)], True
    s = _SCI_TIMES_RE.sub("\\\\times10^", s)
    s = re.sub(r"(\d)\\times10\^\{?([-+]?\d+)\}?$", r"\1e\2", s)
    value = _arithmetic(s)
    if value is None:
        head = _NUMBER_HEAD_RE.match(s)
        if head is None:
            return None
        number, tail = head.group(1), head.group(2)
        if tail:
            if tail.endswith(("\\%", "%")):
                tail, percent = tail.rstrip("%").removesuffix("\\"), True
            # a unit starts with a letter (m/s^2, kg, \Omega); "10^{10}" is a power, not 10 of a unit
            if tail and (not _UNIT_RE.match(tail) or not re.match(r"\\?(?:mathrm\{)?[A-Za-zΩμ°]", tail)):
                return None
        value = _arithmetic(re.sub(r"\\times10\^\{?([-+]?\d+)\}?", r"e\1", number))
        if value is None:
            return None
    return value, percent


def _split_list(text: str) -> list[str] | None:
    """The elements of ``[a, b]``, ``(a, b)``, ``\\{a, b\\}`` or ``a, b``; None for a single value."""
    s = normalize_answer(text) if "," not in text else text.strip().strip("$").strip()
    s = s.replace("\\left", "").replace("\\right", "")
    for a, b in (("[", "]"), ("(", ")"), ("\\{", "\\}"), ("{", "}")):
        if s.startswith(a) and s.endswith(b):
            s = s[len(a) : -len(b)]
            break
    parts = [p.strip() for p in re.split(r",|;", s)]
    return parts if len(parts) > 1 and all(parts) else None


def _parse_gold(gold: str, answer_type: str, where: str = "") -> object | None:
    """The gold as a value of its type (bool, letter, float, list of floats), or None if unreadable."""
    if answer_type == "bool":
        word = gold.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    if answer_type == "option":
        m = _LETTER_RE.match(gold.strip())
        return m.group(1).lower() if m else None
    if answer_type.startswith("list"):
        parts = _split_list(gold) or [gold]
        values = [read_value(p) for p in parts]
        return None if any(v is None for v in values) else [v[0] for v in values]
    value = read_value(gold)
    return None if value is None else value[0]


# ---- judging a reply --------------------------------------------------------------------------------


def _number_matches(gold: float, pred: tuple[float, bool], integer: bool) -> bool:
    value, percent = pred
    candidates = [value, value / 100] if percent else [value]
    if integer:
        return any(abs(c - gold) <= 1e-9 * max(1.0, abs(gold)) for c in candidates)
    return any(abs(c - gold) <= FLOAT_REL_TOL * abs(gold) + 1e-12 for c in candidates)


def _bool_of(text: str) -> bool | None:
    word = re.sub(r"[^a-z]", "", normalize_answer(text).lower())
    return True if word in _TRUE else False if word in _FALSE else None


def _option_of(text: str) -> str | None:
    s = normalize_answer(text)
    s = re.sub(r"^(?:option|choice)", "", s, flags=re.IGNORECASE)
    m = _LETTER_RE.match(s.rstrip("."))
    return m.group(1).lower() if m else None


def theoremqa_verdict(
    task: Task,
    committed: Committed,
    *,
    timeout_s: float = 2.0,
    verifier: MathVerifier | None = None,
    max_wait_s: float | None = None,
) -> Verdict:
    """Judge the answer a reply committed to against a TheoremQA task's typed gold (see the module).

    A reply with several ``\\boxed{}`` answers a list with one element per box; for any other type
    several boxes that disagree are wrong. ``info["answer"]`` is the normalised answer, as
    MathFeedback reports it.
    """
    answer_type = str(task.meta["Answer_type"]).strip().lower()
    gold_text = str(task.answer)
    gold = _parse_gold(gold_text, answer_type)
    boxes = list(committed.boxes) if committed.several is not None else [committed.answer]
    answer = ", ".join(normalize_answer(b) for b in boxes)
    if answer_type.startswith("list"):
        elements = boxes if len(boxes) > 1 else (_split_list(committed.answer) or [committed.answer])
        values = [read_value(e) for e in elements]
        integer = answer_type == "list of integer"
        correct = (
            isinstance(gold, list)
            and len(values) == len(gold)
            and all(v is not None for v in values)
            # in any order, as TheoremQA's own evaluation compares lists (both sorted)
            and all(
                _number_matches(g, v, integer)
                for g, v in zip(
                    sorted(gold), sorted(values, key=lambda v: v[0] / 100 if v[1] else v[0]), strict=True
                )
            )
        )
        return Verdict(correct=bool(correct), format_ok=True, answer=answer)
    if len({normalize_answer(b) for b in boxes}) > 1:  # "\boxed{True} \boxed{False}": no single answer
        return Verdict(correct=False, format_ok=True, answer=answer)
    pred = committed.answer
    if answer_type == "bool":
        return Verdict(
            correct=_bool_of(pred) is not None and _bool_of(pred) == gold, format_ok=True, answer=answer
        )
    if answer_type == "option":
        return Verdict(
            correct=_option_of(pred) is not None and _option_of(pred) == gold, format_ok=True, answer=answer
        )
    value = read_value(pred)
    if value is not None and gold is not None:
        return Verdict(
            correct=_number_matches(float(gold), value, answer_type == "integer"),
            format_ok=True,
            answer=answer,
        )
    # a form this module does not evaluate (a symbolic expression): math-verify decides, as for any gold
    correct = check_answer(
        GoldAnswer.from_text(gold_text), pred, timeout_s=timeout_s, verifier=verifier, max_wait_s=max_wait_s
    )
    return Verdict(correct=correct, format_ok=True, answer=answer)
