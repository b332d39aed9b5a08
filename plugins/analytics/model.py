"""Customer lifetime value and churn models, in plain Python (no numerical library to
install): the MBG/NBD model of repeat purchases (Batislam, Denizel and Filiztekin 2007, a
BG/NBD variant in which a customer may also drop out right after the first purchase, so a
one-time buyer of long ago is not "alive forever") and the Gamma-Gamma model of spend per
order (Fader, Hardie and Lee 2005).

Time is in weeks. Each customer is summarised as ``(x, t_x, T)``: ``x`` repeat orders (orders
after the first), ``t_x`` the age of the customer at their last order and ``T`` their age now,
both counted from the first order. Models are fitted by maximum likelihood with Nelder-Mead on
log-parameters, over a bounded sample of customers (identical summaries are weighted, not
repeated; ages in whole weeks), so fitting takes about the same time at 100,000 or
1,000,000 customers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

SAMPLE = 10_000  # customers used for fitting, at most
QUADRATURE = 48  # points for the expectation over the dropout probability


def nelder_mead(f: Callable[[list[float]], float], start: Sequence[float], *,
                step: float = 0.5, iterations: int = 600, tolerance: float = 1e-7) -> list[float]:
    """Minimise ``f`` from ``start`` (a small, dependable simplex search)."""
    n = len(start)
    simplex = [list(start)]
    for i in range(n):
        point = list(start)
        point[i] += step
        simplex.append(point)
    values = [f(p) for p in simplex]
    for _ in range(iterations):
        order = sorted(range(n + 1), key=lambda i: values[i])
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if abs(values[-1] - values[0]) <= tolerance * (abs(values[0]) + tolerance):
            break
        centroid = [sum(p[j] for p in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        reflected = [c + (c - w) for c, w in zip(centroid, worst, strict=True)]
        fr = f(reflected)
        if fr < values[0]:
            expanded = [c + 2 * (c - w) for c, w in zip(centroid, worst, strict=True)]
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = [c + 0.5 * (w - c) for c, w in zip(centroid, worst, strict=True)]
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                best = simplex[0]
                simplex = [best] + [[b + 0.5 * (p - b) for b, p in zip(best, point, strict=True)]
                                    for point in simplex[1:]]
                values = [values[0]] + [f(p) for p in simplex[1:]]
    return simplex[min(range(n + 1), key=lambda i: values[i])]


def _sample(items: list, limit: int = SAMPLE) -> list:
    if len(items) <= limit:
        return items
    stride = len(items) / limit
    return [items[int(i * stride)] for i in range(limit)]


@dataclass(frozen=True)
class PurchaseModel:
    """A fitted MBG/NBD model: ``r, alpha`` (purchase rate, Gamma) and ``a, b`` (dropout
    probability, Beta)."""

    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: int, t_x: float, T: float) -> float:
        """Probability that the customer still buys (has not dropped out)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_ratio = (r + x) * (math.log(alpha + T) - math.log(alpha + t_x))
        odds = math.log(a) - math.log(b + x) + log_ratio
        if odds > 700:
            return 0.0
        return 1.0 / (1.0 + math.exp(odds))

    def expected_if_alive(self, x: int, T: float, t: float) -> float:
        """Expected orders in the next ``t`` weeks for a customer who is still active: the
        rate's posterior is Gamma(r + x, alpha + T), the dropout probability's Beta(a, b + x +
        1); ``(1 - E[exp(-lambda p t)]) / p`` averaged over p by quadrature (memoised per
        whole week of age, which is well within the model's precision)."""
        return _expected_if_alive(self, x, round(T), t)

    def expected(self, x: int, t_x: float, T: float, t: float) -> float:
        """Expected orders in the next ``t`` weeks."""
        return self.p_alive(x, t_x, T) * self.expected_if_alive(x, T, t)

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@lru_cache(maxsize=200_000)
def _expected_if_alive(m: PurchaseModel, x: int, T: float, t: float) -> float:
    shape, scale = m.r + x, m.alpha + T
    a, b = m.a, m.b + x + 1

    def value(p: float) -> float:
        return (1.0 - (1.0 + p * t / scale) ** (-shape)) / p if p > 0 else shape * t / scale

    total = weight_sum = 0.0
    if a < 1:
        # p = u ** (1 / a) removes the p ** (a - 1) singularity at 0.
        for i in range(QUADRATURE):
            p = ((i + 0.5) / QUADRATURE) ** (1.0 / a)
            weight = (1.0 - p) ** (b - 1.0) if p < 1.0 else 0.0
            total += weight * value(p)
            weight_sum += weight
    else:
        # Midpoints over the bulk of Beta(a, b) (eight standard deviations either side).
        mean = a / (a + b)
        spread = 8 * math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        low, high = max(0.0, mean - spread), min(1.0, mean + spread)
        width = (high - low) / QUADRATURE
        for i in range(QUADRATURE):
            p = low + (i + 0.5) * width
            if not 0 < p < 1:
                continue
            weight = math.exp((a - 1) * math.log(p) + (b - 1) * math.log1p(-p))
            total += weight * value(p)
            weight_sum += weight
    return total / weight_sum if weight_sum > 0 else shape * t / scale


def _purchase_loglik(params: Sequence[float], data: Iterable[tuple[tuple[int, float, float], int]]
                     ) -> float:
    r, alpha, a, b = params
    base = (-math.lgamma(r) + r * math.log(alpha) + math.lgamma(a + b) - math.lgamma(b))
    log_a = math.log(a)
    # Terms shared by every customer with the same x, T or t_x, computed once per call.
    per_x: dict[int, tuple[float, float, float]] = {}
    logs: dict[float, float] = {}
    total = 0.0
    for (x, t_x, T), weight in data:
        shared = per_x.get(x)
        if shared is None:
            shared = per_x[x] = (
                base + math.lgamma(r + x) + math.lgamma(b + x + 1) - math.lgamma(a + b + x + 1),
                log_a - math.log(b + x), r + x)
        constant, dropout, shape = shared
        log_T = logs.get(T)
        if log_T is None:
            log_T = logs[T] = math.log(alpha + T)
        log_t = logs.get(t_x)
        if log_t is None:
            log_t = logs[t_x] = math.log(alpha + t_x)
        a3 = -shape * log_T
        a4 = dropout - shape * log_t
        big, small = (a3, a4) if a3 > a4 else (a4, a3)
        total += weight * (constant + big + math.log1p(math.exp(small - big)))
    return total


DEFAULT_PURCHASE = PurchaseModel(r=0.5, alpha=10.0, a=0.5, b=2.0)


def fit_purchases(customers: list[tuple[int, float, float]]) -> PurchaseModel:
    """Fit the MBG/NBD model to ``(x, t_x, T)`` summaries (weeks). With fewer than ten
    customers the default parameters are returned."""
    if len(customers) < 10:
        return DEFAULT_PURCHASE
    # Whole weeks: far fewer distinct summaries to weigh, at no measurable cost in fit.
    data = list(Counter((x, float(round(t_x)), float(max(round(T), round(t_x))))
                        for x, t_x, T in _sample(customers)).items())
    count = sum(w for _, w in data)

    def objective(logs: list[float]) -> float:
        if any(v > 9 or v < -9 for v in logs):
            return 1e300
        params = [math.exp(v) for v in logs]
        try:
            return -_purchase_loglik(params, data) / count
        except (ValueError, OverflowError, ZeroDivisionError):
            return 1e300

    best = nelder_mead(objective, [0.0, math.log(10.0), 0.0, 0.0])
    r, alpha, a, b = (math.exp(v) for v in best)
    return PurchaseModel(r=r, alpha=alpha, a=a, b=b)


@dataclass(frozen=True)
class SpendModel:
    """A fitted Gamma-Gamma model of the average order value (``p, q, v``); ``mean`` is the
    plain average order value, used when too few customers ordered twice to fit."""

    p: float
    q: float
    v: float
    mean: float
    fitted: bool = True

    def expected_order_value(self, orders: int, average: float) -> float:
        """The customer's expected value per future order, shrunk from their own average
        towards the population's the fewer orders they have."""
        if not self.fitted or self.q <= 1:
            return (self.mean + orders * average) / (orders + 1) if orders else self.mean
        return self.p * (self.v + orders * average) / (self.p * orders + self.q - 1)

    def as_dict(self) -> dict[str, float | bool]:
        return {"p": self.p, "q": self.q, "v": self.v, "mean": self.mean, "fitted": self.fitted}


def fit_spend(customers: list[tuple[int, float]]) -> SpendModel:
    """Fit Gamma-Gamma to ``(orders, average order value)`` of customers with at least two
    orders and a positive average."""
    usable = [(n, m) for n, m in customers if n >= 2 and m > 0]
    everyone = [(n, m) for n, m in customers if n >= 1 and m > 0]
    mean = (sum(n * m for n, m in everyone) / sum(n for n, _ in everyone)) if everyone else 0.0
    if len(usable) < 20:
        return SpendModel(p=1.0, q=1.0, v=1.0, mean=mean, fitted=False)
    data = list(Counter((n, float(f"{m:.3g}")) for n, m in _sample(usable)).items())
    count = sum(w for _, w in data)

    # log m and log n do not depend on the parameters: computed once.
    prepared = [(n, m, math.log(m), math.log(n), weight) for (n, m), weight in data]

    def objective(logs: list[float]) -> float:
        if any(v > 12 or v < -9 for v in logs):
            return 1e300
        p, q, v = (math.exp(x) for x in logs)
        constant = q * math.log(v) - math.lgamma(q)
        per_n: dict[int, float] = {}
        total = 0.0
        try:
            for n, m, log_m, log_n, weight in prepared:
                pn = p * n
                shared = per_n.get(n)
                if shared is None:
                    shared = per_n[n] = (math.lgamma(pn + q) - math.lgamma(pn) + constant
                                         + pn * log_n)
                total += weight * (shared + (pn - 1) * log_m - (pn + q) * math.log(n * m + v))
        except (ValueError, OverflowError):
            return 1e300
        return -total / count

    start = [0.0, math.log(3.0), math.log(max(mean, 1.0))]
    p, q, v = (math.exp(x) for x in nelder_mead(objective, start))
    if q <= 1:
        return SpendModel(p=p, q=q, v=v, mean=mean, fitted=False)
    return SpendModel(p=p, q=q, v=v, mean=mean)


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (the chance that a random positive scores above a random
    negative; ties count half), or None without both classes."""
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    positives = sum(1 for _, label in pairs if label)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2
        rank_sum += average_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def precision_at(scores: Sequence[float], labels: Sequence[bool], share: float = 0.1
                 ) -> float | None:
    """Of the ``share`` highest-scored, the fraction labelled positive."""
    if not scores:
        return None
    top = max(1, int(len(scores) * share))
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])[:top]
    return sum(1 for _, label in ranked if label) / top
