"""The configuration engine: which options remain possible after each choice, why the others
are not (the rules to blame, in words, and the change that would help), validation of a whole
configuration, authoring-time analysis, and the price, bill of materials and code.

The solver is a SAT solver (MiniSat 2.2 through python-sat) chosen by measurement (see
docs/plugins/configurator.md): every option, yes/no and number value is a boolean; every rule
is encoded as clauses guarded by its own *selector* literal, and the customer's choices are
assumptions. An unsatisfiable check returns a core of selectors and choices: exactly the
rules and choices that together rule an option out, which is what the explanation says.
Linear formulas become pseudo-Boolean constraints. Options are first proven possible by
changing one attribute of a solution (Witness), the solver is asked only for the rest. No HTTP
here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import lcm
from typing import Any

from pysat.card import CardEnc, EncType
from pysat.formula import IDPool
from pysat.pb import EncType as PBEncType
from pysat.pb import PBEnc
from pysat.solvers import Solver

from plugins.configurator import formulas

SOLVER = "minisat22"
MAX_NUMBER_VALUES = 400  # values of one number attribute (range / step)
MAX_EXPLAINED = 400  # impossible options explained per request


class ConfigurationError(ValueError):
    """Bad input, naming the field (``values.ram``) and what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- Words -------------------------------------------------------------------------------


def _attribute(definition: Mapping[str, Any], code: str) -> dict[str, Any] | None:
    for attribute in definition.get("attributes", []):
        if attribute["code"] == code:
            return attribute
    return None


def option_label(definition: Mapping[str, Any], attr: str, option: str | None) -> str:
    attribute = _attribute(definition, attr) or {"label": attr, "options": []}
    for o in attribute.get("options", []):
        if o["code"] == option:
            return f"{attribute['label']}: {o['label']}"
    return attribute["label"]


def condition_words(definition: Mapping[str, Any], condition: str) -> str:
    """'cpu=i9' -> 'Processor: Core i9'; 'wifi' -> 'Wi-Fi'; '!wifi' -> 'no Wi-Fi'."""
    negated = condition.startswith("!")
    text = condition[1:] if negated else condition
    if "=" in text:
        attr, option = text.split("=", 1)
        words = option_label(definition, attr, option)
    else:
        attribute = _attribute(definition, text) or {"label": text}
        words = attribute["label"]
    return f"not {words}" if negated else words


def rule_words(definition: Mapping[str, Any], rule: Mapping[str, Any]) -> str:
    """A rule as a sentence (its own ``message`` when the author wrote one)."""
    if rule.get("message"):
        return str(rule["message"])
    when = " and ".join(condition_words(definition, c) for c in rule.get("when", []))
    then = " or ".join(condition_words(definition, c) for c in rule.get("then", []))
    kind = rule.get("kind")
    if kind == "requires":
        return f"{when} requires {then}"
    if kind == "excludes":
        return f"{when} cannot be combined with {then}"
    if kind == "visible":
        attribute = _attribute(definition, rule.get("attribute", "")) or {"label": "?"}
        return f"{attribute['label']} is offered only with {when}"
    if kind == "table":
        labels = [(_attribute(definition, a) or {"label": a})["label"]
                  for a in rule.get("attributes", [])]
        return f"only listed combinations of {', '.join(labels)} are allowed"
    if kind == "formula":
        prefix = f"with {when}, " if when else ""
        return f"{prefix}{rule.get('formula', '')} must hold"
    if kind == "quantity":
        bounds = []
        if rule.get("min"):
            bounds.append(f"at least {rule['min']}")
        if rule.get("max"):
            bounds.append(f"at most {rule['max']}")
        if rule.get("multiple"):
            bounds.append(f"in multiples of {rule['multiple']}")
        prefix = f"with {when}, " if when else ""
        return f"{prefix}the quantity must be {' and '.join(bounds)}"
    return str(rule.get("id", "a rule"))


# --- Compiling a model -------------------------------------------------------------------


def _number_values(attribute: Mapping[str, Any]) -> list[Decimal]:
    low, high = Decimal(str(attribute["min"])), Decimal(str(attribute["max"]))
    step = Decimal(str(attribute.get("increment") or 1))
    values, value = [], low
    while value <= high and len(values) <= MAX_NUMBER_VALUES:
        values.append(value)
        value += step
    return values


@dataclass
class Explanation:
    """Why an option cannot be chosen: the rules (in words) and the choices they meet."""

    rules: list[str]
    rule_ids: list[str]
    choices: list[tuple[str, str]]  # (attribute code, words) of the choices to blame
    suggestion: list[tuple[str, str, str]] = field(default_factory=list)  # (attr, value, words)

    def words(self) -> str:
        because = "; ".join(self.rules) or "the model"
        if self.choices:
            return f"{because} (with {', '.join(w for _, w in self.choices)})"
        return because


class Engine:
    """One published model version compiled into clauses; thread-safe checks.

    ``literal(attr, option)`` is the boolean of an option (``True`` for a yes/no; a number's
    value as a Decimal); ``selectors`` maps each rule id to its guard literal.
    """

    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.definition = definition
        self.pool = IDPool()
        self.clauses: list[list[int]] = []
        self.lits: dict[tuple[str, Any], int] = {}
        self.none: dict[str, int] = {}
        self.shown: dict[str, int] = {}
        self.selectors: dict[str, int] = {}
        self.rules = {r["id"]: r for r in definition.get("rules", [])}
        self.attributes = {a["code"]: a for a in definition.get("attributes", [])}
        self._lock = threading.Lock()
        self._sums: list[tuple[Mapping[str, Any], list[tuple[int, Fraction]], Fraction, str]] = []
        # Explanations already given (exact question) and minimal cores per option.
        self._cache_lock = threading.Lock()
        self._explained: OrderedDict[tuple[int, frozenset[int]], Explanation] = OrderedDict()
        self._cores: dict[int, list[tuple[int, ...]]] = {}
        self._compile()
        self.witness = Witness(self)
        self.by_literal = {lit: key for key, lit in self.lits.items()}
        self.off_phases = [-lit for lit in self.lits.values()]
        self.rule_of = {lit: rid for rid, lit in self.selectors.items()}
        self.solver = Solver(name=SOLVER, bootstrap_with=self.clauses)
        # Whole-configuration checks get a solver of their own: the page's checks leave phase
        # preferences behind that would slow them down (measured: 6,000/s -> 150/s).
        self.validator = Solver(name=SOLVER, bootstrap_with=self.clauses)
        self._validator_lock = threading.Lock()

    def _new(self, key: Any) -> int:
        return self.pool.id(key)

    def _compile(self) -> None:
        for attr in self.definition.get("attributes", []):
            code, kind = attr["code"], attr["kind"]
            shown = self.shown[code] = self._new(("shown", code))
            if kind in ("single", "multiple"):
                options = [self._new(("opt", code, o["code"])) for o in attr["options"]]
                for o, lit in zip(attr["options"], options, strict=True):
                    self.lits[(code, o["code"])] = lit
                if kind == "single":
                    none = self.none[code] = self._new(("none", code))
                    self._exactly_one(options + [none])
                    self.clauses.append([shown, none])  # hidden: nothing chosen
                    if attr.get("required"):
                        self.clauses.append([-shown, -none])
                else:
                    for lit in options:
                        self.clauses.append([shown, -lit])
            elif kind == "yesno":
                lit = self.lits[(code, True)] = self._new(("opt", code, True))
                self.clauses.append([shown, -lit])
            elif kind == "number":
                values = [self._new(("num", code, str(v))) for v in _number_values(attr)]
                for v, lit in zip(_number_values(attr), values, strict=True):
                    self.lits[(code, v)] = lit
                none = self.none[code] = self._new(("none", code))
                self._exactly_one(values + [none])
                self.clauses.append([shown, none])
                self.clauses.append([-shown, -none])
        visible: dict[str, list[Mapping[str, Any]]] = {}
        for rule in self.definition.get("rules", []):
            if rule["kind"] == "visible":
                visible.setdefault(rule["attribute"], []).append(rule)
        for code, shown in self.shown.items():
            if code not in visible:
                self.clauses.append([shown])
        expanded = formulas.expand_computed({
            c["code"]: formulas.parse_sum(c["formula"])
            for c in self.definition.get("computed", [])})
        for rule in self.definition.get("rules", []):
            selector = self.selectors[rule["id"]] = self._new(("rule", rule["id"]))
            guard = [-selector] + [-self.condition(c) for c in rule.get("when", [])]
            kind = rule["kind"]
            if kind == "requires":
                self.clauses.append(guard + [self.condition(c) for c in rule["then"]])
            elif kind == "excludes":
                for c in rule["then"]:
                    self.clauses.append(guard + [-self.condition(c)])
            elif kind == "visible":
                shown = self.shown[rule["attribute"]]
                for c in rule.get("when", []):
                    self.clauses.append([-selector, -shown, self.condition(c)])
            elif kind == "table":
                self._table(rule, guard)
            elif kind == "formula":
                for comparison in formulas.parse(rule["formula"]):
                    linear = formulas.substitute(comparison.difference(), expanded)
                    self._linear(linear, comparison.op, guard)
                    self._sums.append((rule, *self._terms(linear), comparison.op))
        # Shown when every visibility rule's condition holds (all guarded by their selectors).
        for code, rules in visible.items():
            clause = [self.shown[code]]
            for rule in rules:
                clause.append(-self.selectors[rule["id"]])
                clause.extend(-self.condition(c) for c in rule.get("when", []))
            self.clauses.append(clause)

    def _exactly_one(self, lits: list[int]) -> None:
        encoded = CardEnc.equals(lits=lits, bound=1, vpool=self.pool,
                                 encoding=EncType.seqcounter if len(lits) > 6 else EncType.pairwise)
        self.clauses.extend(encoded.clauses)

    def condition(self, condition: str) -> int:
        negated = condition.startswith("!")
        text = condition[1:] if negated else condition
        if "=" in text:
            attr, option = text.split("=", 1)
            lit = self.lits[(attr, option)]
        else:
            lit = self.lits[(text, True)]
        return -lit if negated else lit

    def _table(self, rule: Mapping[str, Any], guard: list[int]) -> None:
        # One literal per allowed row: the row's options all hold; some row must hold.
        rows = []
        for row in rule["rows"]:
            lit = self._new(("row", rule["id"], len(rows)))
            rows.append(lit)
            for attr, option in zip(rule["attributes"], row, strict=True):
                if option != "*":
                    self.clauses.append([-lit, self.lits[(attr, option)]])
        self.clauses.append(guard + rows)

    def _terms(self, linear: formulas.Linear) -> tuple[list[tuple[int, Fraction]], Fraction]:
        """A sum over names as (literal, weight) terms plus a constant."""
        terms: dict[int, Fraction] = {}
        constant = linear.get(None, Fraction(0))

        def add(lit: int, weight: Fraction) -> None:
            terms[lit] = terms.get(lit, Fraction(0)) + weight

        for key, coefficient in linear.items():
            if key is None:
                continue
            if isinstance(key, tuple):  # total(property)
                for attr in self.definition.get("attributes", []):
                    for o in attr.get("options", []):
                        value = (o.get("properties") or {}).get(key[1])
                        if value not in (None, ""):
                            add(self.lits[(attr["code"], o["code"])],
                                coefficient * Fraction(str(value)))
                    value = (attr.get("properties") or {}).get(key[1])
                    if attr["kind"] == "yesno" and value not in (None, ""):
                        add(self.lits[(attr["code"], True)], coefficient * Fraction(str(value)))
                continue
            attr = self.attributes[key]
            if attr["kind"] in ("single", "multiple"):
                for o in attr["options"]:
                    if o.get("value") not in (None, ""):
                        add(self.lits[(key, o["code"])], coefficient * Fraction(str(o["value"])))
            elif attr["kind"] == "yesno":
                add(self.lits[(key, True)], coefficient)
            elif attr["kind"] == "number":
                for value in _number_values(attr):
                    add(self.lits[(key, value)], coefficient * Fraction(str(value)))
        return [(lit, w) for lit, w in terms.items() if w != 0], constant

    def _linear(self, linear: formulas.Linear, op: str, guard: list[int]) -> None:
        """Encode ``linear op 0`` under ``guard`` as pseudo-Boolean constraints."""
        terms, constant = self._terms(linear)
        scale = lcm(*(w.denominator for _, w in terms), constant.denominator) if terms else \
            constant.denominator
        weights = [(lit, int(w * scale)) for lit, w in terms]
        bound = -int(constant * scale)  # sum(weights) op bound
        if op in ("<", ">"):
            bound = bound - 1 if op == "<" else bound + 1
        if op in (">=", ">"):
            weights, bound = [(lit, -w) for lit, w in weights], -bound
        parts = [weights] if op != "==" else [weights, [(lit, -w) for lit, w in weights]]
        bounds = [bound] if op != "==" else [bound, -bound]
        for part, limit in zip(parts, bounds, strict=True):
            # Positive weights only: w*x with w < 0 is |w|*(not x) - |w|.
            lits, ws = [], []
            for lit, w in part:
                if w < 0:
                    lits.append(-lit)
                    ws.append(-w)
                    limit += -w
                else:
                    lits.append(lit)
                    ws.append(w)
            if limit < 0:
                self.clauses.append(list(guard))  # never holds: the guard must be false
                continue
            if sum(ws) <= limit:
                continue  # always holds
            # Short sums get the strongest encoding; long weighted sums (total(watts) over
            # hundreds of options) would take millions of clauses that way: measured, binary
            # merge stays near 100,000 clauses for 480 terms and still propagates well.
            encoding = PBEncType.best if len(lits) <= 24 else PBEncType.binmerge
            encoded = PBEnc.leq(lits=lits, weights=ws, bound=limit, vpool=self.pool,
                                encoding=encoding)
            for clause in encoded.clauses:
                self.clauses.append(guard + list(clause))

    # --- Checks ------------------------------------------------------------------------

    def solve(self, assumptions: Iterable[int]) -> tuple[bool, list[int]]:
        """(satisfiable, model or core)."""
        with self._lock:
            ok = self.solver.solve(assumptions=list(assumptions))
            return (True, self.solver.get_model() or []) if ok else \
                (False, self.solver.get_core() or [])

    def choice_literals(self, values: Mapping[str, Any], *, complete: bool = False
                        ) -> dict[str, list[int]]:
        """The assumption literals of each attribute's choice; ``complete``: what is not
        chosen is off (unticked options, 'no'), as in a saved configuration."""
        out: dict[str, list[int]] = {}
        for code, attr in self.attributes.items():
            value = values.get(code)
            kind = attr["kind"]
            lits: list[int] = []
            if kind == "single":
                if value not in (None, ""):
                    lits = [self.lits[(code, value)]]
                elif complete and not attr.get("required"):
                    lits = [self.none[code]]
            elif kind == "multiple":
                chosen = set(value or [])
                lits = [self.lits[(code, o)] for o in sorted(chosen)]
                if complete:
                    lits += [-self.lits[(code, o["code"])] for o in attr["options"]
                             if o["code"] not in chosen]
            elif kind == "yesno":
                if value is not None:
                    lits = [self.lits[(code, True)] if value else -self.lits[(code, True)]]
                elif complete:
                    lits = [-self.lits[(code, True)]]
            elif kind == "number":
                if value not in (None, ""):
                    lits = [self.lits[(code, Decimal(str(value)))]]
            if lits:
                out[code] = lits
        return out

    def _blame(self, core: Iterable[int], choices: Mapping[str, list[int]]) -> Explanation:
        owner = {lit: code for code, lits in choices.items() for lit in lits}
        rule_ids = [self.rule_of[lit] for lit in core if lit in self.rule_of]
        blamed = []
        for code in dict.fromkeys(owner[lit] for lit in core if lit in owner):
            blamed.append((code, self.choice_words(code, choices[code])))
        return Explanation(rules=[rule_words(self.definition, self.rules[r]) for r in rule_ids],
                           rule_ids=rule_ids, choices=blamed)

    def choice_words(self, code: str, lits: list[int]) -> str:
        attr = self.attributes[code]
        words = []
        for lit in lits:
            key = self.by_literal.get(abs(lit))
            if key is None or lit < 0 and attr["kind"] == "multiple":
                continue
            if attr["kind"] == "yesno":
                words.append(f"{attr['label']}: {'yes' if lit > 0 else 'no'}")
            elif attr["kind"] == "number":
                words.append(f"{attr['label']}: {key[1].normalize():f}")
            else:
                words.append(option_label(self.definition, code, key[1]))
        if not words and lits:
            words.append(f"{attr['label']}: nothing" if attr["kind"] != "multiple"
                         else f"{attr['label']}: only what is ticked")
        return ", ".join(words)

    def check(self, assumptions: Iterable[int]) -> bool:
        """Satisfiable or not, without copying out the model (~30,000 literals)."""
        with self._lock:
            return bool(self.solver.solve(assumptions=list(assumptions)))

    def _minimal_core(self, core: list[int], fixed: list[int]) -> list[int]:
        """Drop core members one by one while the rest stays unsatisfiable (deletion-based
        minimisation), so an explanation names no rule that is not needed."""
        kept = list(core)
        for lit in list(kept):
            if lit in fixed:
                continue
            trial = [x for x in kept if x != lit]
            if not self.check(trial + fixed):
                kept = trial
        return kept

    def _known_core(self, target: int, assumptions: set[int]) -> list[int] | None:
        """A minimal core found earlier for ``target`` that the current assumptions still
        contain: it still rules ``target`` out, and still minimally (a core's minimality does
        not depend on the other assumptions), so the explanation is the same."""
        for core in self._cores.get(target, ()):
            if assumptions.issuperset(core):
                return list(core)
        return None

    def _remember_core(self, target: int, core: list[int]) -> None:
        with self._cache_lock:
            if len(self._cores) > 50_000:
                self._cores.clear()
            kept = self._cores.setdefault(target, [])
            kept.insert(0, tuple(core))
            del kept[4:]

    def explain(self, target: int, choices: Mapping[str, list[int]], *, minimal: bool = True
                ) -> Explanation | None:
        """None when ``target`` is possible with these choices and every rule; otherwise
        the rules and choices that rule it out and, when choices are to blame, the smallest
        change of them found that makes it possible."""
        assumptions = list(self.selectors.values()) + [x for v in choices.values() for x in v]
        key = (target, frozenset(assumptions))
        with self._cache_lock:
            if key in self._explained:
                self._explained.move_to_end(key)
                return self._explained[key]
        core = self._known_core(target, key[1]) if minimal else None
        if core is None:
            ok, core = self.solve(assumptions + [target])
            if ok:
                return None
            core = [lit for lit in core if lit != target]
            if minimal:
                core = self._minimal_core(core, [target])
                self._remember_core(target, core)
        explanation = self._blame(core, choices)
        if explanation.choices:
            explanation.suggestion = self.suggest(target, choices,
                                                  [code for code, _ in explanation.choices])
        if minimal:
            # The same question again (a page reloaded, another customer with the same
            # choices) is answered from memory: a version never changes.
            with self._cache_lock:
                self._explained[key] = explanation
                if len(self._explained) > 20_000:
                    self._explained.popitem(last=False)
        return explanation

    def suggest(self, target: int, choices: Mapping[str, list[int]], blamed: list[str]
                ) -> list[tuple[str, str, str]]:
        """New values for the blamed attributes (the rest kept) that make ``target``
        possible, or [] when changing them is not enough."""
        keep = [x for code, lits in choices.items() if code not in blamed for x in lits]
        ok, model = self.solve(list(self.selectors.values()) + keep + [target])
        if not ok:
            return []
        true = {lit for code in blamed for lit in self.witness.primary[code]
                if _holds_in(model, lit)}
        out = []
        for code in blamed:
            attr = self.attributes[code]
            value = self.value_in(code, true)
            if attr["kind"] == "multiple":
                words = ", ".join(option_label(self.definition, code, v).split(": ", 1)[1]
                                  for v in value) or "none"
            elif attr["kind"] == "yesno":
                words = "yes" if value else "no"
            elif attr["kind"] == "number":
                words = f"{value.normalize():f}" if value is not None else "none"
            else:
                words = option_label(self.definition, code, value).split(": ", 1)[-1] \
                    if value else "none"
            out.append((code, value, f"{attr['label']}: {words}"))
        return out

    def value_in(self, code: str, true: set[int]) -> Any:
        attr = self.attributes[code]
        if attr["kind"] == "yesno":
            return self.lits[(code, True)] in true
        if attr["kind"] == "multiple":
            return [o["code"] for o in attr["options"] if self.lits[(code, o["code"])] in true]
        if attr["kind"] == "single":
            return next((o["code"] for o in attr["options"]
                         if self.lits[(code, o["code"])] in true), None)
        if attr["kind"] == "number":
            return next((v for v in _number_values(attr) if self.lits[(code, v)] in true), None)
        return None


# --- Witnesses: proving an option possible without a solver call ---------------------------


class Witness:
    """Checks a concrete configuration (the true option, value, none and shown literals)
    against the model's rules as the clauses state them, with every rule in force.

    A page's answer changes one attribute of a solution the solver found and checks the
    result here: when it keeps every rule, that configuration proves the option possible
    (exact, no solver call); when not, the solver is asked as before. It never proves an
    option impossible. Only the rules that read the changed attribute (or an attribute whose
    visibility it changes) are checked again: the solution kept all the others.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        attrs = engine.attributes
        self.primary: dict[str, list[int]] = {}
        for code in attrs:
            lits = [lit for (c, _), lit in engine.lits.items() if c == code]
            if code in engine.none:
                lits.append(engine.none[code])
            self.primary[code] = lits
        self.owner = {lit: code for code, lits in self.primary.items() for lit in lits}
        self.options_of: dict[str, list[tuple[Any, int]]] = {code: [] for code in attrs}
        for (code, option), lit in engine.lits.items():
            self.options_of[code].append((option, lit))
        self.visible: dict[str, list[int]] = {}  # attribute -> conditions of its visibility
        self.reads: dict[str, list[tuple[str, Any]]] = {code: [] for code in attrs}
        self.shown_by: dict[str, set[str]] = {code: set() for code in attrs}

        def reads(rule_check: tuple[str, Any], lits: Iterable[int]) -> None:
            for code in {self.owner[abs(lit)] for lit in lits if abs(lit) in self.owner}:
                self.reads[code].append(rule_check)

        for rule in engine.definition.get("rules", []):
            when = [engine.condition(c) for c in rule.get("when", [])]
            kind = rule["kind"]
            if kind in ("requires", "excludes"):
                then = [engine.condition(c) for c in rule["then"]]
                reads((kind, (when, then)), when + then)
            elif kind == "table":
                exact, wild = set(), []
                for row in rule["rows"]:
                    if "*" in row:
                        wild.append(tuple(row))
                    else:
                        exact.add(tuple(row))
                columns = list(rule["attributes"])
                check = ("table", (when, columns, exact, wild))
                reads(check, when)
                for code in columns:
                    self.reads[code].append(check)
            elif kind == "visible":
                self.visible.setdefault(rule["attribute"], []).extend(when)
        for rule, terms, constant, op in engine._sums:
            when = [engine.condition(c) for c in rule.get("when", [])]
            reads(("sum", (when, terms, constant, op)), when + [lit for lit, _ in terms])
        for code, conditions in self.visible.items():
            for other in {self.owner[abs(lit)] for lit in conditions}:
                self.shown_by[other].add(code)

    def solution(self, model: list[int]) -> set[int]:
        """The true primary and shown literals of a solver's model."""
        out = {lit for lits in self.primary.values() for lit in lits if _holds_in(model, lit)}
        out |= {lit for lit in self.engine.shown.values() if _holds_in(model, lit)}
        return out

    def changed(self, true: set[int], code: str, candidate: int) -> set[int] | None:
        """``true`` with attribute ``code`` set to ``candidate`` (an option, value or yes /
        no literal; a multiple choice keeps its other options), or None if unchanged."""
        engine, attr = self.engine, self.engine.attributes[code]
        out = set(true)
        if attr["kind"] == "multiple":
            out.add(candidate)
        elif attr["kind"] == "yesno":
            out.discard(abs(candidate))
            if candidate > 0:
                out.add(candidate)
        else:
            out.difference_update(self.primary[code])
            out.add(candidate)
        if out == true:
            return None
        # Visibility follows the values (shown exactly when every condition holds).
        for other in self.shown_by[code] | {code}:
            shown = engine.shown[other]
            out.discard(shown)
            if all(_true(out, lit) for lit in self.visible.get(other, [])):
                out.add(shown)
        return out

    def keeps_rules(self, true: set[int], code: str) -> bool:
        """Whether ``true`` (``code`` changed in a solution) keeps every rule."""
        engine = self.engine
        for other in self.shown_by[code] | {code}:
            attr, shown = engine.attributes[other], engine.shown[other] in true
            kind = attr["kind"]
            if kind == "single":
                none = engine.none[other] in true
                if (not shown and not none) or (shown and none and attr.get("required")):
                    return False
            elif kind == "number":
                if shown == (engine.none[other] in true):
                    return False
            elif kind in ("multiple", "yesno") and not shown:
                if any(lit in true for lit in self.primary[other]):
                    return False
        checked = set()
        for other in self.shown_by[code] | {code}:
            for check in self.reads[other]:
                if id(check) in checked:
                    continue
                checked.add(id(check))
                if not self._holds(true, check):
                    return False
        return True

    def _holds(self, true: set[int], check: tuple[str, Any]) -> bool:
        kind, data = check
        when = data[0]
        if not all(_true(true, lit) for lit in when):
            return True
        if kind == "requires":
            return any(_true(true, lit) for lit in data[1])
        if kind == "excludes":
            return not any(_true(true, lit) for lit in data[1])
        if kind == "table":
            _, columns, exact, wild = data
            lits = self.engine.lits
            if all(self.engine.attributes[c]["kind"] == "single" for c in columns):
                row = tuple(next((o for o, lit in self.options_of[c] if lit in true), None)
                            for c in columns)
                if row in exact:
                    return True
                return any(all(w in ("*", v) for w, v in zip(r, row, strict=True))
                           for r in wild)
            return any(all(w == "*" or lits[(c, w)] in true
                           for c, w in zip(columns, r, strict=True))
                       for r in (*exact, *wild))
        _, terms, constant, op = data
        total = constant + sum((w for lit, w in terms if _true(true, lit)), Fraction(0))
        return {"<=": total <= 0, "<": total < 0, ">=": total >= 0, ">": total > 0,
                "==": total == 0}[op]



def _true(true: set[int], lit: int) -> bool:
    return lit in true if lit > 0 else -lit not in true


# --- What a configurator page shows after a choice -----------------------------------------


@dataclass
class OptionState:
    code: Any
    label: str
    possible: bool
    chosen: bool
    explanation: Explanation | None = None


@dataclass
class AttributeState:
    code: str
    label: str
    kind: str
    shown: bool
    options: list[OptionState]
    allowed_numbers: list[Decimal] = field(default_factory=list)


@dataclass
class Assessment:
    """The page's whole answer: per attribute what is possible and why not, conflicts
    among the choices made, and whether the configuration is complete."""

    attributes: dict[str, AttributeState]
    conflict: Explanation | None
    missing: list[str]

    @property
    def complete(self) -> bool:
        return self.conflict is None and not self.missing


def _candidates(engine: Engine, code: str) -> list[tuple[Any, str, int]]:
    attr = engine.attributes[code]
    if attr["kind"] in ("single", "multiple"):
        return [(o["code"], o["label"], engine.lits[(code, o["code"])]) for o in attr["options"]]
    if attr["kind"] == "yesno":
        lit = engine.lits[(code, True)]
        return [(True, "Yes", lit), (False, "No", -lit)]
    if attr["kind"] == "number":
        return [(v, f"{v.normalize():f}", engine.lits[(code, v)]) for v in _number_values(attr)]
    return []


def _holds_in(model: list[int], lit: int) -> bool:
    index = abs(lit) - 1
    return index < len(model) and model[index] == lit


def _cover(engine: Engine, assumptions: list[int], groups: list[list[int]],
           known: set[int]) -> tuple[set[int], set[int]]:
    """(possible, impossible) among the candidate literals (grouped per attribute) under
    ``assumptions``. Each check asks the solver to prefer one unproven candidate of every
    attribute (solver phases), so one satisfiable answer proves up to one option per
    attribute possible: the number of checks stays near the largest attribute's option count
    plus the impossible options, instead of the number of options."""
    possible: set[int] = set()
    impossible: set[int] = set()
    remaining = [[lit for lit in group if lit not in known] for group in groups]
    possible |= {lit for group in groups for lit in group if lit in known}
    while True:
        open_groups = [g for g in remaining if g]
        if not open_groups:
            break
        target = open_groups[0][0]
        with engine._lock:
            # Prefer every option off but one unproven candidate per attribute: the
            # solver then meets few conflicts on the way to an answer.
            engine.solver.set_phases(engine.off_phases + [g[0] for g in open_groups])
        sat, model = engine.solve(assumptions + [target])
        if not sat:
            impossible.add(target)
            open_groups[0].pop(0)
            continue
        # The model lists every variable in order (variable v at v - 1, signed): look the
        # candidates up rather than building a set of ~30,000 literals per answer.
        for group in remaining:
            covered = [lit for lit in group if _holds_in(model, lit)]
            if covered:
                possible.update(covered)
                group[:] = [lit for lit in group if lit not in covered]
    return possible, impossible


def _witnessed(engine: Engine, solution: set[int], code: str) -> set[int]:
    """The candidates of ``code`` (and its shown literal) proven possible by changing only
    ``code`` in ``solution`` (see Witness)."""
    out: set[int] = set()
    shown = engine.shown[code]
    for _, _, lit in _candidates(engine, code):
        if _true(solution, lit):
            continue  # the solution itself proves it
        changed = engine.witness.changed(solution, code, lit)
        if changed is not None and engine.witness.keeps_rules(changed, code):
            out.add(lit)
            out.add(shown if shown in changed else -shown)
    return out


def assess(engine: Engine, values: Mapping[str, Any], *, explain: bool = True,
           minimal: bool = True, witnesses: bool = True) -> Assessment:
    """After a choice: every option's possibility given the other attributes' choices, each
    impossible one explained (rules in words, choices to blame, a change that helps)."""
    choices = engine.choice_literals(values)
    selectors = list(engine.selectors.values())
    all_choices = [x for lits in choices.values() for x in lits]
    ok, found = engine.solve(selectors + all_choices)
    conflict = None
    if not ok:
        core = engine._minimal_core(list(found), []) if minimal else list(found)
        conflict = engine._blame(core, choices)
    known = set(found) if ok else set()
    # Attributes without a choice of their own share one assumption set (every choice), so
    # their candidates are covered together; a chosen attribute is asked without its choice.
    free = [code for code in engine.attributes if code not in choices]
    verdict: dict[int, bool] = {}
    groups = [(free, all_choices)] + [
        ([code], [x for k, lits in choices.items() if k != code for x in lits])
        for code in choices]
    assumption_of: dict[str, list[int]] = {}
    solution = engine.witness.solution(found) if ok else None
    for codes, own in groups:
        assumptions = selectors + own
        groups = [[lit for _, _, lit in _candidates(engine, code)] for code in codes]
        groups += [[engine.shown[code], -engine.shown[code]] for code in codes]
        # The answer under every choice also answers under fewer of them: it proves the
        # chosen option of a chosen attribute (one check fewer per choice); and that
        # answer with one attribute changed, when it keeps every rule, proves the change.
        proven = set(known)
        if solution is not None and witnesses:
            for code in codes:
                proven |= _witnessed(engine, solution, code)
        possible, impossible = _cover(engine, assumptions, [g for g in groups if g], proven)
        for code in codes:
            assumption_of[code] = own
        verdict.update({lit: True for lit in possible})
        verdict.update({lit: False for lit in impossible})
    states: dict[str, AttributeState] = {}
    explained = 0
    for code, attr in engine.attributes.items():
        others = {k: v for k, v in choices.items() if k != code}
        options: list[OptionState] = []
        for value, label, lit in _candidates(engine, code):
            is_possible = verdict.get(lit, False)
            why = None
            if not is_possible and explain and attr["kind"] != "number" and \
                    explained < MAX_EXPLAINED:
                explained += 1
                why = engine.explain(lit, others, minimal=minimal)
            chosen = _is_chosen(attr, values.get(code), value)
            options.append(OptionState(value, label, is_possible, chosen, why))
        shown = verdict.get(engine.shown[code], False)
        allowed = [o.code for o in options if o.possible] if attr["kind"] == "number" else []
        states[code] = AttributeState(code, attr["label"], attr["kind"], shown,
                                      options if attr["kind"] != "number" else [], allowed)
    missing = []
    if ok:
        for code, attr in engine.attributes.items():
            always_shown = not verdict.get(-engine.shown[code], True)
            if always_shown and attr.get("required") and values.get(code) in (None, "", []):
                missing.append(code)
    return Assessment(states, conflict, missing)


def _is_chosen(attr: Mapping[str, Any], value: Any, candidate: Any) -> bool:
    if attr["kind"] == "multiple":
        return candidate in (value or [])
    if attr["kind"] == "number":
        return value not in (None, "") and Decimal(str(value)) == candidate
    if attr["kind"] == "yesno":
        return value is not None and bool(value) == candidate
    return value == candidate


# --- Cleaning submitted values -------------------------------------------------------------


def clean_values(definition: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Submitted values checked against the model: unknown attributes or options (an option
    of another model), numbers outside the range or off the step, over-long text are refused
    with the field named. Nothing about rules here: see :func:`validate`."""
    attributes = {a["code"]: a for a in definition.get("attributes", [])}
    out: dict[str, Any] = {}
    for code, value in raw.items():
        where = f"values.{code}"
        attr = attributes.get(code)
        if attr is None:
            raise ConfigurationError(where, "this model has no such attribute")
        kind = attr["kind"]
        options = {o["code"] for o in attr.get("options", [])}
        if kind == "single":
            if value in (None, ""):
                continue
            if not isinstance(value, str) or value not in options:
                raise ConfigurationError(where, f"{value!r} is not an option of "
                                         f"{attr['label']} in this model")
            out[code] = value
        elif kind == "multiple":
            items = value if isinstance(value, list) else [value] if value else []
            for item in items:
                if not isinstance(item, str) or item not in options:
                    raise ConfigurationError(where, f"{item!r} is not an option of "
                                             f"{attr['label']} in this model")
            out[code] = sorted(set(items))
        elif kind == "yesno":
            if value in (None, ""):
                continue
            if isinstance(value, bool):
                out[code] = value
            elif str(value).lower() in ("yes", "true", "1", "on"):
                out[code] = True
            elif str(value).lower() in ("no", "false", "0", "off"):
                out[code] = False
            else:
                raise ConfigurationError(where, "answer yes or no")
        elif kind == "number":
            if value in (None, ""):
                continue
            try:
                number = Decimal(str(value).strip())
            except ArithmeticError:
                raise ConfigurationError(where, "is not a number") from None
            if not number.is_finite():
                raise ConfigurationError(where, "is not a number")
            low, high = Decimal(str(attr["min"])), Decimal(str(attr["max"]))
            if number < low or number > high:
                raise ConfigurationError(where, f"must be between {low.normalize():f} and "
                                         f"{high.normalize():f} (got {number.normalize():f})")
            step = Decimal(str(attr.get("increment") or 1))
            if (number - low) % step != 0:
                raise ConfigurationError(where, f"must be a step of {step.normalize():f} "
                                         f"from {low.normalize():f}")
            out[code] = str(number.normalize()) if number != number.to_integral() \
                else str(int(number))
        elif kind == "text":
            text = " ".join(str(value or "").split())
            limit = int(attr.get("max_length") or 200)
            if len(text) > limit:
                raise ConfigurationError(where, f"is longer than {limit} characters")
            if text:
                out[code] = text
    return out


def quantity_problems(definition: Mapping[str, Any], values: Mapping[str, Any],
                      quantity: Decimal) -> list[tuple[str, str]]:
    """(rule id, words) of the quantity rules this quantity breaks."""
    problems = []
    for rule in definition.get("rules", []):
        if rule["kind"] != "quantity":
            continue
        if not all(_holds(definition, values, c) for c in rule.get("when", [])):
            continue
        low, high, multiple = (Decimal(str(rule[k])) if rule.get(k) not in (None, "") else None
                               for k in ("min", "max", "multiple"))
        if (low is not None and quantity < low) or (high is not None and quantity > high) or \
                (multiple and quantity % multiple != 0):
            problems.append((rule["id"], rule_words(definition, rule)))
    return problems


def _holds(definition: Mapping[str, Any], values: Mapping[str, Any], condition: str) -> bool:
    negated = condition.startswith("!")
    text = condition[1:] if negated else condition
    if "=" in text:
        attr, option = text.split("=", 1)
        value = values.get(attr)
        result = option in value if isinstance(value, list) else value == option
    else:
        result = bool(values.get(text))
    return result != negated


@dataclass
class Validation:
    ok: bool
    errors: list[tuple[str, str]]  # (field, message)


def validate(engine: Engine, values: Mapping[str, Any], quantity: Decimal = Decimal(1)
             ) -> Validation:
    """A whole configuration checked again on the server: every rule holds for exactly these
    values (nothing unticked is assumed), every required attribute shown has a value, nothing
    hidden has one, and the quantity keeps the quantity rules."""
    choices = engine.choice_literals(values, complete=True)
    with engine._validator_lock:
        ok = engine.validator.solve(assumptions=list(engine.selectors.values()) +
                                    [x for lits in choices.values() for x in lits])
        found = (engine.validator.get_model() if ok else engine.validator.get_core()) or []
    errors: list[tuple[str, str]] = []
    if not ok:
        explanation = engine._blame(found, choices)
        fields = [c for c, _ in explanation.choices] or ["values"]
        errors.append((f"values.{fields[0]}", "these choices break a rule: "
                       + explanation.words()))
    for problem in quantity_problems(engine.definition, values, quantity):
        errors.append(("quantity", problem[1]))
    if ok:
        true = {lit for lit in found if lit > 0}
        for code, attr in engine.attributes.items():
            shown = engine.shown[code] in true
            if shown and attr.get("required") and values.get(code) in (None, "", []):
                errors.append((f"values.{code}", f"choose {attr['label']}"))
            if attr["kind"] == "text":
                shown = engine.shown[code] in true
                if not shown and values.get(code):
                    errors.append((f"values.{code}",
                                   f"{attr['label']} is not offered with these choices"))
                elif shown and attr.get("required") and not values.get(code):
                    errors.append((f"values.{code}", f"fill in {attr['label']}"))
    return Validation(not errors, errors)


# --- Authoring-time analysis ---------------------------------------------------------------


@dataclass
class Analysis:
    unsatisfiable: Explanation | None
    dead: list[tuple[str, str, Explanation]]  # (attribute, option words, why)
    hidden_always: list[str]


def analyse(engine: Engine) -> Analysis:
    """Whether any configuration satisfies the model (and if not, the rules that contradict
    each other), the options that can never be chosen and why, attributes never shown."""
    selectors = list(engine.selectors.values())
    ok, core = engine.solve(selectors)
    if not ok:
        core = engine._minimal_core(list(core), [])
        return Analysis(engine._blame(core, {}), [], [])
    state = assess(engine, {}, explain=True)
    dead = []
    for code, attribute in state.attributes.items():
        for option in attribute.options:
            if not option.possible and option.explanation is not None:
                dead.append((code, f"{attribute.label}: {option.label}", option.explanation))
    hidden = [a.label for a in state.attributes.values() if not a.shown]
    return Analysis(None, dead, hidden)


# --- Price, bill of materials, code --------------------------------------------------------

CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class PriceLine:
    label: str
    sku: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return money(self.quantity * self.unit_price)


@dataclass
class Price:
    currency: str
    lines: list[PriceLine]
    quantity: Decimal
    discount_percent: Decimal

    @property
    def unit_price(self) -> Decimal:
        return money(sum((line.amount for line in self.lines), Decimal(0)))

    @property
    def net(self) -> Decimal:
        gross = self.unit_price * self.quantity
        return money(gross * (1 - self.discount_percent / 100))


def selected_parts(definition: Mapping[str, Any], values: Mapping[str, Any]
                   ) -> list[tuple[str, str, Decimal, Decimal]]:
    """(label, sku, quantity, own unit price) of the base and every chosen part: the bill of
    materials with the model's own prices (a price book may replace them)."""
    parts = [(definition.get("name") or "Base", definition.get("sku", ""), Decimal(1),
              Decimal(str(definition.get("base_price") or 0)))]
    for attr in definition.get("attributes", []):
        value = values.get(attr["code"])
        if value in (None, "", [], False):
            continue
        if attr["kind"] in ("single", "multiple"):
            chosen = value if isinstance(value, list) else [value]
            for o in attr["options"]:
                if o["code"] in chosen:
                    parts.append((f"{attr['label']}: {o['label']}", o.get("sku", ""),
                                  Decimal(str(o.get("quantity") or 1)),
                                  Decimal(str(o.get("price") or 0))))
        elif attr["kind"] == "yesno" and value is True:
            parts.append((attr["label"], attr.get("sku", ""), Decimal(1),
                          Decimal(str(attr.get("price") or 0))))
        elif attr["kind"] == "number" and (attr.get("sku") or attr.get("price_per_unit")):
            parts.append((f"{attr['label']} ({value} {attr.get('unit') or ''})".replace(" )", ")"),
                          attr.get("sku", ""), Decimal(str(value)),
                          Decimal(str(attr.get("price_per_unit") or 0))))
    return parts


def volume_discount(definition: Mapping[str, Any], quantity: Decimal) -> Decimal:
    best = Decimal(0)
    for brk in definition.get("volume_breaks", []):
        if quantity >= Decimal(str(brk["min_quantity"])):
            best = max(best, Decimal(str(brk["discount_percent"])))
    return best


def price(definition: Mapping[str, Any], values: Mapping[str, Any], quantity: Decimal,
          catalogue: Mapping[str, Decimal] | None = None) -> Price:
    """The price in the model's currency, or with ``catalogue`` (SKU -> unit price from a
    price book, already in the asked currency) those prices instead of the model's own."""
    lines = []
    for label, sku, qty, own in selected_parts(definition, values):
        unit = catalogue[sku] if catalogue and sku and sku in catalogue else own
        lines.append(PriceLine(label, sku, qty, unit))
    return Price(definition.get("currency", "EUR"), lines, quantity,
                 volume_discount(definition, quantity))


def bill_of_materials(definition: Mapping[str, Any], values: Mapping[str, Any]
                      ) -> list[dict[str, Any]]:
    """Component SKUs and quantities per one configured product (parts without SKU are
    features, not components)."""
    out: dict[str, dict[str, Any]] = {}
    for label, sku, qty, _ in selected_parts(definition, values)[1:]:
        if not sku:
            continue
        if sku in out:
            out[sku]["quantity"] += qty
        else:
            out[sku] = {"sku": sku, "description": label, "quantity": qty}
    return list(out.values())


def configuration_code(definition: Mapping[str, Any], version: int,
                       values: Mapping[str, Any]) -> str:
    """A short code naming exactly this configuration of this version ('PC-2-7KQ3M9XA'):
    the same choices always give the same code."""
    canonical = repr(sorted((k, v if not isinstance(v, list) else tuple(v))
                            for k, v in values.items()))
    digest = hashlib.sha256(canonical.encode()).digest()
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
    number = int.from_bytes(digest[:5], "big")
    code = "".join(alphabet[(number >> (5 * i)) & 31] for i in range(8))
    return f"{definition.get('sku') or 'CFG'}-{version}-{code}"


# --- Engines per version, compiled once ----------------------------------------------------

_ENGINES: dict[tuple[int, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(version_id: int, definition: Mapping[str, Any], digest: str = "") -> Engine:
    """The compiled engine of a published (immutable) version, kept in memory."""
    key = (version_id, digest)
    with _ENGINES_LOCK:
        found = _ENGINES.get(key)
    if found is None:
        found = Engine(definition)
        with _ENGINES_LOCK:
            if len(_ENGINES) > 64:
                _ENGINES.clear()
            _ENGINES[key] = found
    return found
