"""The data warehouse feed: `rapport analytics export` writes customer-level CSV files, only
what changed since the last run the second time, and leaves personal data out (with stable
pseudonyms) when asked."""

from __future__ import annotations

import csv
import json

from plugins.analytics import export, values
from tests.conftest import connected
from tests.plugins.analytics.conftest import NOW, new_customer, orders


def rows(path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def test_export_is_incremental_and_pseudonymises(make_rapport, tmp_path):
    rapport = await make_rapport(["sales", "analytics"], {}, debug=True)
    async with connected(rapport):
        ada = await new_customer("Ada Lovelace")
        await orders(ada, (10, 100), (40, 50))
        await values.refresh_all(rapport, now=NOW)
        first = await export.export(rapport, tmp_path / "feed")
        folder = tmp_path / "feed" / first["folder"]
        customers = rows(folder / "customers.csv")
        assert [c["name"] for c in customers] == ["Ada Lovelace"]
        assert customers[0]["primary_email"] == "ada@example.test"
        assert len(rows(folder / "orders.csv")) == 2
        figures = rows(folder / "customer_value.csv")
        assert figures[0]["customer"] == str(ada) and figures[0]["orders"] == "2"

        # Nothing changed: the next run (since the last) exports no customer and no order.
        second = await export.export(rapport, tmp_path / "feed")
        assert second["since"] == first["exported_at"]
        assert second["rows"]["customers.csv"] == 0 and second["rows"]["orders.csv"] == 0

        # Pseudonymised: no name, e-mail or phone; the same pseudonym in every file and run.
        private = await export.export(rapport, tmp_path / "bi", pseudonymise=True, now=NOW)
        folder = tmp_path / "bi" / private["folder"]
        customers = rows(folder / "customers.csv")
        assert "name" not in customers[0] and "primary_email" not in customers[0]
        key = customers[0]["customer"]
        assert key != str(ada) and len(key) == 20
        assert {r["customer"] for r in rows(folder / "orders.csv")} == {key}
        assert rows(folder / "customer_value.csv")[0]["customer"] == key
        text = "".join(p.read_text() for p in folder.iterdir())
        assert "Lovelace" not in text and "ada@example.test" not in text
        again = await export.export(rapport, tmp_path / "bi2", pseudonymise=True, now=NOW)
        assert rows(tmp_path / "bi2" / again["folder"] / "customers.csv")[0]["customer"] == key
        manifest = json.loads((tmp_path / "feed" / "manifest.json").read_text())
        assert len(manifest["runs"]) == 2

        # The figures are a profile: in the privacy export, gone on erasure.
        from plugins.analytics import customers as profile

        exported = await profile.export(ada)
        assert exported["analytics"]["orders"] == 2 and "reasons" in exported["analytics"]
        await profile.erase(ada)
        assert await profile.export(ada) == {}
