"""The engine's answers: what stays possible after a choice, why the rest is not, and that
every explanation agrees with the solver itself (no option marked impossible wrongly)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from plugins.configurator import configure, formulas, models
from plugins.configurator.demo import BICYCLE, COMPUTER


@pytest.fixture(scope="module")
def computer():
    return configure.Engine(models.check_definition(COMPUTER, name="Computer", code="PC"))


def state(engine, values):
    return configure.assess(engine, values)


def option(assessment, attr, code):
    return next(o for o in assessment.attributes[attr].options if o.code == code)


def test_mini_case_rules_out_the_pro_graphics_card_and_says_why(computer):
    answer = state(computer, {"form": "mini"})
    pro = option(answer, "gpu", "pro")
    assert not pro.possible
    assert "Mini case takes no full-length graphics card" in pro.explanation.words()
    assert pro.explanation.choices == [("form", "Case: Mini")]
    # The offered change: another case (the rest kept) makes the card possible.
    assert pro.explanation.suggestion and pro.explanation.suggestion[0][0] == "form"
    assert pro.explanation.suggestion[0][1] in ("tower", "rack")
    assert option(answer, "gpu", "basic").possible


def test_rack_rails_are_offered_only_with_the_rack_case(computer):
    assert not state(computer, {"form": "tower"}).attributes["rails"].shown
    assert state(computer, {"form": "rack"}).attributes["rails"].shown


def test_too_little_memory_for_the_processor_is_a_conflict_not_a_silent_change(computer):
    values = {"form": "tower", "cpu": "i9", "ram": "16", "psu": "w1000", "storage": ["ssd1"]}
    before = copy.deepcopy(values)
    answer = state(computer, values)
    assert values == before  # choices are never changed by the engine
    assert answer.conflict is not None
    assert "at least 2 GB per processor core" in answer.conflict.words()
    assert {code for code, _ in answer.conflict.choices} == {"cpu", "ram"}
    # Memory values below 48 GB are not possible with the 24-core processor.
    assert Decimal(16) not in answer.attributes["ram"].allowed_numbers
    assert Decimal(48) in answer.attributes["ram"].allowed_numbers


def test_power_supply_must_cover_the_power_draw(computer):
    answer = state(computer, {"form": "tower", "cpu": "i9", "ram": "64", "gpu": "pro",
                              "storage": ["ssd1", "hdd4"]})  # 10+253+320+5+9+60 = 657 W
    small = option(answer, "psu", "w650")
    assert not small.possible
    assert "power supply must cover the power draw" in small.explanation.words()
    assert option(answer, "psu", "w1000").possible


def test_every_explanation_agrees_with_the_solver(computer):
    """For each impossible option on several pages: the solver finds it impossible with the
    blamed rules and choices; dropping any blamed rule makes it possible (nothing needless is
    blamed); the suggested change makes it possible."""
    pages = [{}, {"form": "mini"}, {"form": "rack", "cpu": "i9"},
             {"form": "mini", "cpu": "i9", "ram": "48"}, {"gpu": "pro", "form": "tower"}]
    checked = 0
    for values in pages:
        answer = state(computer, values)
        choices = computer.choice_literals(values)
        for code, attribute in answer.attributes.items():
            others = {k: v for k, v in choices.items() if k != code}
            for opt in attribute.options:
                lit = next(lit for v, _, lit in configure._candidates(computer, code)
                           if v == opt.code)
                alone = [x for v in others.values() for x in v]
                feasible, _ = computer.solve(list(computer.selectors.values()) + alone + [lit])
                assert feasible == opt.possible, (values, code, opt.code)
                if opt.possible:
                    continue
                why = opt.explanation
                blamed_choices = [x for c, _ in why.choices for x in others[c]]
                blamed_rules = [computer.selectors[r] for r in why.rule_ids]
                assert not computer.solve(blamed_rules + blamed_choices + [lit])[0]
                for rule in blamed_rules:
                    rest = [r for r in blamed_rules if r != rule]
                    assert computer.solve(rest + blamed_choices + [lit])[0], why.rule_ids
                if why.suggestion:
                    changed = dict(values)
                    for attr, value, _ in why.suggestion:
                        changed[attr] = value
                    lits = computer.choice_literals({k: v for k, v in changed.items()
                                                     if k != code})
                    assert computer.solve(list(computer.selectors.values()) +
                                          [x for v in lits.values() for x in v] + [lit])[0]
                checked += 1
    assert checked >= 5


def test_a_dead_option_is_found_at_authoring_time_with_the_rule_to_blame():
    definition = copy.deepcopy(BICYCLE)
    definition["rules"].append({"id": "B9", "kind": "excludes", "when": ["extras=lights"],
                                "then": ["colour=black"]})
    definition["rules"].append({"id": "B10", "kind": "requires", "when": ["extras=lights"],
                                "then": ["colour=black"]})
    engine = configure.Engine(models.check_definition(definition, name="Bike", code="BIKE"))
    analysis = configure.analyse(engine)
    assert analysis.unsatisfiable is None
    dead = {words: why for _, words, why in analysis.dead}
    assert "Extras: Dynamo lights" in dead
    assert set(dead["Extras: Dynamo lights"].rule_ids) == {"B9", "B10"}


def test_contradictory_rules_make_the_model_unsatisfiable_and_are_named():
    definition = copy.deepcopy(BICYCLE)
    definition["rules"] += [
        {"id": "X1", "kind": "formula", "formula": "size >= 60"},
        {"id": "X2", "kind": "formula", "formula": "size <= 50"}]
    engine = configure.Engine(models.check_definition(definition, name="Bike", code="BIKE"))
    analysis = configure.analyse(engine)
    assert analysis.unsatisfiable is not None
    assert set(analysis.unsatisfiable.rule_ids) == {"X1", "X2"}


def test_a_cycle_of_computed_values_is_refused_naming_it():
    definition = copy.deepcopy(COMPUTER)
    definition["computed"] = [{"code": "load", "label": "Load", "formula": "margin + 1"},
                              {"code": "margin", "label": "Margin", "formula": "load - 1"}]
    with pytest.raises(models.ModelError) as caught:
        models.check_definition(definition, name="Computer", code="PC")
    assert "load -> margin -> load" in caught.value.message or \
        "margin -> load -> margin" in caught.value.message


@pytest.mark.parametrize("text", ["__import__('os').system('id')", "cpu.__class__",
                                  "ram ** 2 > 1", "ram * cpu >= 2", "lambda: 1",
                                  "open('x')"])
def test_formulas_are_parsed_never_evaluated(text):
    with pytest.raises(formulas.FormulaError):
        formulas.parse(text)


def test_definition_errors_name_the_field():
    definition = copy.deepcopy(COMPUTER)
    definition["attributes"][2]["options"][1]["price"] = "12.345"
    with pytest.raises(models.ModelError) as caught:
        models.check_definition(definition, name="Computer", code="PC")
    assert caught.value.field == "attributes[2].options[1].price"
    assert caught.value.label == "Processor › 12-core 4.2 GHz › price"
    definition = copy.deepcopy(COMPUTER)
    definition["rules"][2]["then"] = ["gpu=titan"]
    with pytest.raises(models.ModelError) as caught:
        models.check_definition(definition, name="Computer", code="PC")
    assert caught.value.field == "rules[2].then[0]"
    assert "'titan' is not an option of Graphics card" in caught.value.message
    # An option's picture comes from this server (the pages show no images from elsewhere).
    for address in ("https://cdn.example.com/tower.png", "//cdn.example.com/tower.png",
                    'javascript:alert(1)', '/x" onerror="alert(1)'):
        definition = copy.deepcopy(COMPUTER)
        definition["attributes"][0]["options"][0]["image"] = address
        with pytest.raises(models.ModelError) as caught:
            models.check_definition(definition, name="Computer", code="PC")
        assert caught.value.field == "attributes[0].options[0].image"
        assert "an address on this server" in caught.value.message


def test_values_from_another_model_or_outside_the_range_are_refused(computer):
    definition = computer.definition
    with pytest.raises(configure.ConfigurationError) as caught:
        configure.clean_values(definition, {"frame": "city"})
    assert caught.value.field == "values.frame"
    with pytest.raises(configure.ConfigurationError) as caught:
        configure.clean_values(definition, {"cpu": "b400"})
    assert "not an option of Processor" in caught.value.message
    with pytest.raises(configure.ConfigurationError) as caught:
        configure.clean_values(definition, {"ram": "200"})
    assert caught.value.message == "must be between 8 and 128 (got 200)"
    with pytest.raises(configure.ConfigurationError):
        configure.clean_values(definition, {"ram": "12"})  # off the 8 GB step


def test_validation_checks_exactly_what_was_saved(computer):
    good = {"form": "tower", "cpu": "i7", "ram": "32", "psu": "w850", "storage": ["ssd1"]}
    assert configure.validate(computer, good).ok
    bad = {**good, "form": "mini", "gpu": "pro"}
    result = configure.validate(computer, bad)
    assert not result.ok and "full-length graphics card" in result.errors[0][1]
    pairs = {**good, "form": "rack", "psu": "w1000"}
    assert configure.validate(computer, pairs, Decimal(2)).ok
    result = configure.validate(computer, pairs, Decimal(3))
    assert result.errors == [("quantity", "Rack computers are sold in pairs")]


def test_price_bill_of_materials_and_code(computer):
    values = {"form": "tower", "cpu": "i7", "ram": "32", "psu": "w850", "storage": ["ssd1"],
              "wifi": True}
    price = configure.price(computer.definition, values, Decimal(10))
    # 149 base + 89 + 319 + 32 x 3.50 + 129 + 79 + 29 = 906.00; 10 % off? no: 5 % from 10
    assert price.unit_price == Decimal("906.00")
    assert price.discount_percent == Decimal(5)
    assert price.net == Decimal("8607.00")
    bom = {line["sku"]: line["quantity"] for line in
           configure.bill_of_materials(computer.definition, values)}
    assert bom == {"CASE-TOWER": 1, "CPU-12C": 1, "RAM-1GB": 32, "PSU-850": 1, "SSD-1T": 1,
                   "WIFI-6E": 1}
    code = configure.configuration_code(computer.definition, 3, values)
    assert code.startswith("PC-3-") and code == configure.configuration_code(
        computer.definition, 3, dict(reversed(list(values.items()))))


def _random_values(engine, rnd, share):
    values = {}
    for code, attr in engine.attributes.items():
        if rnd.random() > share:
            continue
        if attr["kind"] == "single":
            values[code] = rnd.choice(attr["options"])["code"]
        elif attr["kind"] == "multiple":
            values[code] = [o["code"] for o in attr["options"] if rnd.random() < .3]
        elif attr["kind"] == "yesno":
            values[code] = rnd.random() < .5
        elif attr["kind"] == "number":
            values[code] = str(rnd.choice(configure._number_values(attr)))
    return values


def _answers(answer):
    return ({code: (a.shown, [(o.code, o.possible) for o in a.options],
                    [str(v) for v in a.allowed_numbers]) for code, a in answer.attributes.items()},
            answer.missing, answer.conflict is None)


def test_options_proven_possible_without_the_solver_agree_with_the_solver():
    """An option is proven possible by changing one attribute of a solution and checking
    the rules (no solver call): on random pages of both demo models (visibility, tables,
    formulas, quantities) and of the benchmark model, every answer equals the solver's."""
    import random

    from bench.plugins.configurator import benchmark_model

    rnd = random.Random(19)
    for code, definition in (("PC", COMPUTER), ("BIKE", BICYCLE)):
        engine = configure.Engine(models.check_definition(definition, name=code, code=code))
        for _ in range(80):
            values = _random_values(engine, rnd, rnd.random())
            assert _answers(configure.assess(engine, values, explain=False)) == _answers(
                configure.assess(engine, values, explain=False, witnesses=False)), values
    large = configure.Engine(models.check_definition(benchmark_model(), name="B", code="B"))
    values = _random_values(large, rnd, 0.8)
    assert _answers(configure.assess(large, values, explain=False)) == _answers(
        configure.assess(large, values, explain=False, witnesses=False))


def test_an_explanation_given_before_is_the_same_when_other_choices_change(computer):
    first = option(state(computer, {"form": "mini"}), "gpu", "pro").explanation
    again = option(state(computer, {"form": "mini", "wifi": True}), "gpu", "pro").explanation
    assert again.rule_ids == first.rule_ids == ["R3"]
    assert again.choices == first.choices and again.words() == first.words()
