"""Money: an exact ``Decimal`` amount with an ISO 4217 currency. Never a float.

Store it in two columns, ``<name>_amount = Numeric(digits=(18, 4))`` and
``<name>_currency = Varchar(length=3)``, and convert with :meth:`Money.from_row`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

# Minor units for the currencies whose rounding differs from two decimal places.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}


@dataclass(frozen=True, order=False)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float):
            raise TypeError("money amounts are Decimal or str, never float")
        try:
            amount = Decimal(self.amount)
        except (InvalidOperation, TypeError, ValueError) as exc:
            raise ValueError(f"{self.amount!r} is not an amount of money") from exc
        if not amount.is_finite():
            raise ValueError(f"{self.amount!r} is not an amount of money")
        currency = str(self.currency).upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValueError(f"{self.currency!r} is not an ISO 4217 currency code")
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "currency", currency)

    @classmethod
    def parse(cls, amount: Any, currency: str) -> Money:
        text = str(amount).strip().replace(",", "") if isinstance(amount, str) else amount
        return cls(Decimal(text) if isinstance(text, str) else text, currency)

    @classmethod
    def from_row(cls, row: dict[str, Any], name: str) -> Money | None:
        amount, currency = row.get(f"{name}_amount"), row.get(f"{name}_currency")
        if amount is None or not currency:
            return None
        return cls(Decimal(str(amount)), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("can only combine Money with Money")
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply money by Decimal or int, never float")
        return Money(self.amount * Decimal(factor), self.currency)

    __rmul__ = __mul__

    def rounded(self) -> Money:
        places = _MINOR_UNITS.get(self.currency, 2)
        quantum = Decimal(1).scaleb(-places)
        return Money(self.amount.quantize(quantum, rounding=ROUND_HALF_EVEN), self.currency)

    def __str__(self) -> str:
        places = _MINOR_UNITS.get(self.currency, 2)
        return f"{self.rounded().amount:,.{places}f} {self.currency}"

    def to_json(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}


# --- Showing money and numbers to people -----------------------------------------------------
# One way to print amounts, quantities and percentages, for every page: grouped digits, the
# currency's minor units, the reader's locale (CLDR data through Babel). Never ``str(Decimal)``
# or ``Decimal.normalize()`` in a template: the latter prints 10 as ``1E+1``.

DEFAULT_LOCALE = "en"


def _locale(locale: str | None) -> str:
    from babel import Locale, UnknownLocaleError

    if not locale:
        return DEFAULT_LOCALE
    try:
        return str(Locale.parse(str(locale).replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT_LOCALE


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    try:
        number = Decimal(value if value not in (None, "") else 0)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return number


def format_money(amount: Money | Decimal | int | str, currency: str | None = None,
                 locale: str | None = None) -> str:
    """``Money`` (or an amount and its currency) as a reader expects it: ``€7,506.00`` in
    English, ``7.506,00 €`` in German, ``¥3,000`` (no minor unit), rounded like the ledger."""
    from babel.numbers import format_currency

    money = amount if isinstance(amount, Money) else Money(_decimal(amount), currency or "")
    # CLDR's minor units agree with the ledger's (_MINOR_UNITS): JPY 0, BHD 3, EUR 2.
    return format_currency(money.rounded().amount, money.currency, locale=_locale(locale))


def format_number(value: Any, locale: str | None = None, max_decimals: int = 3) -> str:
    """A quantity or count: grouped, without trailing zeros (``2``, ``1,250``, ``0.5``)."""
    from babel.numbers import format_decimal

    number = _decimal(value)
    pattern = "#,##0" + ("." + "#" * max_decimals if max_decimals > 0 else "")
    return format_decimal(number, format=pattern, locale=_locale(locale))


def format_percent(value: Any, locale: str | None = None, max_decimals: int = 2) -> str:
    """A rate given in percent (``10`` -> ``10%``, ``7.5`` -> ``7.5%``; ``10 %`` in German)."""
    from babel.numbers import format_percent as babel_percent

    number = _decimal(value).quantize(Decimal(1).scaleb(-max_decimals)).normalize() / 100
    # The locale's own pattern (``10%``, ``10 %``), keeping the decimals a rate has (7.5%).
    return babel_percent(number, locale=_locale(locale), decimal_quantization=False)


def format_count(count: Any, singular: str, plural: str | None = None,
                 locale: str | None = None) -> str:
    """``1 line``, ``2 lines``, ``1,204 lines`` (English plural unless ``plural`` is given)."""
    number = _decimal(count)
    word = singular if number == 1 else (plural or f"{singular}s")
    return f"{format_number(number, locale, 0)} {word}"


def _reader_locale(context: Any) -> str | None:
    """The locale of whoever the page is for: the signed-in person's when they chose one,
    else the template's ``locale`` variable, else the default."""
    if context is None:
        return None
    found = context.get("locale") if hasattr(context, "get") else None
    if found:
        return str(found)
    request = context.get("request") if hasattr(context, "get") else None
    scope = getattr(request, "scope", None) or {}
    return getattr(scope.get("user"), "locale", None) or None


def jinja_filters() -> dict[str, Any]:
    """The template filters core registers: ``{{ amount|money(currency) }}``,
    ``{{ quantity|number }}``, ``{{ rate|percent }}``, ``{{ n|counted("line") }}`` (not
    ``count``, which is Jinja's own name for ``length``)."""
    from jinja2 import pass_context

    @pass_context
    def money_filter(context, amount, currency=None):
        if amount is None:
            return ""
        return format_money(amount, currency, _reader_locale(context))

    @pass_context
    def number_filter(context, value, max_decimals=3):
        if value is None:
            return ""
        return format_number(value, _reader_locale(context), max_decimals)

    @pass_context
    def percent_filter(context, value, max_decimals=2):
        if value is None:
            return ""
        return format_percent(value, _reader_locale(context), max_decimals)

    @pass_context
    def count_filter(context, value, singular, plural=None):
        return format_count(value or 0, singular, plural, _reader_locale(context))

    return {"money": money_filter, "number": number_filter, "percent": percent_filter,
            "counted": count_filter}
