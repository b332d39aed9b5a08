"""Configurator at scale: the issue's benchmark model (50 attributes, 500 options, 200 rules
including linear formulas and a sum over 480 options, a 2,000-row allowed-combination table),
published, with saved configurations; scenarios time the live answer over HTTP.

``python -m bench.plugins.configurator`` measures in process: propagation after one choice,
authoring-time analysis and validations per second (see docs/plugins/configurator.md).
Smaller runs: ``RAPPORT_BENCH_CONFIGURATOR_SAVED`` (saved configurations, default 1,000).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from typing import Any

from bench.scenarios import Request

PLUGIN = "configurator"
SAVED = int(os.environ.get("RAPPORT_BENCH_CONFIGURATOR_SAVED", 1_000))


def benchmark_model(seed: int = 7, attributes: int = 50, options: int = 500, rules: int = 200,
                    table_rows: int = 2000) -> dict[str, Any]:
    """The large model: 40 single choices of 12 or 13 options (500 in all) (with a value and watts), 5 numbers
    (0-64 by 4), 5 yes / no; requires, excludes, conditional formulas, a visibility rule
    every 25, one power sum over every option, and an allowed-combination table over four
    attributes."""
    rnd = random.Random(seed)
    choices = 40
    sizes = [options // choices + (1 if a < options % choices else 0) for a in range(choices)]
    attrs: list[dict[str, Any]] = []
    for a in range(attributes):
        if a < choices:
            attrs.append({"code": f"a{a}", "label": f"Attribute {a}", "kind": "single",
                          "required": a % 3 != 0, "options": [
                              {"code": f"a{a}o{o}", "label": f"Option {o}", "sku": f"A{a}O{o}",
                               "price": str(10 * o), "value": o + 1,
                               "properties": {"watts": rnd.randint(5, 60)}}
                              for o in range(sizes[a])]})
        elif a < choices + 5:
            attrs.append({"code": f"a{a}", "label": f"Number {a}", "kind": "number", "min": 0,
                          "max": 64, "increment": 4})
        else:
            attrs.append({"code": f"a{a}", "label": f"Flag {a}", "kind": "yesno"})
    out_rules: list[dict[str, Any]] = []
    for r in range(rules):
        a, b = rnd.sample(range(choices), 2)
        oa, ob = rnd.randrange(sizes[a]), rnd.randrange(sizes[b])
        kind = r % 5
        rid = f"R{r}"
        if kind in (0, 1):
            out_rules.append({"id": rid, "kind": "requires", "when": [f"a{a}=a{a}o{oa}"],
                              "then": [f"a{b}=a{b}o{x}" for x in rnd.sample(range(sizes[b]), 4)]})
        elif kind == 3:
            number = rnd.randrange(choices, choices + 5)
            out_rules.append({"id": rid, "kind": "formula", "when": [f"a{a}=a{a}o{oa}"],
                              "formula": f"a{number} >= 2 * a{b} - 4"})
        elif r == 9:
            out_rules.append({"id": rid, "kind": "formula", "formula": "total(watts) <= 900"})
        elif r % 25 == 4:
            out_rules.append({"id": rid, "kind": "visible",
                              "attribute": f"a{rnd.randrange(choices + 5, attributes)}",
                              "when": [f"a{a}=a{a}o{oa}"]})
        else:
            out_rules.append({"id": rid, "kind": "excludes", "when": [f"a{a}=a{a}o{oa}"],
                              "then": [f"a{b}=a{b}o{ob}"]})
    columns = ["a0", "a1", "a2", "a3"]
    rows: set[tuple[str, ...]] = set()
    while len(rows) < table_rows:
        rows.add(tuple(f"{c}o{rnd.randrange(sizes[int(c[1:])])}" for c in columns))
    out_rules.append({"id": "T1", "kind": "table", "attributes": columns,
                      "rows": [list(row) for row in sorted(rows)]})
    return {"currency": "EUR", "base_price": "100.00", "attributes": attrs, "rules": out_rules}


def _valid_values(engine: Any, rnd: random.Random) -> dict[str, Any]:
    """A complete valid configuration from a solution of the model."""
    ok, model = engine.solve(list(engine.selectors.values()) +
                             [rnd.choice([1, -1]) * engine.lits[(f"a{45 + i}", True)]
                              for i in range(1)])
    true = {lit for lit in model if lit > 0}
    values = {}
    for code in engine.attributes:
        value = engine.value_in(code, true)
        if value not in (None, [], False):
            values[code] = str(value) if not isinstance(value, str | bool | list) else value
    return values


async def seed(database_url: str, seeded) -> dict:
    from plugins.configurator import configurations, models

    row = await models.create_model(None, "BENCH", "Benchmark model",
                                    definition=benchmark_model())
    began = time.monotonic()
    version = await models.publish(None, row["id"])
    published = round(time.monotonic() - began, 1)
    version = await models.get_version(version["id"])
    engine = models.engine_of(version)
    values = _valid_values(engine, random.Random(5))
    for i in range(SAVED):
        await configurations.save(None, None, {"version": version["id"], "values": values,
                                               "name": f"Bench {i}"},
                                  customer_id=seeded.customer_ids[i % len(seeded.customer_ids)])
    return {"model": row["id"], "version": version["id"], "values": values,
            "publish_seconds": published, "saved": SAVED}


def live_answer(seeded, facts) -> Request:
    """The live answer (remaining options, explanations, price) after one choice, over HTTP."""
    values = dict(facts.get("values") or {})
    values.pop("a5", None)
    return Request(f"/api/v1/configurator/models/{facts.get('model', 1)}/assess",
                   method="POST", body=json.dumps({"values": values, "quantity": "1"}),
                   headers={"content-type": "application/json"})


def saved_list(seeded, facts) -> Request:
    """The first page of saved configurations."""
    return Request("/api/v1/configurator/configurations")


SCENARIOS = [
    ("live answer after one choice (large model)", live_answer),
    ("saved configurations", saved_list),
]


def in_process(repeat: int = 10) -> dict[str, float]:
    """Propagation after one choice (p50/p95 ms), analysis (s), validations per second."""
    from plugins.configurator import configure, models

    definition = models.check_definition(benchmark_model(), name="Bench", code="BENCH")
    began = time.perf_counter()
    engine = configure.Engine(definition)
    compiled = time.perf_counter() - began
    rnd = random.Random(1)
    values = _valid_values(engine, rnd)
    # Wall time and this process's CPU time: on a shared machine the CPU time is the
    # steadier figure (wall time counts the time other processes had the cores).
    times, cpu, explained = [], [], []
    for i in range(repeat):
        code = f"a{rnd.randrange(40)}"
        trial = dict(values)
        trial[code] = rnd.choice(engine.attributes[code]["options"])["code"]
        began, began_cpu = time.perf_counter(), time.process_time()
        configure.assess(engine, trial, explain=False)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        if i < 3:  # the page's answer with every impossible option explained
            began_cpu = time.process_time()
            configure.assess(engine, trial)
            explained.append(time.process_time() - began_cpu)
    times.sort()
    cpu.sort()
    began, began_cpu = time.perf_counter(), time.process_time()
    configure.analyse(engine)
    analysis, analysis_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    began, count = time.process_time(), 0
    while time.process_time() - began < 1:
        configure.validate(engine, values)
        count += 1

    def p95(xs: list[float]) -> float:
        return round(xs[max(0, int(len(xs) * 0.95) - 1)] * 1000, 1)

    return {"compile_s": round(compiled, 2),
            "propagation_p50_ms": round(statistics.median(times) * 1000, 1),
            "propagation_p95_ms": p95(times),
            "propagation_cpu_p50_ms": round(statistics.median(cpu) * 1000, 1),
            "propagation_cpu_p95_ms": p95(cpu),
            "with_explanations_cpu_ms": [round(x * 1000) for x in explained],
            "analysis_s": round(analysis, 2), "analysis_cpu_s": round(analysis_cpu, 2),
            "validations_per_cpu_s": count}


if __name__ == "__main__":
    print(in_process())
