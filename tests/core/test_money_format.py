"""Amounts, quantities and rates are shown the way people write them: grouped, in the
currency's minor units, per locale; never in scientific notation."""

from __future__ import annotations

from decimal import Decimal

from core.money import Money, format_count, format_money, format_number, format_percent


def test_money_is_grouped_with_the_currency_symbol_and_its_minor_units():
    assert format_money(Decimal("7506"), "EUR") == "€7,506.00"
    assert format_money(Money(Decimal("1234567.891"), "USD")) == "$1,234,567.89"
    assert format_money(Decimal("2999.6"), "JPY") == "¥3,000"  # no minor unit
    assert format_money(Decimal("1.2345"), "BHD") == "BHD1.234"  # three, rounded half-even
    assert format_money("-3.5", "EUR") == "-€3.50"


def test_money_follows_the_readers_locale():
    assert format_money(Decimal("7506"), "EUR", "de_DE") == "7.506,00\xa0€"
    assert format_money(Decimal("7506"), "EUR", "fr-FR").startswith("7\u202f506,00")
    assert format_money(Decimal("7506"), "EUR", "not-a-locale") == "€7,506.00"


def test_percentages_and_quantities_never_print_as_exponents():
    # Decimal("10").normalize() is 1E+1: the defect these helpers replace.
    assert format_percent(Decimal("10.00")) == "10%"
    assert format_percent(Decimal("20")) == "20%"
    assert format_percent(Decimal("7.50")) == "7.5%"
    assert format_percent(Decimal("100.00")) == "100%"
    assert format_percent(Decimal("20"), "de") == "20\xa0%"
    assert format_number(Decimal("10.000")) == "10"
    assert format_number(Decimal("2.500")) == "2.5"
    assert format_number(Decimal("1250")) == "1,250"


def test_counts_name_one_and_many():
    assert format_count(1, "line") == "1 line"
    assert format_count(2, "line") == "2 lines"
    assert format_count(1204, "line") == "1,204 lines"
    assert format_count(0, "match", "matches") == "0 matches"


async def test_templates_format_through_cores_filters(make_rapport):
    from core.web_app import template_environment

    env = template_environment(await make_rapport([]))
    page = env.from_string(
        '{{ 7506|money("EUR") }} · {{ 10|percent }} · {{ 2.500|number }} · '
        '{{ 1|counted("line") }} · {{ 3|counted("line") }} · {{ [1, 2]|count }}').render()
    assert page == "€7,506.00 · 10% · 2.5 · 1 line · 3 lines · 2"
    # The reader's locale, when the page has one.
    assert env.from_string('{{ 7506|money("EUR") }}').render(locale="de_DE") == \
        "7.506,00\xa0€"
