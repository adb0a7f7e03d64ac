"""What replaying saved: the tokens a live call would have used, and their price.

Every hit replays a take that recorded its usage (chat and completions bodies, streams
sent with ``include_usage``, embeddings, the Responses API). Prices come from the
``genai-prices`` library, which follows providers' price lists (cached input included);
a model it does not know is listed as unpriced, never counted as free.

The hit path only counts which take was replayed (a dict increment); a take's usage is
read the first time it is replayed, and priced when someone asks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .._takes._take import provider_of_model
from .._takes._usage import TokenUsage
from .._units import short_count

__all__ = [
    "ModelSavings",
    "Savings",
    "as_counters",
    "describe_saved",
    "dollars",
    "from_counters",
    "is_saving_counter",
    "price_usd",
    "savings_of",
]

_log = logging.getLogger("seedcache")
_PRICE_PROVIDERS = {"gemini": "google"}


@dataclass(frozen=True, slots=True)
class ModelSavings:
    """What replays of one model saved."""

    model: str
    hits: int
    tokens: int
    cost_usd: float | None
    """None when the price library does not know the model."""


@dataclass(frozen=True, slots=True)
class Savings:
    """Tokens and money not spent, over the hits counted."""

    tokens: int = 0
    cost_usd: float | None = None
    """None when no replayed take had a known price."""
    models: tuple[ModelSavings, ...] = field(default=())

    @property
    def unpriced(self) -> list[str]:
        """Models replayed whose price is unknown."""
        return [m.model for m in self.models if m.cost_usd is None and m.tokens]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "tokens_saved": self.tokens,
            "cost_saved_usd": self.cost_usd,
            "models": [
                {"model": m.model, "hits": m.hits, "tokens": m.tokens, "cost_usd": m.cost_usd}
                for m in self.models
            ],
            "unpriced_models": self.unpriced,
        }


@lru_cache(maxsize=4096)
def price_usd(model: str, usage: TokenUsage) -> Decimal | None:
    """The price of ``usage`` on ``model`` at its provider; None when it is not known."""
    return _price(model, usage)


def _price(model: str, usage: TokenUsage) -> Decimal | None:
    priced = _calculate(model, usage)
    return None if priced is None else Decimal(priced.total_price)


def _calculate(model: str, usage: TokenUsage) -> Any:
    """genai-prices' calculation for ``usage`` on ``model``; None when it has no price."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # pragma: no cover - a dependency; a broken install prices nothing
        return None
    provider = provider_of_model(model)
    try:
        return calc_price(
            Usage(
                input_tokens=usage.input,
                output_tokens=usage.output,
                cache_read_tokens=usage.cached_input or None,
                cache_write_tokens=usage.cache_write_input or None,
            ),
            model_ref=model,
            # genai-prices names Gemini's provider "google".
            provider_id=_PRICE_PROVIDERS.get(provider, provider),
        )
    except LookupError:
        # Gemini names a version the price list may not (gemini-2.0-flash-001).
        unversioned = re.sub(r"-\d{3}$", "", model)
        return _calculate(unversioned, usage) if unversioned != model else None
    except Exception as exc:
        _log.debug("no price for %s: %s", model, exc)
        return None


@lru_cache(maxsize=256)
def _priced_per_token(model: str) -> bool:
    """Whether ``model`` costs the same for every token, whatever the request: no price
    tiers (dearer past 200k input tokens) and no fee per request. Then the price of many
    usages is the price of their sum, one calculation instead of one per usage (about
    0.13 ms each: a suite of 600 tests asked 600)."""
    try:
        from genai_prices.types import TieredPrices
    except ImportError:  # pragma: no cover - an older genai-prices: price each usage
        return False
    priced = _calculate(model, TokenUsage(input=1, output=1))
    prices = getattr(getattr(priced, "model_price", None), "__dict__", None)
    if not isinstance(prices, dict):
        return False
    return not any(
        isinstance(value, TieredPrices) or (name == "requests_kcount" and value is not None)
        for name, value in prices.items()
    )


def _price_of_all(model: str, usages: list[tuple[TokenUsage, int]]) -> Decimal | None:
    """The price of every usage (each asked ``times``); None when any has no price."""
    # Summed only when each usage is one the price list prices: one it refuses (more
    # cached input than input) leaves the model unpriced, as it does usage by usage.
    if (
        len(usages) > 1
        and all(_plausible(usage) and times > 0 for usage, times in usages)
        and _priced_per_token(model)
    ):
        summed = TokenUsage(
            input=sum(u.input * times for u, times in usages),
            output=sum(u.output * times for u, times in usages),
            cached_input=sum(u.cached_input * times for u, times in usages),
            cache_write_input=sum(u.cache_write_input * times for u, times in usages),
        )
        return _price(model, summed)  # not price_usd: a sum is never asked again
    total = Decimal(0)
    for usage, times in usages:
        price = price_usd(model, usage)
        if price is None:
            return None
        total += price * times
    return total


def _plausible(usage: TokenUsage) -> bool:
    """Counts a response can report: none negative, the cached parts within the input."""
    parts = (usage.input, usage.output, usage.cached_input, usage.cache_write_input)
    return min(parts) >= 0 and usage.cached_input + usage.cache_write_input <= usage.input


def savings_of(replayed: Iterable[tuple[str, TokenUsage | None, int]]) -> Savings:
    """What replaying takes of ``(model, usage, times)`` saved."""
    usages: dict[str, list[tuple[TokenUsage, int]]] = {}
    for model, usage, count in replayed:
        if usage is not None:
            usages.setdefault(model, []).append((usage, count))
    models: list[ModelSavings] = []
    priced: list[Decimal] = []
    for model, pairs in sorted(usages.items()):
        cost = _price_of_all(model, pairs)
        if cost is not None:
            priced.append(cost)
        models.append(
            ModelSavings(
                model,
                hits=sum(times for _, times in pairs),
                tokens=sum(usage.total * times for usage, times in pairs),
                cost_usd=None if cost is None else _to_dollars(cost),
            )
        )
    return Savings(
        tokens=sum(m.tokens for m in models),
        # Summed exactly, converted once: no float noise in totals (0.00032147, not …97).
        cost_usd=_to_dollars(sum(priced, Decimal(0))) if priced else None,
        models=tuple(models),
    )


def _to_dollars(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("1e-12")))


def dollars(amount: float) -> str:
    """$1,234.56, $0.0019 under a cent (a test suite's savings), $0.000041 below that."""
    if amount >= 0.01 or amount == 0:
        return f"${amount:,.2f}"
    return f"${amount:.4f}" if amount >= 0.0001 else f"${amount:.6f}"


def describe_saved(tokens: int, cost_usd: float | None, *, unpriced: bool = False) -> str:
    """``saved 1.2M tokens ≈ $0.84`` for summaries; says when a price is unknown."""
    text = f"saved {short_count(tokens)} tokens"
    if cost_usd is not None:
        text += f" ≈ {dollars(cost_usd)}"
    if unpriced or cost_usd is None:
        text += " (price unknown for some models)" if cost_usd is not None else " (price unknown)"
    return text


_TOKENS = "saved_tokens:"
_MICRO_USD = "saved_micro_usd:"


def as_counters(saved: Savings) -> dict[str, int]:
    """``saved`` as the integer counters a store keeps across sessions, per model."""
    counters = {}
    for row in saved.models:
        counters[_TOKENS + row.model] = row.tokens
        if row.cost_usd is not None:
            counters[_MICRO_USD + row.model] = round(row.cost_usd * 1_000_000)
    return counters


def from_counters(counters: dict[str, int]) -> Savings:
    """The savings kept in a store's counters (see :func:`as_counters`)."""
    models = tuple(
        ModelSavings(
            name[len(_TOKENS) :],
            0,
            tokens,
            counters[_MICRO_USD + name[len(_TOKENS) :]] / 1_000_000
            if _MICRO_USD + name[len(_TOKENS) :] in counters
            else None,
        )
        for name, tokens in sorted(counters.items())
        if name.startswith(_TOKENS)
    )
    costs = [m.cost_usd for m in models if m.cost_usd is not None]
    return Savings(sum(m.tokens for m in models), round(sum(costs), 6) if costs else None, models)


def is_saving_counter(name: str) -> bool:
    """Whether counter ``name`` is one of :func:`as_counters`'s."""
    return name.startswith((_TOKENS, _MICRO_USD))
