"""Trust, round two: what a planted row, a secret-looking value, a wrong clock, a full
store or a hostile entry could do, each test named after what it protects."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from test_hostile import cli, point_row_at, recorded_disk_entry

from helpers import MESSAGES, make_client
from seedcache import Action, SeedCache


def value_file_of(directory, key) -> str | None:
    with contextlib.closing(sqlite3.connect(directory / "cache.db")) as db:
        row = db.execute("SELECT filename FROM Cache WHERE key = ?", (f"entry:{key}",)).fetchone()
    return None if row is None else row[0]


def ask_story(cache, fake, seed=1):
    raw = cache.wrap(make_client(fake)).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, seed=seed
    )
    return raw.parse().choices[0].message.content, raw.http_response.extensions["seedcache"]


# -- 1. value files are only diskcache's own -----------------------------------------------


@pytest.mark.parametrize("name", ["cache.db", "cache.db-wal", "cache.db-shm", "./cache.db"])
def test_a_planted_row_never_deletes_the_cache_database(fake, tmp_path, name):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    with SeedCache(directory, mode="auto") as cache:  # leaves a WAL and SHM beside it
        ask_story(cache, fake, seed=2)
        point_row_at(directory, key, name)
        text, outcome = ask_story(cache, fake)  # the broken entry is recorded again
    assert outcome.action is Action.RECORDED
    assert (directory / "cache.db").is_file()
    with SeedCache(directory, mode="replay") as cache:
        assert ask_story(cache, fake)[0] == text
        assert ask_story(cache, fake, seed=2)[1].action is Action.HIT


def test_verify_fix_never_deletes_the_cache_database(fake, tmp_path):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    point_row_at(directory, key, "cache.db")
    assert cli("--cache-dir", directory, "verify", "--fix").exit_code == 0
    assert (directory / "cache.db").is_file()
    assert cli("--cache-dir", directory, "verify").exit_code == 0


def long_embedding(cache, fake, word: str):
    """An answer large enough that diskcache keeps it in a value file of its own."""
    return cache.wrap(make_client(fake)).embeddings.create(
        model="text-embedding-3-large", input=[f"{word} {i}" for i in range(12)]
    )


def test_a_row_naming_another_entry_s_value_file_neither_reads_nor_deletes_it(fake, tmp_path):
    directory = tmp_path / "c"
    with SeedCache(directory, mode="auto") as cache:
        victim = long_embedding(cache, fake, "victim").data[0].embedding
        long_embedding(cache, fake, "planted")
        victim_key, planted_key = sorted(
            cache.store.keys(), key=lambda k: "victim" in str(cache.entry(k).request)
        )[::-1]
    victim_file = value_file_of(directory, victim_key)
    assert victim_file is not None
    assert victim_file.endswith(".val")
    point_row_at(directory, planted_key, victim_file)

    with SeedCache(directory, mode="auto") as cache:
        planted = long_embedding(cache, fake, "planted")  # not the victim's answer
        assert planted.data[0].embedding != victim
    assert cli("--cache-dir", directory, "verify", "--fix").exit_code == 0
    with SeedCache(directory, mode="replay") as cache:
        assert long_embedding(cache, fake, "victim").data[0].embedding == victim


# -- 2. secret-looking query values stay distinct in keys, and out of files -----------------


def canonical(url: str, **config):
    from seedcache._request._keys import KeyConfig, canonicalize
    from seedcache._request._wire import CapturedRequest

    return canonicalize(CapturedRequest("GET", url, (), b""), KeyConfig(**config))


LIST_URL = "https://api.openai.com/v1/files"


@pytest.mark.parametrize(
    "name",
    ["pageToken", "page_token", "next_token", "$skipToken", "sort_key", "idempotency_key"],
)
def test_distinct_page_tokens_never_share_a_recording(name):
    page_1 = canonical(f"{LIST_URL}?{name}=p1-VALUE-one")
    page_2 = canonical(f"{LIST_URL}?{name}=p2-VALUE-two")
    assert page_1.key != page_2.key
    assert canonical(f"{LIST_URL}?{name}=p1-VALUE-one").key == page_1.key
    # The value itself is never written where the summary goes.
    for found in (page_1, page_2):
        assert "VALUE" not in json.dumps(found.summary)
        assert name in found.summary["url"]


@pytest.mark.parametrize(
    "name",
    ["api-key", "key", "pwd", "passwd", "jwt", "bearer", "session", "access_token", "code"],
)
def test_credentials_in_the_query_are_neither_keyed_nor_stored(name):
    one = canonical(f"{LIST_URL}?limit=2&{name}=CREDENTIAL-one")
    two = canonical(f"{LIST_URL}?limit=2&{name}=CREDENTIAL-two")
    assert one.key == two.key  # a rotated key still replays
    assert "CREDENTIAL" not in json.dumps(one.summary)
    assert name not in one.summary["url"]


def test_a_page_token_pagination_loop_ends_on_replay(fake, tmp_path):
    import httpx2

    def pages(cache) -> list[str]:
        seen = []
        with httpx2.Client(transport=cache.transport()) as client:
            for token in ("first-PAGE-a", "second-PAGE-b", "third-PAGE-c"):
                response = client.get(
                    f"{fake.base_url}/models",
                    params={"pageToken": token},
                    headers={"authorization": "Bearer sk-test"},
                )
                seen.append(response.extensions["seedcache"].key)
        return seen

    with SeedCache.cassette(tmp_path / "c.json", mode="auto") as cache:
        recorded = pages(cache)
    assert len(set(recorded)) == 3
    with SeedCache.cassette(tmp_path / "c.json", mode="replay") as cache:
        assert pages(cache) == recorded
    assert b"PAGE" not in (tmp_path / "c.json").read_bytes()


@pytest.mark.parametrize(
    "header",
    ["X-Goog-Api-Key", "Ocp-Apim-Subscription-Key", "X-Amz-Security-Token", "X-Auth-Token"],
)
def test_credential_headers_are_refused_in_match_headers(tmp_path, header):
    from seedcache import ConfigurationError

    with pytest.raises(ConfigurationError, match="match_headers may not include credentials"):
        SeedCache(tmp_path / "c", match_headers=[header])


# -- 3. times from the future count as unknown -------------------------------------------

YEAR = 365 * 86400.0


def test_a_take_from_the_future_does_not_escape_max_age(fake, tmp_path):
    import time

    ahead = SeedCache.cassette(tmp_path / "c.json", mode="auto", clock=lambda: time.time() + YEAR)
    with ahead:
        ask_story(ahead, fake)
    with SeedCache.cassette(tmp_path / "c.json", mode="refresh", max_age="30d") as cache:
        assert ask_story(cache, fake)[1].action is Action.REFRESHED


def test_a_sighting_from_the_future_does_not_keep_a_fingerprint_current(tmp_path):
    import time

    from seedcache import CassetteStore
    from seedcache._inspect._fingerprints import fingerprint_statuses
    from seedcache._request._freshness import RefreshRules
    from seedcache._stores._registry import Registry

    store = CassetteStore(tmp_path / "c.json")
    now_ms = round(time.time() * 1000)
    registry = Registry(store)
    # A machine whose clock is a year ahead wrote this; then an honest run saw fp_new.
    registry.observe("gpt-4o", "fp_old", now_ms + round(YEAR * 1000), run_started_ms=now_ms)
    registry.observe("gpt-4o", "fp_new", now_ms, now_ms=now_ms, run_started_ms=now_ms)
    rules = RefreshRules(registry, clock=time.time)
    assert rules.current("gpt-4o") == {"fp_new"}
    statuses = {s.fingerprint: s for s in fingerprint_statuses(rules, [])}
    assert (statuses["fp_old"].last_seen_ms, statuses["fp_old"].current) == (None, False)
    # The wrong time is corrected in the store, not only ignored on read.
    assert Registry(store).load()["gpt-4o"].fingerprints["fp_old"].last_seen_ms <= now_ms


# -- 4. a store that cannot take writes degrades to pass-through ------------------------


@pytest.fixture
def full_store(store_kind, fake, tmp_path):
    """(location, make it full) for a real store that then refuses every write."""
    if store_kind == "disk":

        def fill(cache):
            connection = cache.store._cache._sql  # the store's own SQLite connection
            pages = connection("PRAGMA page_count").fetchone()[0]
            connection(f"PRAGMA max_page_count = {pages}")

        yield str(tmp_path / "c"), fill
        return
    from redis_servers import RedisServer

    server = RedisServer(tmp_path / "redis", "--maxmemory-policy", "noeviction")

    def fill_redis(cache):
        import redis

        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory", 1)
        client.close()

    yield f"{server.url}?namespace=full", fill_redis
    server.stop()


@pytest.mark.stores("disk", "redis")
def test_a_full_store_still_answers_every_request_live(fake, full_store, caplog):
    import logging

    location, fill = full_store
    with SeedCache(location, mode="auto") as cache:
        ask_story(cache, fake, seed=1)
        fill(cache)
        before = fake.request_count
        with caplog.at_level(logging.ERROR, logger="seedcache"):
            texts = [ask_story(cache, fake, seed=seed)[0] for seed in (2, 3, 4)]
        assert all(texts)
        assert fake.request_count - before == 3
        assert cache.stats().write_errors >= 2
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1  # said once, not once per request
        assert "could not" in errors[0].getMessage()


# -- 5. nothing is written through a symbolic link out of the cassettes folder -------------


def test_a_cassette_lock_that_is_a_symlink_is_never_followed(fake, tmp_path):
    outside = tmp_path / "outside" / "planted"
    outside.parent.mkdir()
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    (cassettes / ".c.json.lock").symlink_to(outside)
    with SeedCache.cassette(cassettes / "c.json", mode="auto") as cache:
        text, _ = ask_story(cache, fake)  # the caller still gets its answer
        assert text
        assert cache.stats().write_errors == 1
    assert not outside.exists()


SYMLINKED_SUITE = """
def test_story(openai_client):
    assert openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
    ).choices[0].message.content
"""


def test_a_default_cassette_is_never_written_through_a_symlink_out(inner, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (inner.path / "tests").mkdir()
    (inner.path / "tests" / "test_story.py").write_text(SYMLINKED_SUITE)
    (inner.path / "cassettes" / "tests").mkdir(parents=True)
    (inner.path / "cassettes" / "tests" / "test_story").symlink_to(outside)
    result = inner.runpytest_subprocess("--seedcache-mode=auto")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*is outside*cassettes*"])
    assert list(outside.iterdir()) == []


# -- 6. one schema for every store -------------------------------------------------------


def hostile_frames(good) -> dict[str, bytes]:
    """Frames a stranger could plant, each wrong in one field, built on a good entry."""
    import dataclasses
    import zlib

    from seedcache._stores._codec import _FRAME_HEADER, _FRAME_MAGIC, encode_entry

    take = good.takes[0]
    frames = {
        "dict model": dataclasses.replace(take, model={"a": 1}),
        "list fingerprint": dataclasses.replace(take, fingerprint=["fp"]),
        "huge time": dataclasses.replace(take, recorded_at_ms=10**30),
        "negative latency": dataclasses.replace(take, latency_ms=-5),
        "status 42": dataclasses.replace(take, status=42),
    }
    planted = {
        name: encode_entry(dataclasses.replace(good, takes=(bad,))) for name, bad in frames.items()
    }
    bomb = zlib.compress(b" " * (20 * 1024 * 1024), 9)
    head = json.dumps(
        {
            "key": good.key,
            "request": good.request,
            "takes": [
                {
                    "status": 200,
                    "headers": [],
                    "fingerprint": None,
                    "model": None,
                    "recorded_at_ms": 1,
                    "latency_ms": 1,
                    "size": len(bomb),
                    "encoding": "zlib",
                }
            ],
            "history": [],
        }
    ).encode()
    planted["inflation bomb"] = _FRAME_HEADER.pack(_FRAME_MAGIC, len(head)) + head + bomb
    planted["another key's entry"] = encode_entry(dataclasses.replace(good, key="ab" * 16))
    return planted


@pytest.fixture
def planted_store(store_kind, store_location, fake):
    """(location, plant(frame)): a store with two good entries; plant() replaces one's frame
    with hostile bytes, straight into the database or the server, as an attacker would."""
    location = store_location
    with SeedCache(location, mode="auto") as cache:
        victim = ask_story(cache, fake, seed=1)[1].key  # seed 2's entry stays good
        ask_story(cache, fake, seed=2)
        good = cache.store.get(victim)

    def plant(frame: bytes) -> None:
        if store_kind == "disk":
            with contextlib.closing(sqlite3.connect(Path(store_location) / "cache.db")) as db:
                db.execute("UPDATE Cache SET value = ? WHERE key = ?", (frame, f"entry:{victim}"))
                db.execute("DELETE FROM Cache WHERE key = ?", (f"index:{victim}",))
                db.commit()
        else:
            import redis

            from seedcache._stores._redis import _split_namespace

            url, namespace = _split_namespace(location)
            client = redis.Redis.from_url(url)
            client.hset(f"{namespace}:{{{victim}}}", "frame", frame)
            client.hdel(f"{namespace}:{{{victim}}}", "summary")
            client.close()

    return location, good, victim, plant


@pytest.mark.stores("disk", "redis")
def test_a_hostile_entry_is_corrupt_in_every_store_and_breaks_no_command(
    fake, planted_store, tmp_path
):
    location, good, victim, plant = planted_store
    for name, frame in hostile_frames(good).items():
        plant(frame)
        verified = cli("--cache-dir", location, "verify")
        assert verified.exit_code == 1, (name, verified.output)
        assert victim in verified.output, name
        for command in (["ls", "--all"], ["stats"], ["fingerprints"], ["determinism"], ["report"]):
            result = cli("--cache-dir", location, *command)
            assert result.exit_code == 0, (name, command, result.output)
            assert "Traceback" not in result.output
        exported = cli("--cache-dir", location, "export", tmp_path / f"{len(name)}.json")
        assert exported.exit_code == 0, (name, exported.output)
        assert victim in exported.output  # said, not silently skipped
        with SeedCache(location, mode="auto") as cache:
            assert ask_story(cache, fake, seed=2)[1].action is Action.HIT
            stats = cache.stats()
            assert stats.cost_saved_usd is None or stats.cost_saved_usd < 1


def test_a_planted_usage_count_adds_nothing_absurd_to_savings(fake, tmp_path):
    import dataclasses

    with SeedCache(tmp_path / "c", mode="auto") as cache:
        ask_story(cache, fake)
        [key] = cache.store.keys()
        entry = cache.store.get(key)
        document = json.loads(entry.takes[0].body)
        document["usage"] = {"prompt_tokens": 10**300, "completion_tokens": 10**320}
        body = json.dumps(document).encode()
        take = dataclasses.replace(entry.takes[0], body=body)
        cache.store.update(key, lambda e: dataclasses.replace(e, takes=(take,)))
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        ask_story(cache, fake)
        stats = cache.stats()
    assert stats.tokens_saved == 0
    assert cli("--cache-dir", tmp_path / "c", "stats").exit_code == 0


def test_a_planted_index_row_is_rebuilt_from_its_entry(fake, tmp_path):
    with SeedCache(tmp_path / "c", mode="auto") as cache:
        key = ask_story(cache, fake)[1].key
    row = json.dumps(
        [2, "POST /v1/chat/completions", {"a": 1}, None, [[200, ["x"], None, 1, 1, 1]], []]
    )
    with contextlib.closing(sqlite3.connect(tmp_path / "c" / "cache.db")) as db:
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (row.encode(), f"index:{key}"))
        db.commit()
    listed = cli("--cache-dir", tmp_path / "c", "ls", "--all", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["model"] == "gpt-4o-mini"


# -- 7. a lease without expiry, and other planted Redis names --------------------------------


def redis_client(location):
    import redis

    from seedcache._stores._redis import _split_namespace

    url, namespace = _split_namespace(location)
    return redis.Redis.from_url(url), namespace


def test_a_lease_without_expiry_is_taken_over_not_waited_on(fake, redis_url):
    import time

    with SeedCache(redis_url, mode="auto") as cache:
        key = ask_story(cache, fake)[1].key
        cache.store.delete(key)
    client, namespace = redis_client(redis_url)
    client.set(f"{namespace}:{{{key}}}:lease", "stale")  # no TTL: nobody will ever release it
    started = time.monotonic()
    with SeedCache(redis_url, mode="auto") as cache:
        assert ask_story(cache, fake)[1].action is Action.RECORDED
    assert time.monotonic() - started < 5
    client.close()


def test_planted_redis_names_and_revisions_break_no_command(fake, redis_url):
    with SeedCache(redis_url, mode="auto") as cache:
        key = ask_story(cache, fake)[1].key
        other = ask_story(cache, fake, seed=2)[1].key
    client, namespace = redis_client(redis_url)
    client.hset(f"{namespace}:{{".encode() + b"\xff\xfe}", "frame", b"x")  # not UTF-8
    client.hset(f"{namespace}:{{{other}}}", "rev", "garbage")
    client.close()
    for command in (["ls", "--all"], ["stats"], ["verify"], ["report"]):
        result = cli("--cache-dir", redis_url, *command)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1), result.output
    with SeedCache(redis_url, mode="auto") as cache:
        assert ask_story(cache, fake)[1].action is Action.HIT
        assert ask_story(cache, fake, seed=2)[1].action in (Action.HIT, Action.RECORDED)
    assert key


# -- 8. the body's kind is part of the key -------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", b"hello"),
        ("application/octet-stream", bytes(range(256)) * 300),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello\r\n--XyZ--\r\n',
        ),
    ],
    ids=["text", "bytes", "multipart"],
)
def test_a_non_json_body_never_replays_a_json_body_s_answer(content_type, raw):
    from seedcache._request._keys import KeyConfig, canonicalize
    from seedcache._request._wire import CapturedRequest

    def key(body: bytes, media: str) -> str:
        request = CapturedRequest("POST", LIST_URL, (("content-type", media),), body)
        return canonicalize(request, KeyConfig()).key

    other = key(raw, content_type)
    summary_like = canonicalize(
        CapturedRequest("POST", LIST_URL, (("content-type", content_type),), raw), KeyConfig()
    ).summary["body"]
    as_json = json.dumps(summary_like).encode()
    assert key(as_json, "application/json") != other
    # A JSON body is keyed as before: recordings made before this change still replay.
    assert key(b'{"model":"m"}', "application/json") == key(b'{"model": "m"}', "application/json")


# -- 9. stored text never reaches a terminal raw --------------------------------------------

OSC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"


def test_escape_sequences_in_a_cassette_are_shown_escaped(fake, tmp_path):
    import dataclasses

    path = tmp_path / "hostile.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        key = ask_story(cache, fake)[1].key
        entry = cache.store.get(key)
        take = entry.takes[0]
        document = json.loads(take.body)
        document["choices"][0]["message"]["content"] = f"story {CLEAR} {OSC_TITLE} end"
        hostile = dataclasses.replace(
            take, body=json.dumps(document).encode(), model=f"gpt{OSC_TITLE}", fingerprint=CLEAR
        )
        request = {**entry.request, "url": entry.request["url"] + OSC_TITLE}
        cache.store.update(
            key,
            lambda e: dataclasses.replace(e, request=request, takes=(hostile,), history=(take,)),
        )
    for color in ("always", "never"):
        for command in (["ls"], ["show", key[:8]], ["diff", key[:8]], ["report"], ["stats"]):
            result = cli("--color", color, "--cassette", path, *command)
            assert result.exit_code == 0, (command, result.output)
            assert "\x07" not in result.output, command
            assert "\x1b]" not in result.output, command
            assert "\x1b[2J" not in result.output, command
    assert "\\x1b]0;pwned\\x07" in cli("--cassette", path, "show", key[:8]).output


# -- 10. a report is never written over a recording -----------------------------------------


def test_a_report_never_overwrites_the_cassette_or_the_cache(fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        ask_story(cache, fake)
    other = tmp_path / "other.json"
    other.write_bytes(path.read_bytes())
    with SeedCache(tmp_path / "dir", mode="auto") as cache:
        ask_story(cache, fake)
    before = path.read_bytes(), other.read_bytes()
    for args in (
        ["--cassette", path, "report", "--html", path],
        ["--cassette", path, "report", "--html", other],
        ["--cache-dir", tmp_path / "dir", "report", "--html", tmp_path / "dir" / "cache.db"],
        ["--cache-dir", tmp_path / "dir", "report", "--html", tmp_path / "dir" / "r.html"],
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "--html" in result.output
    assert (path.read_bytes(), other.read_bytes()) == before
    assert (tmp_path / "dir" / "cache.db").read_bytes().startswith(b"SQLite format 3")
    assert not (tmp_path / "dir" / "r.html").exists()
    assert cli("--cassette", path, "report", "--html", tmp_path / "r.html").exit_code == 0


# -- 11. credentials inside bodies are never written ----------------------------------------

ADMIN_KEY = "sk-admin-" + "A1b2C3d4" * 6
EPHEMERAL = "ek_" + "Z9y8X7w6" * 5


def test_credential_fields_in_request_bodies_are_keyed_but_never_stored(tmp_path):
    import httpx2

    answered = []

    def upstream(request):
        answered.append(json.loads(request.content))
        return httpx2.Response(200, json={"ok": len(answered)})

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        transport = cache.transport(httpx2.MockTransport(upstream))
        with httpx2.Client(transport=transport) as client:
            url = "https://gateway.example/v1/chat/completions"
            one = client.post(url, json={"model": "m", "api_key": "first-SECRET-value"})
            two = client.post(url, json={"model": "m", "api_key": "second-SECRET-value"})
            said = client.post(url, json={"model": "m", "messages": [f"my key is {ADMIN_KEY}"]})
    assert one.extensions["seedcache"].key != two.extensions["seedcache"].key
    assert said.status_code == 200
    assert answered[0]["api_key"] == "first-SECRET-value"  # sent as given
    stored = path.read_bytes()
    assert b"SECRET" not in stored
    assert ADMIN_KEY.encode() not in stored


def test_answers_that_hand_out_credentials_are_stored_without_them(tmp_path):
    import httpx2

    def upstream(request):
        if request.url.path.endswith("admin_api_keys"):
            return httpx2.Response(
                200, json={"object": "organization.admin_api_key", "value": ADMIN_KEY}
            )
        return httpx2.Response(
            200, json={"object": "realtime.session", "client_secret": {"value": EPHEMERAL}}
        )

    path = tmp_path / "c.json"
    admin_url = "https://api.openai.com/v1/organization/admin_api_keys"
    cache = SeedCache.cassette(path, mode="auto")
    with cache, httpx2.Client(transport=cache.transport(httpx2.MockTransport(upstream))) as client:
        live = client.post(admin_url, json={})
        session = client.post("https://api.openai.com/v1/realtime/sessions", json={})
    assert live.json()["value"] == ADMIN_KEY  # the caller gets what it paid for
    assert session.json()["client_secret"]["value"] == EPHEMERAL
    stored = path.read_bytes()
    assert ADMIN_KEY.encode() not in stored
    assert EPHEMERAL.encode() not in stored
    cache = SeedCache.cassette(path, mode="replay")
    with cache, httpx2.Client(transport=cache.transport()) as client:
        replayed = client.post(admin_url, json={})
    assert replayed.json()["value"].startswith("sk-redacted-")


# -- 12. the proxy: body limit, head timeout, separators ------------------------------------


@pytest.mark.parametrize(
    "target", ["/v1/..;/admin", "/v1/..\\..\\admin", "/v1/chat%5ccompletions", "/v1/models;x"]
)
def test_the_proxy_refuses_backslash_and_semicolon_segments(fake, tmp_path, target):
    from test_hostile import proxy_head, raw_http

    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        status, _ = raw_http(url, proxy_head("GET", target))
    assert status == 400
    assert fake.request_count == 0


def test_the_proxy_refuses_a_body_over_its_limit_without_reading_it(fake, tmp_path):
    from test_hostile import proxy_head, raw_http

    limit = 1024
    with (
        SeedCache(tmp_path / "c") as cache,
        cache.proxy(fake.base_url, max_body_bytes=limit) as url,
    ):
        big = b'{"model": "m", "pad": "' + b"x" * 2048 + b'"}'
        head = proxy_head(
            "POST",
            "/v1/chat/completions",
            extra=f"Content-Type: application/json\nContent-Length: {len(big)}\n",
        )
        status, body = raw_http(url, head, big)
        assert status == 413
        assert b"over the proxy's limit of 1024 bytes" in body
        chunked = proxy_head(
            "POST",
            "/v1/chat/completions",
            extra="Content-Type: application/json\nTransfer-Encoding: chunked\n",
        )
        chunks = b"".join(b"%x\r\n%s\r\n" % (512, b"x" * 512) for _ in range(4)) + b"0\r\n\r\n"
        assert raw_http(url, chunked, chunks)[0] == 413
    assert fake.request_count == 0


def test_connections_that_send_no_request_head_are_closed(fake, tmp_path):
    import socket
    import time
    from urllib.parse import urlsplit

    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url, header_timeout=0.5) as url:
        parts = urlsplit(url)
        idle = [socket.create_connection((parts.hostname, parts.port)) for _ in range(20)]
        slow = socket.create_connection((parts.hostname, parts.port))
        slow.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        time.sleep(1.5)
        for conn in [*idle, slow]:
            conn.settimeout(2)
            assert conn.recv(1024) == b""  # closed by the proxy
            conn.close()


# -- 13. a stopped lock holder, and ids that differ only in case ----------------------------


def test_a_writer_waits_for_a_stopped_lock_holder_with_a_bound_and_names_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from seedcache import CassetteStore, Entry, StoreError

    path = tmp_path / "c.json"
    CassetteStore(path).update("ab" * 16, lambda _: Entry("ab" * 16, {"url": "u"}))
    before = path.read_bytes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from pathlib import Path\n"
            "from seedcache._stores._filelock import exclusive\n"
            "with exclusive(Path(sys.argv[1])):\n"
            "    print('held', flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGSTOP)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        store = CassetteStore(path, lock_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"locked by process {holder.pid}"):
            store.update("cd" * 16, lambda _: Entry("cd" * 16, {"url": "u"}))
        assert time.monotonic() - started < 5
        assert path.read_bytes() == before
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.wait(timeout=10)
        holder.stdout.close()


CASE_SUITE = """
import pytest

@pytest.mark.parametrize("name", ["A", "a", "Io", "io"])
def test_name(openai_client, name):
    assert openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": name}], seed=1
    ).choices[0].message.content
"""


def test_ids_that_differ_only_in_case_never_share_a_cassette(inner, fake):
    (inner.path / "test_case.py").write_text(CASE_SUITE)
    inner.runpytest_subprocess("--seedcache-mode=auto").assert_outcomes(passed=4)
    files = [p.name for p in (inner.path / "cassettes").rglob("*.json")]
    assert len(files) == 4
    assert len({name.lower() for name in files}) == 4  # distinct on macOS and Windows too
    fake.stop()
    inner.runpytest_subprocess().assert_outcomes(passed=4)


# -- the attacker's second pass ---------------------------------------------------------------


def test_a_planted_database_link_changes_no_file_outside(fake, tmp_path):
    import sqlite3 as sql

    from seedcache import StoreError

    victim = tmp_path / "victim.db"
    with contextlib.closing(sql.connect(victim)) as db:
        db.execute("CREATE TABLE Settings (key TEXT, value TEXT)")
        db.execute("INSERT INTO Settings VALUES ('theme', 'dark')")
        db.commit()
    before = victim.read_bytes()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "cache.db").symlink_to(victim)
    with pytest.raises(StoreError, match="symbolic link"):
        SeedCache(tmp_path / "cache")
    assert victim.read_bytes() == before


def test_a_value_file_that_is_a_link_inside_the_cache_is_never_followed(fake, tmp_path):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    (directory / "ab" / "cd").mkdir(parents=True)
    link = directory / "ab" / "cd" / ("e" * 28 + ".val")
    link.symlink_to(directory / "cache.db")
    point_row_at(directory, key, f"ab/cd/{'e' * 28}.val")
    assert cli("--cache-dir", directory, "verify", "--fix").exit_code == 0
    assert (directory / "cache.db").is_file()
    with SeedCache(directory, mode="auto") as cache:
        assert ask_story(cache, fake)[1].action is Action.RECORDED
    assert (directory / "cache.db").is_file()


def test_a_value_file_that_is_a_fifo_never_hangs_a_read(fake, tmp_path):
    import os

    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    (directory / "ab" / "cd").mkdir(parents=True)
    os.mkfifo(directory / "ab" / "cd" / ("f" * 28 + ".val"))
    point_row_at(directory, key, f"ab/cd/{'f' * 28}.val")
    result = cli("--cache-dir", directory, "verify")
    assert result.exit_code == 1
    assert "not a regular file" in result.output


@pytest.mark.stores("disk", "redis")
def test_a_planted_lease_that_runs_for_a_year_is_taken_over(fake, store_kind, store_location):
    import json as json_module
    import time

    location = store_location
    with SeedCache(location, mode="auto") as cache:
        key = ask_story(cache, fake)[1].key
        cache.store.delete(key)
    if store_kind == "disk":
        lease = json_module.dumps({"owner": "x", "token": "t", "until": time.time() + 3e7})
        with SeedCache(location) as cache:
            cache.store._cache.set(f"lease:{key}", lease.encode())
    else:
        client, namespace = redis_client(location)
        client.set(f"{namespace}:{{{key}}}:lease", "stale", px=365 * 86400 * 1000)
        client.close()
    started = time.monotonic()
    with SeedCache(location, mode="auto") as cache:
        assert ask_story(cache, fake)[1].action is Action.RECORDED
    assert time.monotonic() - started < 5


def test_secrets_anywhere_in_a_request_never_reach_the_store(fake, tmp_path):
    import httpx2

    def upstream(request):
        return httpx2.Response(200, json={"ok": True})

    path = tmp_path / "c.json"
    cache = SeedCache.cassette(path, mode="auto", match_headers=["openai-beta"])
    with cache, httpx2.Client(transport=cache.transport(httpx2.MockTransport(upstream))) as client:
        base = "https://api.openai.com/v1"
        client.get(f"{base}/models/{ADMIN_KEY}")
        client.get(f"{base}/models", params={"q": ADMIN_KEY})
        client.post(f"{base}/chat/completions", json={"metadata": {ADMIN_KEY: 1}})
        client.post(f"{base}/chat/completions", json={"m": f"key_{ADMIN_KEY}"})
        client.post(
            f"{base}/chat/completions",
            content=b'{"m": "\\u0073' + ADMIN_KEY[1:].encode() + b'"}',
            headers={"content-type": "application/json"},
        )
        client.post(
            f"{base}/x",
            content=f"client_secret={ADMIN_KEY}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        client.post(f"{base}/chat/completions", json={}, headers={"OpenAI-Beta": ADMIN_KEY})
    assert ADMIN_KEY[3:].encode() not in path.read_bytes()


def test_json_output_escapes_what_a_terminal_acts_on(fake, tmp_path):
    import dataclasses

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        key = ask_story(cache, fake)[1].key
        entry = cache.store.get(key)
        take = dataclasses.replace(entry.takes[0], model="gpt\u009b2J\u202e")
        cache.store.update(key, lambda e: dataclasses.replace(e, takes=(take,)))
    for command in (["ls", "--json"], ["show", key[:8], "--json"]):
        output = cli("--cassette", path, *command).output
        assert "\u009b" not in output
        assert "\u202e" not in output
    assert "\\u009b" in cli("--cassette", path, "show", key[:8], "--json").output


# -- the attacker's third pass ----------------------------------------------------------------


def test_keys_after_an_escape_and_camel_case_credential_fields_are_redacted(tmp_path):
    import httpx2

    def upstream(request):
        if request.url.path.endswith("/answer"):
            return httpx2.Response(
                200,
                content=b'{"content": "Your key:\\n' + ADMIN_KEY.encode() + b'"}',
                headers={"content-type": "application/json"},
            )
        return httpx2.Response(200, json={"ok": True})

    path = tmp_path / "c.json"
    cache = SeedCache.cassette(path, mode="auto")
    with cache, httpx2.Client(transport=cache.transport(httpx2.MockTransport(upstream))) as client:
        url = "https://api.openai.com/v1/chat/completions"
        client.post(url, json={"accessToken": "TOKEN-SENTINEL", "clientSecret": "CS-SENTINEL"})
        client.post(url, json={"openai_api_key": "OAK-SENTINEL", "max_tokens": 7})
        client.post(
            "https://api.openai.com/v1/x",
            content=f"prompt=hello%20{ADMIN_KEY}".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        # A key after an escaped newline in the raw bytes is cut out of them, and the
        # answer is still stored (redacted).
        assert client.post("https://api.openai.com/v1/answer", json={}).status_code == 200
    stored = path.read_bytes()
    for secret in (ADMIN_KEY[3:], "TOKEN-SENTINEL", "CS-SENTINEL", "OAK-SENTINEL"):
        assert secret.encode() not in stored, secret
    assert b'"max_tokens": 7' in stored  # a field that is no credential stays readable
    assert stored.count(b"sk-redacted-") >= 2


def test_the_canary_sends_no_recorded_header_but_the_few_that_change_an_answer(fake, tmp_path):
    from click.testing import CliRunner

    from helpers import SENTINEL_KEY
    from seedcache._cli import cli as command

    path = tmp_path / "c.json"
    with SeedCache.cassette(path, mode="auto") as cache:
        ask_story(cache, fake)
    document = json.loads(path.read_text())
    document["entries"][0]["request"]["headers"] = {
        "Host": "attacker.example",
        "X-HTTP-Method-Override": "DELETE",
        "OpenAI-Beta": "assistants=v2",
    }
    document["entries"][0]["request"]["url"] += "?admin=1"
    path.write_text(json.dumps(document))
    sent = fake.request_count
    result = CliRunner().invoke(
        command,
        ["--cassette", str(path), "refresh", "--dry-run", "--base-url", fake.base_url],
        env={"OPENAI_API_KEY": SENTINEL_KEY},
    )
    assert result.exit_code == 0, result.output
    [request] = fake.requests[sent:]
    assert request.headers.get("host", "").startswith("127.0.0.1")
    assert "x-http-method-override" not in {k.lower() for k in request.headers}
    assert request.headers.get("openai-beta") == "assistants=v2"
    assert "?" not in request.path


def test_a_value_folder_that_is_a_link_receives_nothing(fake, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    directory = tmp_path / "c"
    with SeedCache(directory, mode="auto") as cache:
        ask_story(cache, fake)
    for first in range(256):
        name = directory / f"{first:02x}"
        if not name.exists():
            name.symlink_to(outside)
    with SeedCache(directory, mode="auto") as cache:
        client = cache.wrap(make_client(fake))
        client.embeddings.create(model="text-embedding-3-large", input=["x"] * 12)  # > 32 KB
        assert cache.stats().write_errors >= 1
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("media", "body"),
    [
        (
            "text/event-stream",
            b"".join(
                b'data: {"id":"c","object":"chat.completion.chunk","model":"m",'
                b'"choices":[{"index":0,"delta":{"content":"' + piece + b'"}}]}\n\n'
                for piece in (b"Your key is ", b"sk-proj-", b"SENTINEL0123456789", b"abcdefABCDEF")
            )
            + b"data: [DONE]\n\n",
        ),
        ("application/json", b'{"a": "\\u0073k-proj-SENTINEL0123456789abcdefABCDEF"}'),
    ],
    ids=["key-split-across-events", "key-in-json-escapes"],
)
def test_an_answer_that_spells_a_key_only_once_read_is_never_stored(tmp_path, media, body):
    import httpx2

    def upstream(request):
        return httpx2.Response(200, content=body, headers={"content-type": media})

    path = tmp_path / "c.json"
    cache = SeedCache.cassette(path, mode="auto")
    with cache, httpx2.Client(transport=cache.transport(httpx2.MockTransport(upstream))) as client:
        live = client.post("https://api.openai.com/v1/chat/completions", json={"stream": True})
        assert live.content == body  # the caller gets what it paid for
    assert b"SENTINEL0123456789" not in (path.read_bytes() if path.exists() else b"")


@pytest.mark.parametrize(
    "body",
    [
        b"creds%5Bpassword%5D=FORM-SENTINEL&x=1",
        b"api%5Fkey=FORM-SENTINEL",
        b"password=a,FORM-SENTINEL",
    ],
)
def test_credential_fields_of_a_form_are_judged_by_their_decoded_names(tmp_path, body):
    import httpx2

    path = tmp_path / "c.json"
    cache = SeedCache.cassette(path, mode="auto")
    transport = cache.transport(httpx2.MockTransport(lambda r: httpx2.Response(200, json={})))
    with cache, httpx2.Client(transport=transport) as client:
        client.post(
            "https://api.openai.com/v1/x",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert b"FORM-SENTINEL" not in path.read_bytes()


def test_a_body_too_deep_to_redact_field_by_field_is_stored_as_a_digest(tmp_path):
    import httpx2

    deep: dict = {"password": " DEEP-SENTINEL", "client_secret": ["DEEP-SENTINEL"]}
    for _ in range(80):
        deep = {"x": deep}
    path = tmp_path / "c.json"
    cache = SeedCache.cassette(path, mode="auto")
    transport = cache.transport(httpx2.MockTransport(lambda r: httpx2.Response(200, json={})))
    with cache, httpx2.Client(transport=transport) as client:
        client.post("https://api.openai.com/v1/chat/completions", json=deep)
    assert b"DEEP-SENTINEL" not in path.read_bytes()


def test_a_key_percent_encoded_in_a_url_path_is_never_stored(tmp_path):
    import httpx2

    path = tmp_path / "c.json"
    cache = SeedCache.cassette(path, mode="auto")
    transport = cache.transport(httpx2.MockTransport(lambda r: httpx2.Response(200, json={})))
    with cache, httpx2.Client(transport=transport) as client:
        client.get("https://api.openai.com/v1/models/%73k-proj-PATHSENTINEL0123456789abcdef")
        client.get("https://api.openai.com/v1/models/sk%2Dproj-PATHSENTINEL0123456789abcdef")
    assert b"PATHSENTINEL" not in path.read_bytes()
