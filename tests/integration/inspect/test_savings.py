"""What replays saved: tokens from the recorded usage, dollars from genai-prices."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price

import seedcache
from helpers import MESSAGES, make_client
from seedcache._cli import cli
from seedcache._inspect._savings import describe_saved, savings_of
from seedcache._takes._usage import TokenUsage, usage_of


def price(model: str, usage: TokenUsage, provider: str = "openai") -> Decimal:
    """What genai-prices itself says ``usage`` costs: the oracle the savings are held to."""
    calculated = calc_price(
        Usage(
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_tokens=usage.cached_input or None,
            cache_write_tokens=usage.cache_write_input or None,
        ),
        model_ref=model,
        provider_id=provider,
    )
    return Decimal(calculated.total_price)


def three_calls(client, chat_model: str) -> None:
    """A chat, a stream that includes usage, an embedding."""
    client.chat.completions.create(model=chat_model, messages=MESSAGES, seed=1)
    list(
        client.chat.completions.create(
            model=chat_model,
            messages=MESSAGES,
            seed=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    client.embeddings.create(model="text-embedding-3-small", input="red dust")


def record_and_replay(fake, location, *, hits: int, chat_model: str = "gpt-4o-mini"):
    with seedcache.SeedCache(location, mode="auto") as cache:
        three_calls(cache.wrap(make_client(fake)), chat_model)
    with seedcache.SeedCache(location, mode="replay") as cache:
        client = cache.wrap(make_client(fake))
        for _ in range(hits):
            three_calls(client, chat_model)
        takes = [t for e in cache.store.entries() for t in e.takes]
        return cache.stats(), cache.savings(), takes


def test_hits_count_the_tokens_and_price_of_their_takes(fake, tmp_path):
    stats, saved, takes = record_and_replay(fake, tmp_path / "c", hits=3)
    usages = [(t.model, usage_of(t)) for t in takes]
    assert all(u is not None and u.input > 0 for _, u in usages)  # streams and embeddings too
    assert stats.hits == 9
    assert stats.tokens_saved == 3 * sum(u.total for _, u in usages)
    expected = 3 * sum(price(m, u) for m, u in usages)
    assert stats.cost_saved_usd == pytest.approx(float(expected), rel=1e-6)
    assert stats.cost_saved_usd > 0
    assert saved.unpriced == []
    assert {m.model for m in saved.models} == {t.model for t in takes}


def test_an_unknown_model_is_price_unknown_never_free(fake, tmp_path):
    stats, saved, _ = record_and_replay(fake, tmp_path / "c", hits=1, chat_model="house-model-7")
    assert "house-model-7" in saved.unpriced
    by_model = {m.model: m for m in saved.models}
    assert by_model["house-model-7"].cost_usd is None
    assert by_model["house-model-7"].tokens > 0
    assert stats.cost_saved_usd is not None  # the embeddings model is priced
    assert "price unknown" in describe_saved(100, None)
    assert "$0" not in describe_saved(100, None)


def test_stats_and_the_pytest_summary_show_what_was_saved(fake, tmp_path, inner):
    record_and_replay(fake, tmp_path / "c", hits=2)
    result = CliRunner().invoke(cli, ["--cache-dir", str(tmp_path / "c"), "stats", "--json"])
    document = json.loads(result.stdout)
    assert document["saved"]["tokens_saved"] > 0
    assert document["saved"]["cost_saved_usd"] > 0
    text = CliRunner().invoke(cli, ["--cache-dir", str(tmp_path / "c"), "stats"]).stdout
    assert "TOKENS SAVED" in text
    assert "saved" in text

    inner.makepyfile(
        test_saved="""
        def test_ask(openai_client):
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=3
            )
        """
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    replayed = inner.runpytest_subprocess("--seedcache-mode=replay")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.re_match_lines([r"seedcache: 1 hits, .*; saved \d+ tokens ≈ \$\d"])


def test_a_run_is_priced_once_where_the_summary_is_written_not_in_each_test(inner):
    """Loading the price list costs a fraction of a second per process: the workers that
    run the tests never load it, and the summary still prices every worker's replays."""
    inner.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            if hasattr(session.config, "workerinput"):
                loaded = "genai_prices" in sys.modules
                print(f"worker loaded prices: {loaded}", file=sys.stderr)
        """
    )
    inner.makepyfile(
        **{
            f"test_part{n}": f"""
            def test_ask(openai_client):
                openai_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{{"role": "user", "content": "q{n}"}}], seed=1
                )
            """
            for n in range(4)
        }
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=4)
    spread = inner.runpytest_subprocess("--seedcache-mode=replay", "-n", "2")
    spread.assert_outcomes(passed=4)
    # Every worker's replays counted and priced, by the controller.
    summary = [line for line in spread.outlines if line.startswith("seedcache: 4 hits")]
    assert len(summary) == 1
    assert re.search(r"saved \d+ tokens ≈ \$0\.\d+$", summary[0]), summary
    assert "worker loaded prices: False" in spread.stderr.str()
    assert "worker loaded prices: True" not in spread.stderr.str()


_PRICES_LOADED = """
import sys

def pytest_unconfigure(config):
    print(f"prices loaded: {'genai_prices' in sys.modules}", file=sys.stderr)
"""


def _summary(result) -> str:
    [line] = [line for line in result.outlines if line.startswith("seedcache: ")]
    return line


def test_a_run_like_the_last_one_reuses_its_price_without_loading_the_price_list(inner):
    """Replaying the same recordings saves the same: what the last runs saved, priced
    with today's price list, is kept in pytest's cache, and the price list (a tenth of a
    second to load) is not loaded again. Other replays, or no cache, are priced afresh."""
    inner.makeconftest(_PRICES_LOADED)
    inner.makepyfile(
        test_ask="""
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_ask(openai_client, n):
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{n}"}], seed=n
            )
        """
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=2)
    first = inner.runpytest_subprocess("--seedcache-mode=replay")
    again = inner.runpytest_subprocess("--seedcache-mode=replay")
    assert re.search(r"saved \d+ tokens ≈ \$0\.\d+$", _summary(first))
    assert _summary(again) == _summary(first)
    assert "prices loaded: True" in first.stderr.str()
    assert "prices loaded: False" in again.stderr.str()

    one = inner.runpytest_subprocess("--seedcache-mode=replay", "-k", "1")
    assert "prices loaded: True" in one.stderr.str()  # other replays: priced afresh
    assert _summary(one) != _summary(first)
    uncached = inner.runpytest_subprocess("--seedcache-mode=replay", "-p", "no:cacheprovider")
    assert _summary(uncached) == _summary(first)
    assert "prices loaded: True" in uncached.stderr.str()


@pytest.mark.parametrize(
    "planted",
    [
        '"not a record"',
        '{"x": {"tokens": "12", "cost_usd": 1.0, "unpriced": false}}',
        '{"KEY": {"tokens": 5, "cost_usd": -3.0, "unpriced": false}}',
        '{"KEY": {"tokens": 5, "cost_usd": 1e999, "unpriced": false}}',
        '{"KEY": {"tokens": 5, "cost_usd": 0.1, "unpriced": "no"}}',
        "[1, 2",
    ],
)
def test_a_planted_price_record_is_priced_afresh(inner, planted):
    """pytest's cache is a folder in the project: what it holds is checked, and anything
    that is not a remembered price of this exact run is priced again."""
    inner.makeconftest(_PRICES_LOADED)
    inner.makepyfile(
        test_ask="""
        def test_ask(openai_client):
            openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=3
            )
        """
    )
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=1)
    first = inner.runpytest_subprocess("--seedcache-mode=replay")
    record = inner.path / ".pytest_cache" / "v" / "seedcache" / "savings"
    key = next(iter(json.loads(record.read_text())))
    record.write_text(planted.replace("KEY", key))
    again = inner.runpytest_subprocess("--seedcache-mode=replay")
    again.assert_outcomes(passed=1)
    assert _summary(again) == _summary(first)
    assert "prices loaded: True" in again.stderr.str()


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o-mini-2024-07-18", "openai"),  # the same price for every token
        ("gemini-2.5-pro", "google"),  # dearer past 200k input tokens
        ("claude-sonnet-4-5", "anthropic"),  # tiers, and prompt-cache writes
    ],
)
def test_many_replays_cost_what_each_costs_priced_alone(model, provider):
    usages = [
        (TokenUsage(input=1_000 + n, output=50 + n, cached_input=n * 3), 1 + n % 3)
        for n in range(40)
    ]
    # One request past the tier: priced alone it costs more per token than the others.
    usages.append((TokenUsage(input=250_000, output=900, cache_write_input=1_000), 2))
    expected = sum((price(model, usage, provider) * times for usage, times in usages), Decimal(0))

    saved = savings_of([(model, usage, times) for usage, times in usages])

    assert saved.cost_usd == pytest.approx(float(expected), rel=1e-9)
    assert saved.models[0].hits == sum(times for _, times in usages)
    assert saved.tokens == sum(u.total * times for u, times in usages)


def test_a_usage_the_price_list_refuses_leaves_its_model_unpriced_among_others():
    """More cached input than input: genai-prices prices none of it, and the sum of the
    model's usages must not hide that by pricing them together."""
    odd = TokenUsage(input=10, output=5, cached_input=20)
    normal = TokenUsage(input=1000, output=5)

    saved = savings_of([("gpt-4o", odd, 1), ("gpt-4o", normal, 3)])

    assert saved.models[0].cost_usd is None
    assert saved.cost_usd is None
    assert saved.unpriced == ["gpt-4o"]
