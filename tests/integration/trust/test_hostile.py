"""Damaged, hostile and half-written data: clear errors, nothing executed, nothing lost."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import diskcache
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import MESSAGES, SENTINEL_KEY, make_client, stored_bytes
from seedcache import (
    CassetteStore,
    ConfigurationError,
    CorruptEntryError,
    DiskStore,
    ExposedProxyWarning,
    SeedCache,
    StoreError,
)
from seedcache._stores._codec import decode_entry, encode_entry


def load_error(path) -> str | None:
    """The CorruptEntryError message loading ``path`` gives, or None if it loads."""
    try:
        CassetteStore(path).close()
    except CorruptEntryError as exc:
        return str(exc)
    return None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_as_a_cassette_are_a_clear_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "c.json"
    path.write_bytes(raw)
    error = load_error(path)
    assert error is None or str(path) in error


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
take_like = st.fixed_dictionaries(
    {},
    optional={
        "status": json_value,
        "headers": json_value,
        "body": json_value,
        "fingerprint": json_value,
        "recorded_at": json_value,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"key": st.text(max_size=40) | json_value},
        optional={"request": json_value, "takes": st.lists(take_like, max_size=2) | json_value},
    )
)
def test_any_entry_document_loads_or_fails_clearly(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("fuzz") / "c.json"
    path.write_text(json.dumps({"seedcache": 1, "entries": [document]}))
    error = load_error(path)
    assert error is None or "entries[0]" in error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256), st.integers(min_value=0, max_value=2000))
def test_damaged_disk_frames_are_corrupt_entries(noise, position):
    from seedcache import Entry, Take

    frame = bytearray(
        encode_entry(Entry("ab" * 16, {"method": "POST"}, [Take(200, (), b'{"x": 1}' * 40)]))
    )
    position %= len(frame)
    damaged = bytes(frame[:position]) + noise + bytes(frame[position + len(noise) :])
    with contextlib.suppress(CorruptEntryError):  # any other exception fails the test
        decode_entry(damaged, where="fuzz")


def test_a_corrupt_disk_entry_is_a_warned_miss_in_auto_and_an_error_in_replay(
    fake, tmp_path, caplog
):
    with SeedCache(tmp_path / "c") as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        [key] = cache.store.keys()
    raw = diskcache.Cache(str(tmp_path / "c"))
    raw.set("entry:" + key, b"SCE1 garbage")
    raw.close()

    with SeedCache(tmp_path / "c", mode="replay") as cache, pytest.raises(CorruptEntryError):
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    with caplog.at_level(logging.WARNING, logger="seedcache"), SeedCache(tmp_path / "c") as cache:
        reply = cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert reply.choices[0].message.content
    assert any("treating it as not recorded" in r.getMessage() for r in caplog.records)
    assert fake.request_count == 2
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        again = cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert again == reply


def test_a_truncated_cassette_is_never_overwritten_by_auto(fake, tmp_path):
    path = tmp_path / "c.json"
    with SeedCache.cassette(path) as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    damaged = path.read_bytes()[:-40]
    path.write_bytes(damaged)
    with pytest.raises(CorruptEntryError, match=r"c\.json: not valid JSON at line \d+ column"):
        SeedCache.cassette(path, mode="auto")
    assert path.read_bytes() == damaged


@pytest.mark.parametrize("cassette", ["../../escaped.json", "sub/../.."])
def test_a_marker_cannot_point_outside_the_cassette_directory(
    pytester, fake, monkeypatch, cassette
):
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    pytester.makepyfile(
        test_escape=f"""
        import pytest

        @pytest.mark.seedcache(cassette={cassette!r}, mode="auto")
        def test_escape(openai_client):
            openai_client.models.list()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*cassette {cassette!r} is outside*"])
    assert not (pytester.path.parent / "escaped.json").exists()
    assert fake.request_count == 0


RECORDER = textwrap.dedent(
    """
    import sys, openai, seedcache
    kind, location, base_url = sys.argv[1:]
    cache = (seedcache.SeedCache(location) if kind == "disk"
             else seedcache.SeedCache.cassette(location))
    client = cache.wrap(openai.OpenAI(api_key="k", base_url=base_url, max_retries=0))
    for number in range(100_000):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{number}"}], seed=1
        )
    """
)


@pytest.mark.parametrize("kind", ["disk", "cassette"])
def test_sigkill_while_recording_leaves_a_store_that_serves_every_completed_take(
    fake, tmp_path, kind
):
    location = tmp_path / ("cache" if kind == "disk" else "c.json")
    process = subprocess.Popen([sys.executable, "-c", RECORDER, kind, str(location), fake.base_url])
    deadline = time.monotonic() + 60
    while fake.request_count < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert fake.request_count >= 25

    store = DiskStore(location) if kind == "disk" else CassetteStore(location)
    try:
        entries = list(store.entries())
        # Every take that was stored is whole; at most the one in flight is missing.
        assert len(entries) >= fake.request_count - 2
        for entry in entries:
            [take] = entry.takes
            assert json.loads(take.body)["choices"][0]["message"]["content"]
    finally:
        store.close()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert kind == "disk" or len(leftovers) <= 1  # at most one abandoned temp file, never read


def test_an_oversized_cassette_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from seedcache._stores import _cassette

    path = tmp_path / "huge.json"
    path.write_bytes(b'{"seedcache": 1, "entries": []}' + b" " * 2048)
    monkeypatch.setattr(_cassette, "MAX_CASSETTE_BYTES", 1024)
    with pytest.raises(CorruptEntryError, match="over the 1024 byte limit"):
        CassetteStore(path)


# -- a hostile cache directory -------------------------------------------------------------


def recorded_disk_entry(fake, directory) -> str:
    with SeedCache(directory) as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
        [key] = cache.store.keys()
    return key


def point_row_at(directory, key, filename) -> None:
    """Make the entry's row claim its value is in ``filename``, as a crafted database can."""
    with contextlib.closing(sqlite3.connect(directory / "cache.db")) as db:
        db.execute(
            "UPDATE Cache SET mode = 2, filename = ?, value = NULL WHERE key = ?",
            (filename, f"entry:{key}"),
        )
        db.commit()


def cli(*args):
    from click.testing import CliRunner

    from seedcache._cli import cli as command

    return CliRunner().invoke(command, [str(a) for a in args])


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_a_crafted_row_can_neither_read_nor_delete_a_file_outside_the_cache(fake, tmp_path, where):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    victim = tmp_path / "keep" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("precious")
    if where == "absolute":
        filename = str(victim)
    elif where == "parent":
        filename = "../keep/victim.txt"
    else:
        (directory / "ab").mkdir()
        (directory / "ab" / "link.val").symlink_to(victim)
        filename = "ab/link.val"
    point_row_at(directory, key, filename)

    with SeedCache(directory, mode="replay") as cache, pytest.raises(StoreError):
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    assert cli("--cache-dir", directory, "verify").exit_code == 1
    cli("--cache-dir", directory, "verify", "--fix")
    point_row_at(directory, key, filename)
    cli("--cache-dir", directory, "rm", "--yes", key)
    point_row_at(directory, key, filename)
    with SeedCache(directory, mode="auto") as cache:  # re-recording replaces the row
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    assert victim.read_text() == "precious"


def test_a_row_naming_a_device_is_refused_without_reading_it(fake, tmp_path):
    directory = tmp_path / "c"
    key = recorded_disk_entry(fake, directory)
    (directory / "zz").mkdir()
    (directory / "zz" / "zero.val").symlink_to("/dev/zero")
    for filename in ("/dev/zero", "../../../../../../../dev/zero", "zz/zero.val"):
        point_row_at(directory, key, filename)
        with pytest.raises(StoreError, match="value file"):
            DiskStore(directory).get(key)


def test_settings_planted_in_the_database_are_not_applied(fake, tmp_path):
    directory = tmp_path / "c"
    recorded_disk_entry(fake, directory)
    with contextlib.closing(sqlite3.connect(directory / "cache.db")) as db:
        db.executemany(
            "INSERT OR REPLACE INTO Settings VALUES (?, ?)",
            [
                ("sqlite_journal_mode", "OFF"),
                ("sqlite_synchronous", 0),
                ("sqlite_writable_schema", 1),
                ("disk_surprise", 1),
                ("eviction_policy", "least-recently-used"),
            ],
        )
        db.commit()
    with SeedCache(directory, mode="replay") as cache:
        store = cache.store
        assert store._cache._sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._cache._sql("PRAGMA synchronous").fetchone()[0] == 1
        assert store._cache.eviction_policy == "none"
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )


# -- read-only use -------------------------------------------------------------------------

READ_ONLY_REPLAY = textwrap.dedent(
    """
    import sys, openai, seedcache
    from click.testing import CliRunner
    from seedcache._cli import cli

    kind, location, base_url = sys.argv[1:]
    option = "--cache-dir" if kind == "disk" else "--cassette"
    cache = (seedcache.SeedCache(location, mode="replay") if kind == "disk"
             else seedcache.SeedCache.cassette(location, mode="replay"))
    client = cache.wrap(openai.OpenAI(api_key="k", base_url=base_url, max_retries=0))
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "ro"}], seed=1
    )
    assert reply.choices[0].message.content
    cache.close()
    for args in (["ls"], ["verify"], ["stats"]):
        result = CliRunner().invoke(cli, [option, location, *args])
        assert result.exit_code == 0, (args, result.output)
    print("replayed and listed")
    """
)


@pytest.mark.parametrize("kind", ["disk", "cassette"])
def test_a_read_only_cache_replays_and_lists(fake, kind):
    """Run as a user who cannot write the directory (CI caches, mounted volumes)."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop the right to write")
    root = Path(tempfile.mkdtemp(prefix="seedcache-ro-"))
    try:
        location = root / ("cache" if kind == "disk" else "ro.json")
        with SeedCache(location) if kind == "disk" else SeedCache.cassette(location) as cache:
            cache.wrap(make_client(fake)).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "ro"}], seed=1
            )
        for path in [root, *root.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        command = [sys.executable, "-c", READ_ONLY_REPLAY, kind, str(location), fake.base_url]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        fake.stop()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "replayed and listed" in done.stdout
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root)


# -- garbled cassettes -----------------------------------------------------------------------

CASSETTE = {
    "seedcache": 1,
    "entries": [
        {
            "key": "ab" * 16,
            "request": {"method": "POST", "url": "https://api.openai.com/v1/x", "body": {}},
            "takes": [
                {
                    "status": 200,
                    "fingerprint": "fp_a",
                    "model": "m",
                    "recorded_at": "2026-01-01T00:00:00.000Z",
                    "latency_ms": 5,
                    "headers": {"content-type": "application/json"},
                    "body": {"json": {"ok": True}, "layout": "indent2+newline"},
                }
            ],
            "history": [],
        }
    ],
    "meta": {"fingerprints": {"format": 1, "models": {}}},
}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            json.dumps(CASSETTE).replace(
                '"headers": {"content-type": "application/json"}',
                '"headers": [["content-type", "application/json", "extra"]]',
            ),
            id="header pair of three",
        ),
        pytest.param(
            json.dumps(CASSETTE).replace('"latency_ms": 5', '"latency_ms": NaN'), id="NaN"
        ),
        pytest.param(
            json.dumps(CASSETTE).replace('"status": 200', '"status": Infinity'), id="Infinity"
        ),
        pytest.param(
            json.dumps(CASSETTE).replace('"latency_ms": 5', '"latency_ms": ' + "9" * 5000),
            id="huge integer",
        ),
    ],
)
def test_a_garbled_cassette_is_a_corrupt_entry_naming_the_place(tmp_path, text):
    path = tmp_path / "g.json"
    path.write_text(text)
    error = load_error(path)
    assert error is not None
    assert str(path) in error


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


_PLACES = list(_paths(CASSETTE))
hostile_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["9" * 5000, "NaN", "-Infinity", "1e999"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_PLACES), hostile_value, st.booleans())
def test_any_value_anywhere_in_a_cassette_loads_or_fails_clearly(
    tmp_path_factory, place, value, raw_number
):
    """Every place of the document schema, replaced by any JSON value (or bare token)."""
    document = json.loads(json.dumps(CASSETTE))
    if place:
        parent = document
        for step in place[:-1]:
            parent = parent[step]
        parent[place[-1]] = "\x00PLACEHOLDER\x00"
    else:
        document = "\x00PLACEHOLDER\x00"
    text = json.dumps(document, allow_nan=True)
    token = value if raw_number and isinstance(value, str) and value[:1] in "9N-1" else None
    replacement = token if token is not None else json.dumps(value, allow_nan=True)
    path = tmp_path_factory.mktemp("schema") / "c.json"
    path.write_text(text.replace('"\\u0000PLACEHOLDER\\u0000"', replacement))
    error = load_error(path)  # any exception other than CorruptEntryError fails the test
    assert error is None or str(path) in error


# -- secrets in URLs -------------------------------------------------------------------------

URL_SECRETS = {
    "subscription-key": "SECRETsub",  # Azure API Management
    "code": "SECRETcode",  # Azure Functions
    "sig": "SECRETsig",  # SAS
    "access_token": "SECRETaccess",
    "token": "SECRETtoken",
    "apikey": "SECRETapikey",
    "api-key": "SECRETapi",
    "x-team-pass": "SECRETcustom",  # a name the user adds
}


def test_credentials_in_query_parameters_are_never_keyed_or_stored(fake, tmp_path):
    def ask(mode, values):
        with SeedCache(tmp_path / "c", mode=mode, secret_params=["x-team-pass"]) as cache:
            client = openai.OpenAI(
                api_key=SENTINEL_KEY,
                base_url=fake.base_url,
                default_query={**values, "api-version": "2024-10-21"},
                max_retries=0,
            )
            return cache.wrap(client).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, seed=1
            )

    recorded = ask("auto", URL_SECRETS)
    other = {name: value.replace("SECRET", "OTHER") for name, value in URL_SECRETS.items()}
    assert ask("replay", other) == recorded  # the credentials are not part of the key
    stored = stored_bytes(tmp_path / "c")
    assert b"SECRET" not in stored
    assert b"api-version=2024-10-21" in stored


def test_credentials_in_the_url_userinfo_are_never_keyed_or_stored():
    from seedcache._request._keys import canonicalize
    from seedcache._request._wire import CapturedRequest

    def canonical(url):
        return canonicalize(CapturedRequest("POST", url, (), b'{"model": "m"}'))

    with_password = canonical("http://user:SECRETpass@Gateway.example:8080/v1/chat/completions")
    without = canonical("http://gateway.example:8080/v1/chat/completions")
    assert with_password.key == without.key
    assert "SECRET" not in json.dumps(with_password.summary)
    assert with_password.summary["url"] == "http://gateway.example:8080/v1/chat/completions"


def test_an_upstream_with_credentials_is_refused_without_echoing_them(tmp_path):
    with SeedCache(tmp_path / "c") as cache, pytest.raises(ConfigurationError) as refused:
        cache.proxy_server("http://gateway:SECRETpass@127.0.0.1:9/v1")
    assert "credentials" in str(refused.value)
    assert "SECRETpass" not in str(refused.value)


# -- the proxy -------------------------------------------------------------------------------


def raw_http(base_url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request exactly as written (request line and headers) and read the answer."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def proxy_head(method: str, target: str, host: str = "127.0.0.1", extra: str = "") -> str:
    return f"{method} {target} HTTP/1.1\nHost: {host}\nConnection: close\n{extra}"


@pytest.fixture
def other_host():
    """A second server the proxy must never be tricked into calling."""
    from seedcache.testing import FakeOpenAI

    with FakeOpenAI() as server:
        yield server


def test_the_proxy_never_forwards_to_another_host_or_outside_the_api(fake, other_host, tmp_path):
    victim = other_host.base_url.removeprefix("http://").removesuffix("/v1")
    pathless = fake.base_url.removesuffix("/v1")
    targets = [
        f"@{victim}/v1/models",
        f"http://{victim}/v1/models",
        f"//{victim}/v1/models",
        "/v1/%0d%0aX-Injected:%20yes",
        "/v1/%2e%2e/%2e%2e/admin",
        "/v1/../admin",
        "*",
    ]
    with SeedCache(tmp_path / "c") as cache, cache.proxy(pathless) as url:
        for target in targets:
            status, _ = raw_http(
                url, proxy_head("GET", target, extra=f"Authorization: Bearer {SENTINEL_KEY}\n")
            )
            assert status == 400, target
    assert other_host.request_count == 0
    assert fake.request_count == 0


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("/.%2e0@:?#&=abv1\\~ ")) | st.characters(max_codepoint=126),
        max_size=30,
    )
)
def test_any_request_target_is_answered_without_a_server_error(fuzz_proxy, target):
    url, upstream = fuzz_proxy
    if any(c in target for c in " \r\n") or not target:
        return  # not a request line at all; the HTTP parser's business
    before = len(upstream.requests)
    try:
        status, _ = raw_http(url, proxy_head("GET", target))
    except (ValueError, IndexError, ConnectionError):
        return  # the HTTP parser closed the connection on a malformed line
    assert status < 500 or status == 502, target
    for request in upstream.requests[before:]:
        assert request.path.startswith("/v1/") or request.path == "/v1", target


@pytest.fixture(scope="module")
def fuzz_proxy(tmp_path_factory):
    from seedcache.testing import FakeOpenAI

    with (
        FakeOpenAI() as upstream,
        SeedCache(tmp_path_factory.mktemp("fuzz") / "c", mode="replay") as cache,
        cache.proxy(upstream.base_url) as url,
    ):
        yield url, upstream


def test_a_loopback_proxy_answers_only_loopback_host_names(fake, tmp_path):
    """DNS rebinding: a page on attacker.example resolving to 127.0.0.1 must get nothing."""
    with SeedCache(tmp_path / "c") as cache:
        with cache.proxy(fake.base_url) as url:
            with openai.OpenAI(api_key=SENTINEL_KEY, base_url=url, max_retries=0) as client:
                client.models.list()
            status, body = raw_http(url, proxy_head("GET", "/v1/models", "attacker.example"))
            assert status == 400
            assert b"gpt-4o-mini" not in body
            for host in ("localhost", "localhost:8080", "127.0.0.1:1", "[::1]:9"):
                assert raw_http(url, proxy_head("GET", "/v1/models", host))[0] == 200, host
        with cache.proxy(fake.base_url, allow_hosts=["llm.internal"]) as url:
            assert raw_http(url, proxy_head("GET", "/v1/models", "llm.internal:80"))[0] == 200
    assert fake.request_count == 1


def test_a_cross_site_text_plain_request_is_refused_and_nothing_is_stored(fake, tmp_path):
    body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode()
    head = proxy_head(
        "POST",
        "/v1/chat/completions",
        extra=f"Content-Type: text/plain\nContent-Length: {len(body)}\n",
    )
    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        status, answer = raw_http(url, head, body)
        assert status == 415
        assert b"application/json" in answer
        assert cache.store.keys() == []
    assert fake.request_count == 0


def test_an_exposed_proxy_warns_from_python_too(tmp_path, fake):
    with SeedCache(tmp_path / "c") as cache, pytest.warns(ExposedProxyWarning, match="0.0.0.0"):
        proxy = cache.proxy_server(fake.base_url, host="0.0.0.0")
    proxy.close()


def test_recording_through_a_symlinked_cassette_writes_its_target(fake, tmp_path):
    target = tmp_path / "shared" / "real.json"
    target.parent.mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with SeedCache.cassette(link) as cache:
        cache.wrap(make_client(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    assert link.is_symlink()
    assert len(json.loads(target.read_text())["entries"]) == 1


def test_a_deeply_nested_body_through_the_proxy_is_keyed_and_replayed(fake, tmp_path):
    value: dict = {"leaf": 1}
    for _ in range(900):
        value = {"x": value}
    body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "deep": value}).encode()
    head = proxy_head(
        "POST",
        "/v1/chat/completions",
        extra=(
            f"Authorization: Bearer {SENTINEL_KEY}\nContent-Type: application/json\n"
            f"Content-Length: {len(body)}\n"
        ),
    )
    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        status, recorded = raw_http(url, head, body)
    assert status == 200
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        status, replayed = raw_http(url, head, body)
    assert status == 200
    # Relayed live as it came (chunked); a replay goes out whole, with its length.
    assert replayed == dechunk(recorded)


def dechunk(data: bytes) -> bytes:
    """The payload of a chunked HTTP body."""
    payload = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        payload, data = payload + data[:length], data[length + 2 :]
    return payload
