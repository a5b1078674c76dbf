"""How the judge compiles a check's tests: an assertion records its failure and the test goes on, and the short circuits inside one evaluate every operand, so the judge's requests never depend on a verdict.

Part of the sandbox fork server (see ``_forkserver.py``): standard library only.
"""

import ast

# the candidate's code may rebind names in its own `builtins` module; what this file runs in its
# process (encoding replies, reading requests) keeps the real ones
from builtins import (  # noqa: E402, I001, UP029
    bool,
    dict,
    frozenset,
    int,
    isinstance,
    len,
    list,
    set,
    str,
    tuple,
    type,
)


class _AssertRewriter(ast.NodeTransformer):
    """Asserts that record instead of raising, so what the judge asks the candidate next never
    depends on a verdict (the order, number and timing of its requests are the same whether an
    answer was right or wrong; the candidate could otherwise learn the expected values by watching):

    * ``assert a == b`` becomes ``__drift_eq__(a, b)`` (a failure can say what was returned and what
      was expected), any other ``assert t`` becomes ``__drift_true__(t)``; both record the first
      failure of the test and return, and the test goes on (its message, evaluated only on failure
      in Python, is dropped);
    * inside an assert, ``x and y`` / ``x or y`` and chains such as ``a < b < c`` evaluate every
      operand before combining them as Python would (an operand whose value is not needed may
      raise: that is ignored), and ``all(...)`` / ``any(...)`` look at every item, so no call is
      skipped because an earlier comparison failed.

    This holds in the test's own helper functions too."""

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        t = _EagerAssert().visit(node.test)
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
            call = ast.Call(ast.Name("__drift_eq__", ast.Load()), [t.left, t.comparators[0]], [])
        else:
            call = ast.Call(ast.Name("__drift_true__", ast.Load()), [t], [])
        return ast.copy_location(ast.Expr(call), node)


class _EagerAssert(ast.NodeTransformer):
    """The expression of an assert with its short circuits made eager (see :class:`_AssertRewriter`)."""

    @staticmethod
    def _binds(node: ast.AST) -> bool:
        # a name bound inside (`:=`) would be bound in a thunk's scope instead: left as Python has it
        return any(isinstance(n, ast.NamedExpr) for n in ast.walk(node))

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self._binds(node):
            return node
        thunks = [ast.Lambda(ast.arguments([], [], None, [], [], None, []), v) for v in node.values]
        flag = ast.Constant(isinstance(node.op, ast.And))
        return ast.copy_location(
            ast.Call(ast.Name("__drift_boolop__", ast.Load()), [flag, *thunks], []), node
        )

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if len(node.ops) < 2 or self._binds(node):
            return node
        operands = [node.left, *node.comparators]
        thunks = [ast.Lambda(ast.arguments([], [], None, [], [], None, []), v) for v in operands]
        ops = ast.Constant(tuple(type(op).__name__ for op in node.ops))
        return ast.copy_location(ast.Call(ast.Name("__drift_chain__", ast.Load()), [ops, *thunks], []), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id in ("all", "any") and len(node.args) == 1 and not node.keywords:
            node.func = ast.copy_location(ast.Name(f"__drift_{f.id}__", ast.Load()), f)
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node  # evaluated when the test calls it, not by the assert


def _source_line(tests: list, filename: str, line: int) -> str:
    """Line ``line`` of the test named ``filename`` (``<test i>``), stripped; '' when there is none."""
    try:
        lines = tests[int(filename[6:-1])].splitlines()
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""
    except (ValueError, IndexError):
        return ""


def _drift_boolop(is_and: bool, *thunks):
    """``a and b and ...`` (or ``or``) with every operand evaluated first."""
    values = []
    for thunk in thunks:
        try:
            values.append((True, thunk()))
        except Exception as e:  # only raised if Python would have reached this operand
            values.append((False, e))
    for ok, v in values:
        if not ok:
            raise v
        if (not v) if is_and else v:
            return v
    return values[-1][1]


_COMPARE = {
    "Eq": lambda a, b: a == b,
    "NotEq": lambda a, b: a != b,
    "Lt": lambda a, b: a < b,
    "LtE": lambda a, b: a <= b,
    "Gt": lambda a, b: a > b,
    "GtE": lambda a, b: a >= b,
    "Is": lambda a, b: a is b,
    "IsNot": lambda a, b: a is not b,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
}


def _drift_chain(ops: tuple, *thunks):
    """``a < b < c`` (any chain of comparisons) with every operand evaluated first."""
    values = []
    for thunk in thunks:
        try:
            values.append((True, thunk()))
        except Exception as e:  # only raised if Python would have reached this operand
            values.append((False, e))
    if not values[0][0]:
        raise values[0][1]
    result = True
    for i, op in enumerate(ops):
        ok, right = values[i + 1]
        if not ok:
            raise right
        result = _COMPARE[op](values[i][1], right)
        if not result:
            return result
    return result


def _drift_all(items) -> bool:
    return all(list(items))


def _drift_any(items) -> bool:
    return any(list(items))


_compile_cache: dict = {}
_compile_cache_bytes = [0]


def _compile_tests(setup: str, tests: list) -> tuple:
    """``(setup code, [test code], names the tests and set-up read)``, cached by source (bounded)."""
    key = (setup, tuple(tests))
    hit = _compile_cache.get(key)
    if hit is not None:
        return hit
    setup_code = compile(setup or "", "<test setup>", "exec")
    units = []
    names = set()
    for n in ast.walk(ast.parse(setup or "")):
        if isinstance(n, ast.Name):
            names.add(n.id)
    for i, src in enumerate(tests):
        tree = ast.parse(src, f"<test {i}>")
        names.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
        tree = ast.fix_missing_locations(_AssertRewriter().visit(tree))
        units.append(compile(tree, f"<test {i}>", "exec"))
    size = len(setup) + sum(len(t) for t in tests)
    if len(_compile_cache) >= 4096 or _compile_cache_bytes[0] + size > 64 << 20:
        _compile_cache.clear()
        _compile_cache_bytes[0] = 0
    _compile_cache[key] = hit = (setup_code, units, frozenset(names))
    _compile_cache_bytes[0] += size
    return hit


_prelude_cache: dict = {}


def _compile_prelude(src: str):
    """The compiled prelude (the judge's own copy of the task's helpers), cached by source (bounded)."""
    code = _prelude_cache.get(src)
    if code is None:
        if len(_prelude_cache) >= 1024:
            _prelude_cache.clear()
        code = _prelude_cache[src] = compile(src, "<prelude>", "exec")
    return code
