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
