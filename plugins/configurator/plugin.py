"""Product configurator: configurable product models with rules, a SAT solver that says what
remains possible after each choice and why the rest is not, prices, bills of materials and
configuration codes, saved configurations per customer, and quoting through the sales
plugin's hooks (never by importing it: without sales it still configures and saves).
"""

from __future__ import annotations

from pathlib import Path

from core.plugin import Action, NavItem, Permission, Plugin, hookimpl

plugin = Plugin(id="configurator", name="Configurator", version="0.1.0",
                description="Configurable products with rules and explanations, prices, bills "
                            "of materials, saved configurations and quotes.")

HERE = Path(__file__).resolve().parent


@hookimpl
def register_piccolo_apps():
    from plugins.configurator.piccolo_app import APP_CONFIG

    return [APP_CONFIG]


@hookimpl
def register_routes(rapport):
    from plugins.configurator import configurations_api, configurations_web, models_web

    return configurations_web.ROUTES + models_web.ROUTES + configurations_api.ROUTES


@hookimpl
def register_portal_routes(rapport):
    from plugins.configurator import portal

    return portal.ROUTES


@hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@hookimpl
def register_static_dirs():
    # /static/plugins/configurator/configurator.css
    return {"plugins/configurator": HERE / "static" / "configurator"}


@hookimpl
def register_permissions():
    return [
        Permission("configurator.model.edit", "Model configurable products: attributes, "
                   "options, rules; publish and retire versions", scoped=False),
        Permission("configurator.configuration.view", "See saved configurations and compare "
                   "them"),
        Permission("configurator.configuration.create", "Configure products and save "
                   "configurations for customers"),
        Permission("configurator.portal.view", "Portal customers: configure products, save and "
                   "compare their configurations, ask for a quote"),
    ]


@hookimpl
def register_nav_items():
    return [NavItem("Configure", "/configurator", permission="configurator.configuration.view",
                    order=36),
            NavItem("Configurable products", "/configurator/models",
                    permission="configurator.model.edit", order=91)]


@hookimpl
def register_portal_nav_items(customer):
    from plugins.configurator import portal

    return portal.nav_items(customer)


@hookimpl
def record_actions(record_type, record):
    if record_type != "customer":
        return None
    return [Action("Configure a product", f"/configurator?customer={record['id']}",
                   permission="configurator.configuration.create", order=35)]


@hookimpl(optionalhook=True)
def sales_quote_line_sources(rapport, context):
    from plugins.configurator import quoting

    return quoting.line_sources()


@hookimpl
async def on_event(rapport, event):
    if event.name == "sales.quote.requested":
        from plugins.configurator import quoting

        await quoting.on_quote_requested(rapport, event.payload)


@hookimpl
async def seed_demo_data(rapport, customers):
    from plugins.configurator.demo import seed

    await seed(rapport, customers)


@hookimpl
async def merge_customers(survivor_id, merged_id):
    from plugins.configurator.tables import Configuration

    await Configuration.update({Configuration.customer: survivor_id}).where(
        Configuration.customer == merged_id).run()


@hookimpl
async def privacy_export(customer_id):
    from plugins.configurator import configurations

    rows = await configurations.list_for(customer_id=customer_id, limit=200)
    return {"configurations": [{"name": r["name"], "code": r["code"], "product": r["model_name"],
                                "choices": r["choices"], "quantity": str(r["quantity"]),
                                "total": str(r["total"]), "currency": r["currency"],
                                "saved": r["created_at"].isoformat()} for r in rows]}


@hookimpl
async def privacy_erase(rapport, customer_id):
    from plugins.configurator import configurations

    await configurations.erase(customer_id)
