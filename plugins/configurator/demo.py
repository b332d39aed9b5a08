"""Demo data for `make run`: two configurable products (a computer and a bicycle), published,
with a few saved configurations for demo customers."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _options(*rows: tuple) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        code, label, sku, price, *rest = row
        option = {"code": code, "label": label, "sku": sku, "price": price}
        if rest:
            option["value"] = rest[0]
        if len(rest) > 1:
            option["properties"] = rest[1]
        if len(rest) > 2:
            option["description"] = rest[2]
        if len(rest) > 3:
            option["image"] = f"/static/plugins/configurator/options/{rest[3]}.svg"
        out.append(option)
    return out


COMPUTER: dict[str, Any] = {
    "currency": "EUR", "base_price": "149.00", "tax_percent": "19",
    "steps": ["Case", "Core", "Graphics and power", "Storage and extras"],
    "attributes": [
        {"code": "form", "label": "Case", "kind": "single", "step": "Case", "required": True,
         "default": "tower", "help": "Where the computer will stand.",
         "options": _options(
             ("tower", "Tower", "CASE-TOWER", "89.00", None, {"watts": 10},
              "Room for every card and four drives.", "case-tower"),
             ("mini", "Mini", "CASE-MINI", "119.00", None, {"watts": 5},
              "Fits on a desk; short graphics cards only.", "case-mini"),
             ("rack", "Rack 2U", "CASE-RACK", "189.00", None, {"watts": 15},
              "For a server cabinet.", "case-rack"))},
        {"code": "rails", "label": "Rack rails", "kind": "yesno", "step": "Case",
         "sku": "RAIL-KIT", "price": "39.00"},
        {"code": "cpu", "label": "Processor", "kind": "single", "step": "Core", "required": True,
         "default": "i5", "help": "The value of each processor is its number of cores.",
         "options": _options(
             ("i5", "6-core 3.9 GHz", "CPU-6C", "179.00", 6, {"watts": 65}),
             ("i7", "12-core 4.2 GHz", "CPU-12C", "319.00", 12, {"watts": 125}),
             ("i9", "24-core 4.8 GHz", "CPU-24C", "559.00", 24, {"watts": 253}))},
        {"code": "ram", "label": "Memory", "kind": "number", "step": "Core", "min": 8,
         "max": 128, "increment": 8, "default": 16, "unit": "GB", "sku": "RAM-1GB",
         "price_per_unit": "3.50", "help": "At least 2 GB per processor core."},
        {"code": "gpu", "label": "Graphics card", "kind": "single",
         "step": "Graphics and power", "required": False,
         "options": _options(
             ("basic", "Entry 8 GB", "GPU-8G", "289.00", None, {"watts": 115}),
             ("pro", "Pro 16 GB", "GPU-16G", "1099.00", None, {"watts": 320}))},
        {"code": "psu", "label": "Power supply", "kind": "single", "step": "Graphics and power",
         "required": True, "default": "w650",
         "options": _options(
             ("w450", "450 W", "PSU-450", "59.00", 450),
             ("w650", "650 W", "PSU-650", "89.00", 650),
             ("w850", "850 W", "PSU-850", "129.00", 850),
             ("w1000", "1000 W", "PSU-1000", "179.00", 1000))},
        {"code": "storage", "label": "Drives", "kind": "multiple", "step": "Storage and extras",
         "default": ["ssd1"],
         "options": _options(
             ("ssd1", "1 TB SSD", "SSD-1T", "79.00", 1000, {"watts": 5}),
             ("ssd2", "2 TB SSD", "SSD-2T", "139.00", 2000, {"watts": 6}),
             ("hdd4", "4 TB hard disk", "HDD-4T", "99.00", 4000, {"watts": 9}))},
        {"code": "wifi", "label": "Wi-Fi and Bluetooth", "kind": "yesno",
         "step": "Storage and extras", "sku": "WIFI-6E", "price": "29.00"},
        {"code": "label", "label": "Asset label", "kind": "text", "step": "Storage and extras",
         "max_length": 30, "help": "Printed on the case, e.g. your inventory number."},
    ],
    "computed": [{"code": "load", "label": "Power draw", "formula": "total(watts) + 60",
                  "unit": "W"}],
    "rules": [
        {"id": "R1", "kind": "formula", "formula": "load <= psu",
         "message": "The power supply must cover the power draw (parts + 60 W)"},
        {"id": "R2", "kind": "formula", "formula": "ram >= 2 * cpu",
         "message": "Memory must be at least 2 GB per processor core"},
        {"id": "R3", "kind": "excludes", "when": ["form=mini"], "then": ["gpu=pro"],
         "message": "The Mini case takes no full-length graphics card"},
        {"id": "R4", "kind": "visible", "attribute": "rails", "when": ["form=rack"]},
        {"id": "R5", "kind": "table", "attributes": ["form", "psu"],
         "message": "Each case takes only the power supplies that fit it",
         "rows": [["mini", "w450"], ["mini", "w650"], ["tower", "*"], ["rack", "w850"],
                  ["rack", "w1000"]]},
        {"id": "R6", "kind": "requires", "when": ["cpu=i9"], "then": ["storage=ssd1",
                                                                       "storage=ssd2"],
         "message": "The 24-core processor needs an SSD"},
        {"id": "R7", "kind": "quantity", "when": ["form=rack"], "multiple": 2,
         "message": "Rack computers are sold in pairs"},
    ],
    "volume_breaks": [{"min_quantity": 10, "discount_percent": "5"},
                      {"min_quantity": 50, "discount_percent": "10"}],
}

BICYCLE: dict[str, Any] = {
    "currency": "EUR", "base_price": "390.00", "tax_percent": "19",
    "steps": ["Frame", "Drive", "Finish"],
    "attributes": [
        {"code": "frame", "label": "Frame", "kind": "single", "step": "Frame", "required": True,
         "default": "city", "options": _options(
             ("city", "City", "FRM-CITY", "0.00"), ("road", "Road", "FRM-ROAD", "240.00"),
             ("mtb", "Mountain", "FRM-MTB", "180.00"))},
        {"code": "size", "label": "Frame size", "kind": "number", "step": "Frame", "min": 46,
         "max": 62, "increment": 2, "default": 54, "unit": "cm"},
        {"code": "gears", "label": "Gears", "kind": "single", "step": "Drive", "required": True,
         "default": "hub7", "options": _options(
             ("hub7", "7-speed hub", "GEAR-HUB7", "0.00"),
             ("d11", "11-speed derailleur", "GEAR-D11", "149.00"),
             ("e12", "12-speed electronic", "GEAR-E12", "690.00"))},
        {"code": "motor", "label": "Electric motor", "kind": "yesno", "step": "Drive",
         "sku": "MOTOR-250", "price": "990.00"},
        {"code": "battery", "label": "Battery", "kind": "single", "step": "Drive",
         "required": True, "options": _options(
             ("b400", "400 Wh", "BAT-400", "0.00"), ("b625", "625 Wh", "BAT-625", "180.00"))},
        {"code": "colour", "label": "Colour", "kind": "single", "step": "Finish",
         "required": True, "default": "black", "options": _options(
             ("black", "Black", "", "0.00", None, {}, "", "colour-black"),
             ("red", "Signal red", "", "49.00", None, {}, "", "colour-red"),
             ("green", "Forest green", "", "49.00", None, {}, "", "colour-green"))},
        {"code": "extras", "label": "Extras", "kind": "multiple", "step": "Finish",
         "options": _options(
             ("basket", "Front basket", "ACC-BASKET", "35.00"),
             ("rack", "Pannier rack", "ACC-RACK", "45.00"),
             ("lights", "Dynamo lights", "ACC-LIGHTS", "59.00"))},
    ],
    "rules": [
        {"id": "B1", "kind": "visible", "attribute": "battery", "when": ["motor"]},
        {"id": "B2", "kind": "excludes", "when": ["frame=road"], "then": ["extras=basket",
                                                                          "extras=rack"],
         "message": "A road frame has no mounts for a basket or a pannier rack"},
        {"id": "B3", "kind": "excludes", "when": ["frame=road"], "then": ["motor"],
         "message": "Road frames are not made with a motor"},
        {"id": "B4", "kind": "requires", "when": ["frame=city"], "then": ["gears=hub7",
                                                                          "gears=d11"],
         "message": "City bikes come with the hub or the 11-speed gears"},
        {"id": "B5", "kind": "formula", "when": ["frame=mtb"], "formula": "size <= 58",
         "message": "Mountain frames go up to 58 cm"},
    ],
}

MODELS = [("PC", "Build-your-own computer",
           "Desktop or rack computers built to order: case, processor, memory, graphics, "
           "power and drives.", COMPUTER),
          ("BIKE", "Made-to-measure bicycle",
           "City, road and mountain bicycles in your size, with or without a motor.", BICYCLE)]


async def seed(rapport: Any, customers: int) -> None:
    """Publish the two demo models (once) and save a few configurations for customers."""
    from core.customers.tables import Customer
    from plugins.configurator import configurations, models
    from plugins.configurator.tables import ProductModel

    if await ProductModel.exists().where(ProductModel.code.is_in([m[0] for m in MODELS])):
        return
    actor = None  # the system: audited as Rapport
    published = []
    for code, name, description, definition in MODELS:
        row = await models.create_model(actor, code, name, description,
                                        definition=definition)
        published.append(await models.publish(actor, row["id"]))
    ids = [r["id"] for r in await Customer.select(Customer.id).order_by(Customer.id).limit(3)
           .run()]
    samples = [
        (published[0], {"form": "tower", "cpu": "i7", "ram": "32", "gpu": "basic",
                        "psu": "w850", "storage": ["ssd1", "hdd4"], "wifi": True},
         "Design studio workstation"),
        (published[0], {"form": "mini", "cpu": "i5", "ram": "16", "psu": "w450",
                        "storage": ["ssd1"]}, "Reception desk computer"),
        (published[1], {"frame": "city", "size": "54", "gears": "d11", "motor": True,
                        "battery": "b625", "colour": "green", "extras": ["basket", "lights"]},
         "Commuter e-bike"),
    ]
    for customer_id, (version, values, name) in zip(ids, samples, strict=False):
        try:
            await configurations.save(rapport, actor, {
                "version": version["id"], "values": values, "quantity": 1, "name": name},
                customer_id=customer_id)
        except Exception:  # noqa: BLE001 - demo data must not stop make run
            log.exception("demo configuration %s not saved", name)
