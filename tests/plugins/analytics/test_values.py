"""Customer value figures checked against small data sets computed by hand: RFM scores and
segments, historic value, cohorts, churn risk with its reasons, the model's measured
accuracy; the per-customer update after an order; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from decimal import Decimal

from plugins.analytics import model, values
from tests.conftest import connected
from tests.plugins.analytics.conftest import NOW, new_customer, orders


def test_rfm_scores_and_segments_follow_the_quintiles():
    # Ten values 1..10: the 20/40/60/80th percentiles are the 3rd, 5th, 7th and 9th values.
    assert values.quintiles([float(v) for v in range(10, 0, -1)]) == [3.0, 5.0, 7.0, 9.0]
    thresholds = [3.0, 5.0, 7.0, 9.0]
    assert [values.score(v, thresholds) for v in (1, 3, 4, 6, 8, 10)] == [1, 1, 2, 3, 4, 5]
    # Recency: fewer days is better.
    assert [values.score(v, thresholds, lower_is_better=True) for v in (1, 4, 10)] == [5, 4, 1]
    assert values.segment_of(5, 5, 5, 12) == "champions"
    assert values.segment_of(5, 1, 1, 1) == "new"
    assert values.segment_of(1, 5, 5, 9) == "cannot_lose"
    assert values.segment_of(2, 3, 4, 4) == "at_risk"
    assert values.segment_of(1, 1, 1, 1) == "lost"
    # Retention: ordered in the year before the last and again in the last; only before;
    # only in the last (not in the base).
    current = values._month(NOW)
    histories = {1: values.History(months={current - 15, current - 2}),
                 2: values.History(months={current - 13}),
                 3: values.History(months={current - 1})}
    assert values.retention(histories, NOW) == {"retention_base": 2, "retained": 1,
                                                "retention_rate": 0.5}


def test_model_recovers_known_purchase_behaviour_and_ranks_churn():
    import random

    rng = random.Random(7)
    r, alpha, a, b = 0.8, 6.0, 0.6, 3.0
    summaries, later = [], []
    for _ in range(3000):
        rate, drop = rng.gammavariate(r, 1 / alpha), rng.betavariate(a, b)
        first = rng.uniform(0, 40)
        times, t, alive = [first], first, rng.random() > drop
        while alive:
            t += rng.expovariate(rate)
            if t > 78:
                break
            times.append(t)
            alive = rng.random() > drop
        calibration = [x for x in times if x <= 52]
        summaries.append((len(calibration) - 1, calibration[-1] - calibration[0],
                          52 - calibration[0]))
        later.append(sum(1 for x in times if x > 52))
    fitted = model.fit_purchases(summaries)
    assert abs(fitted.r - r) / r < 0.25 and abs(fitted.a - a) / a < 0.35
    predicted = sum(fitted.expected(x, t_x, T, 26) for x, t_x, T in summaries)
    assert abs(predicted - sum(later)) / sum(later) < 0.1
    risks = [1 - fitted.p_alive(*s) for s in summaries]
    assert model.auc(risks, [n == 0 for n in later]) > 0.7
    # AUC by hand: positives score 0.9 and 0.4, negatives 0.5 and 0.1 -> 3 of 4 pairs.
    assert model.auc([0.9, 0.4, 0.5, 0.1], [True, True, False, False]) == 0.75
    assert model.precision_at([0.9, 0.4, 0.5, 0.1], [True, True, False, False], 0.5) == 0.5


async def test_refresh_computes_value_segments_cohorts_and_reasons(make_rapport):
    rapport = await make_rapport(["sales", "analytics"], {}, debug=True)
    async with connected(rapport):
        # A regular buyer (every 30 days, recent), a lapsed regular, a one-time buyer long
        # ago, a new customer, and filler customers so the quintiles have something to cut.
        regular = await new_customer("Rita Regular")
        await orders(regular, *[(5 + 30 * i, 100) for i in range(12)])
        lapsed = await new_customer("Lars Lapsed")
        await orders(lapsed, *[(400 + 30 * i, 120) for i in range(8)])
        once = await new_customer("Olga Once")
        await orders(once, (300, 50))
        newbie = await new_customer("Nina New")
        await orders(newbie, (3, 80))
        await orders(newbie, (1, 999), status="cancelled")  # not counted
        await orders(newbie, (2, 999), currency="USD")  # another currency: not counted
        for i in range(16):
            filler = await new_customer(f"Filler {i}")
            await orders(filler, *[(20 * i + 10 + 60 * k, 40 + 5 * i) for k in range(1 + i % 4)])
        run = await values.refresh_all(rapport, now=NOW)
        assert run["customers"] == 20
        from plugins.analytics.tables import CohortMonth, CustomerValue

        rows = {r["customer"]: r for r in await CustomerValue.select().run()}
        rita, lars, olga, nina = rows[regular], rows[lapsed], rows[once], rows[newbie]
        assert rita["orders"] == 12 and Decimal(rita["revenue"]) == Decimal("1200.00")
        assert rita["recency_days"] == 5 and rita["segment"] == "champions"
        assert nina["orders"] == 1 and Decimal(nina["revenue"]) == Decimal("80.00")
        assert nina["segment"] == "new"
        assert lars["segment"] in ("cannot_lose", "at_risk")
        # The lapsed regular and the one-time buyer are far likelier gone than the regular.
        assert lars["churn_risk"] > 80 and olga["churn_risk"] > rita["churn_risk"] + 30
        assert rita["churn_risk"] < 30
        assert json.loads(lars["reasons"]) == ["No order for 400 days (usually every 30 days)"]
        assert json.loads(olga["reasons"]) == ["Only one order, 300 days ago"]
        # The regular is expected to keep buying (fewer than twelve a year: the fitted
        # population drops out often); the lapsed one hardly at all.
        assert 2 < rita["expected_orders"] < 12 and lars["expected_orders"] < 0.5
        assert Decimal(rita["predicted_value"]) > 200 > 10 * Decimal(lars["predicted_value"])
        # Cohorts: in the month of its first order, every customer of a cohort ordered.
        cohort_rows = await CohortMonth.select().where(CohortMonth.age == 0).run()
        assert cohort_rows and all(r["customers"] == r["size"] for r in cohort_rows)
        accuracy = json.loads(run["accuracy"])
        # Lars ordered only 13 to 20 months ago: counted in the base, not retained.
        assert accuracy["retention_base"] >= 1 and accuracy["retention_rate"] < 1
        assert accuracy["enough_data"] and accuracy["actual_orders"] > 0
        assert not math.isnan(accuracy["predicted_orders"])

        # An order later: the order event queues the per-customer update, which uses the
        # stored model and thresholds (several events for one customer make one update).
        from core import jobs
        from core.plugin import Event
        from plugins.analytics.plugin import on_event

        await orders(lapsed, (0, 300))
        for event_id in (1, 2):
            await on_event(rapport, Event("sales.order.created",
                                          {"order_id": 9999, "customer_id": lapsed}, None,
                                          event_id))
        from core.jobs_tables import JobRow

        assert await JobRow.count().where(JobRow.name == "analytics.refresh_customer").run() == 1
        await jobs.run_pending(rapport)
        row = (await CustomerValue.select().where(CustomerValue.customer == lapsed).run())[0]
        assert row["orders"] == 9 and row["recency_days"] <= 1
        assert row["churn_risk"] < lars["churn_risk"]
        stored = await CustomerValue.select().where(CustomerValue.customer == lapsed).run()
        assert len(stored) == 1 and stored[0]["previous_segment"] == lars["segment"]
        assert stored[0]["segment"] != lars["segment"]
