"""What users (and the pytest plugin, which is held to the same door) build on."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from pathlib import Path

import openai
import pytest

import seedcache
from helpers import SENTINEL_KEY
from seedcache import CassetteStore, Entry, SeedCache, Take, copy_entries
from seedcache._stores._registry import REGISTRY_META, Registry

PLUGIN = Path(seedcache.__file__).parent / "_pytest_plugin"


def _private_reaches(path: Path) -> list[str]:
    """``something._name`` where something is not ``self``/``cls``: a private reach."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_the_pytest_plugin_reaches_into_no_private_member():
    reaches = [r for path in sorted(PLUGIN.glob("*.py")) for r in _private_reaches(path)]
    assert reaches == []


def _take(text: str, *, fingerprint: str = "fp_a", at: int = 1_700_000_000_000) -> Take:
    body = json.dumps(
        {
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        }
    ).encode()
    headers = (("content-type", "application/json"),)
    return Take(200, headers, body, fingerprint, "gpt-4o-2024-08-06", at, 5)


def _store(path: Path, **takes: Take) -> CassetteStore:
    store = CassetteStore(path)
    for key, take in takes.items():
        store.update(key, lambda _, k=key, t=take: Entry(k, {"model": "gpt-4o"}, (t,)))
    return store


def test_copy_entries_skips_keys_the_target_holds_unless_told_to_replace(tmp_path):
    source = _store(tmp_path / "a.json", k1=_take("new one"), k2=_take("new two"))
    target = _store(tmp_path / "b.json", k1=_take("old one"))
    assert copy_entries(source, target) == (1, 1)
    assert target.get("k1").takes[0] == _take("old one")
    assert copy_entries(source, target, ["k1"], existing="replace") == (1, 0)
    assert target.get("k1").takes[0] == _take("new one")


def test_copy_entries_update_keeps_takes_that_answer_alike_so_files_do_not_churn(tmp_path):
    source = _store(tmp_path / "a.json", k1=_take("same", at=2), k2=_take("changed", at=2))
    target = _store(tmp_path / "b.json", k1=_take("same", at=1), k2=_take("was", at=1))
    assert copy_entries(source, target, existing="update") == (1, 1)
    assert target.get("k1").takes[0].recorded_at_ms == 1  # alike: the recorded take stays
    assert target.get("k2").takes[0] == _take("changed", at=2)


def test_copy_entries_merges_the_fingerprint_registry_with_the_entries(tmp_path):
    source = _store(tmp_path / "a.json", k1=_take("one"))
    Registry(source).observe("gpt-4o", "fp_live", 1_700_000_000_000, now_ms=1_700_000_000_000)
    target = CassetteStore(tmp_path / "b.json")
    copy_entries(source, target)
    assert "fp_live" in target.get_meta(REGISTRY_META).decode()


def test_copy_entries_names_what_existing_may_be(tmp_path):
    with pytest.raises(ValueError, match="'skip', 'replace' or 'update'"):
        copy_entries(
            CassetteStore(tmp_path / "a.json"),
            CassetteStore(tmp_path / "b.json"),
            existing="overwrite",
        )  # type: ignore[arg-type]


def test_close_from_sync_code_closes_async_clients_whose_loop_is_gone(fake, tmp_path):
    cache = SeedCache(tmp_path / "c", mode="auto")
    wrapped = []

    async def ask() -> None:
        async with openai.AsyncOpenAI(api_key=SENTINEL_KEY, base_url=fake.base_url) as own:
            client = cache.wrap(own)
            wrapped.append(client)
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
            )

    asyncio.run(ask())
    assert not wrapped[0]._client.is_closed  # the HTTP client wrap() made is the cache's
    cache.close()
    assert wrapped[0]._client.is_closed


def test_a_transport_without_keep_alive_leaves_no_connection_open(fake, tmp_path):
    with SeedCache(tmp_path / "c", mode="auto") as cache:
        transport = cache.async_transport(keep_alive=False)
        http_client = openai.DefaultAsyncHttpxClient(transport=transport)
        client = openai.AsyncOpenAI(
            api_key=SENTINEL_KEY, base_url=fake.base_url, http_client=http_client
        )

        async def ask() -> None:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=2
            )

        asyncio.run(ask())
        # The server notices the hang-up a moment after the response.
        deadline = time.monotonic() + 5
        while fake._connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not fake._connections


def test_a_closed_client_lets_go_of_the_cache_at_once(fake, tmp_path):
    """An SDK client is a web of references only the garbage collector frees; once its HTTP
    client is closed, the cache behind it (store, entries, counters) must not wait for a
    collection: a long test run would carry every test's cache from one to the next."""
    import gc
    import weakref

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as recorder:
        recorder.wrap(
            openai.OpenAI(api_key=SENTINEL_KEY, base_url=fake.base_url)
        ).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
        )
    fake.stop()
    cache = SeedCache.cassette(path, mode="replay")
    http = openai.DefaultHttpxClient(transport=cache.transport())
    client = openai.OpenAI(api_key=SENTINEL_KEY, base_url=fake.base_url, http_client=http)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
    )
    store = weakref.ref(cache.store)
    http.close()
    cache.close()
    gc.disable()
    try:
        del cache
        assert store() is None
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match="closed"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
        )
