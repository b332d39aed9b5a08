"""Numeric rules written by administrators ("total(watts) <= psu", "memory >= 2 * cores").

A formula is parsed with Python's ``ast`` module and only a small whitelist of node kinds is
accepted (numbers, names, + - *, a number dividing, comparisons joined by ``and``, and
``total(property)``). Nothing is ever evaluated by Python: the tree is turned into a linear
sum (coefficients per term, a constant) that the solver encodes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_LENGTH = 500
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COMPARE = {ast.LtE: "<=", ast.GtE: ">=", ast.Lt: "<", ast.Gt: ">", ast.Eq: "=="}


class FormulaError(ValueError):
    """A formula that cannot be used, with the reason in words."""


# A linear sum: {term: coefficient}, where a term is a name or ("total", property); plus a
# constant under the key None.
Linear = dict


@dataclass(frozen=True)
class Comparison:
    left: Linear
    op: str
    right: Linear

    def difference(self) -> Linear:
        """left - right, so the comparison reads ``difference op 0``."""
        out: Linear = dict(self.left)
        for key, value in self.right.items():
            out[key] = out.get(key, Fraction(0)) - value
        return {k: v for k, v in out.items() if v != 0 or k is None}


def _number(node: ast.AST) -> Fraction:
    value = node.value  # type: ignore[attr-defined]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormulaError("only numbers and names may appear")
    return Fraction(str(value))


def _add(a: Linear, b: Linear, sign: int = 1) -> Linear:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, Fraction(0)) + sign * value
    return out


def _scale(a: Linear, factor: Fraction) -> Linear:
    return {k: v * factor for k, v in a.items()}


def _constant(a: Linear) -> Fraction | None:
    """The value of a sum without terms, or None when it has terms."""
    if any(k is not None and v != 0 for k, v in a.items()):
        return None
    return a.get(None, Fraction(0))


def _sum(node: ast.AST) -> Linear:
    if isinstance(node, ast.Constant):
        return {None: _number(node)}
    if isinstance(node, ast.Name):
        if not NAME.match(node.id):
            raise FormulaError(f"{node.id!r} is not a name of this model")
        return {node.id: Fraction(1)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _sum(node.operand)
        return _scale(inner, Fraction(-1 if isinstance(node.op, ast.USub) else 1))
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == "total" and
                len(node.args) == 1 and not node.keywords and
                isinstance(node.args[0], ast.Name)):
            raise FormulaError("the only function is total(property), e.g. total(watts)")
        return {("total", node.args[0].id): Fraction(1)}
    if isinstance(node, ast.BinOp):
        left, right = _sum(node.left), _sum(node.right)
        if isinstance(node.op, ast.Add):
            return _add(left, right)
        if isinstance(node.op, ast.Sub):
            return _add(left, right, -1)
        if isinstance(node.op, ast.Mult):
            lc, rc = _constant(left), _constant(right)
            if lc is None and rc is None:
                raise FormulaError("multiply by a number, not by another value "
                                   "(rules must be linear, e.g. 2 * cores)")
            return _scale(right, lc) if lc is not None else _scale(left, rc)  # type: ignore[arg-type]
        if isinstance(node.op, ast.Div):
            rc = _constant(right)
            if rc is None or rc == 0:
                raise FormulaError("divide only by a number other than zero")
            return _scale(left, 1 / rc)
        raise FormulaError("use only + - * / between values")
    raise FormulaError("use numbers, names, + - * /, total(property) and one comparison "
                       "(<=, >=, <, >, ==)")


def parse(text: str) -> list[Comparison]:
    """The comparisons a formula states (``a <= b and c >= 2``); raises FormulaError."""
    text = str(text or "").strip()
    if not text:
        raise FormulaError("write the rule, e.g. total(watts) <= psu")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.replace("≤", "<=").replace("≥", ">=").replace("×", "*"),
                         mode="eval")
    except SyntaxError:
        raise FormulaError("cannot be read: check brackets and operators") from None
    body = tree.body
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) \
        else [body]
    found: list[Comparison] = []
    for part in parts:
        if not isinstance(part, ast.Compare):
            raise FormulaError("must compare two sides, e.g. memory >= 2 * cores")
        sides = [part.left, *part.comparators]
        for op, left, right in zip(part.ops, sides, sides[1:], strict=False):
            if type(op) not in COMPARE:
                raise FormulaError("compare with <=, >=, <, > or ==")
            found.append(Comparison(_sum(left), COMPARE[type(op)], _sum(right)))
    return found


def parse_sum(text: str) -> Linear:
    """A value formula without comparison (a computed value such as ``total(watts) + 40``)."""
    text = str(text or "").strip()
    if not text:
        raise FormulaError("write the formula, e.g. total(watts) + 40")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.replace("×", "*"), mode="eval")
    except SyntaxError:
        raise FormulaError("cannot be read: check brackets and operators") from None
    return _sum(tree.body)


def names(linear: Linear) -> set[str]:
    return {k for k in linear if isinstance(k, str)}


def properties(linear: Linear) -> set[str]:
    return {k[1] for k in linear if isinstance(k, tuple)}


def substitute(linear: Linear, values: dict[str, Linear]) -> Linear:
    """Replace computed names by their own sums (already expanded)."""
    out: Linear = {}
    for key, coefficient in linear.items():
        if isinstance(key, str) and key in values:
            out = _add(out, _scale(values[key], coefficient))
        else:
            out = _add(out, {key: coefficient})
    return out


def expand_computed(formulas: dict[str, Linear]) -> dict[str, Linear]:
    """Computed values expanded into sums of attributes; a cycle raises FormulaError naming it
    (``load -> margin -> load``)."""
    done: dict[str, Linear] = {}
    visiting: list[str] = []

    def visit(name: str) -> Linear:
        if name in done:
            return done[name]
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise FormulaError("the computed values refer to each other in a circle: "
                               + " -> ".join(cycle))
        visiting.append(name)
        own = formulas[name]
        inner = {n: visit(n) for n in names(own) if n in formulas}
        visiting.pop()
        done[name] = substitute(own, inner)
        return done[name]

    for name in formulas:
        visit(name)
    return done
