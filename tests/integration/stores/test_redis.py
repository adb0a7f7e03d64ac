"""A cache on Redis: one location string, shared by machines, faults named, secrets kept out.

Every server here is a real redis-server on 127.0.0.1 (see ``redis_servers.py``). The
store contract, the record/replay suites and the many-process stress test run against
Redis too, through the ``store_kind`` and ``shared_location`` fixtures.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

import seedcache
from helpers import make_client
from inner_sessions import finish, start_python
from redis_servers import RedisServer, binary, free_port, namespace_for
from seedcache import StoreError
from seedcache._cli import cli
from seedcache._stores import open_store
from seedcache._stores._redis import RedisStore

MESSAGES = [{"role": "user", "content": "Tell me about Mars."}]
PASSWORD = "redis-SENTINEL-pass-4242"


def client_for(fake) -> openai.OpenAI:
    return make_client(fake)  # closed after the test


def record_some(location: str, fake) -> None:
    with seedcache.SeedCache(location, mode="auto") as cache:
        client = cache.wrap(client_for(fake))
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=2, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        client.embeddings.create(model="text-embedding-3-small", input="red dust")


def replay_all(location: str, fake) -> seedcache.Stats:
    with seedcache.SeedCache(location, mode="replay") as cache:
        client = cache.wrap(client_for(fake))
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
        list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, seed=2, stream=True
            )
        )
        client.embeddings.create(model="text-embedding-3-small", input="red dust")
        return cache.stats()


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_a_redis_url_works_wherever_a_directory_does(fake, redis_url, tmp_path, monkeypatch):
    record_some(redis_url, fake)
    calls = fake.request_count
    monkeypatch.setenv("SEEDCACHE_DIR", redis_url)
    with seedcache.SeedCache(mode="replay") as cache:  # the location from the environment
        assert cache.location.startswith("redis://127.0.0.1:")
        assert cache.store.kind == "redis"
    assert replay_all(redis_url, fake).hits == 3
    assert fake.request_count == calls

    listed = json.loads(run("--cache-dir", redis_url, "ls", "--json").stdout)
    assert sorted(row["endpoint"] for row in listed) == [
        "POST /v1/chat/completions",
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
    ]
    stats = json.loads(run("--cache-dir", redis_url, "stats", "--json").stdout)
    assert (stats["entries"], stats["takes"]) == (3, 3)
    assert run("--cache-dir", redis_url, "show", listed[0]["key"][:8]).exit_code == 0
    assert run("--cache-dir", redis_url, "verify").exit_code == 0
    assert "gpt-4o-mini" in run("--cache-dir", redis_url, "fingerprints").stdout

    # Push to a directory and a cassette, pull into another namespace: nothing lost.
    assert run("--cache-dir", redis_url, "export", str(tmp_path / "dir")).exit_code == 0
    assert run("--cache-dir", redis_url, "export", str(tmp_path / "c.json")).exit_code == 0
    other = redis_url.rsplit("=", 1)[0] + "=" + namespace_for("pulled")
    assert run("--cache-dir", other, "import", str(tmp_path / "c.json")).exit_code == 0
    assert replay_all(str(tmp_path / "dir"), fake).hits == 3
    assert replay_all(other, fake).hits == 3
    assert fake.request_count == calls


def test_namespaces_keep_projects_apart(fake, redis_url):
    record_some(redis_url, fake)
    other = redis_url.rsplit("=", 1)[0] + "=" + namespace_for("other")
    with seedcache.SeedCache(other, mode="replay") as cache, pytest.raises(seedcache.CacheMiss):
        cache.wrap(client_for(fake)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, seed=1
        )
    with pytest.raises(seedcache.ConfigurationError, match="namespace"):
        RedisStore(redis_url.rsplit("=", 1)[0] + "=a*b")


def test_the_proxy_serves_from_redis(fake, redis_url):
    record_some(redis_url, fake)
    calls = fake.request_count
    with seedcache.SeedCache(redis_url, mode="replay") as cache, cache.proxy(fake.base_url) as url:
        proxied = openai.OpenAI(api_key="k", base_url=url, max_retries=0)
        proxied.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
        proxied.close()
    assert fake.request_count == calls


@pytest.fixture
def guarded(tmp_path) -> RedisServer:
    server = RedisServer(tmp_path / "guarded", "--requirepass", PASSWORD)
    yield server
    server.stop()


def test_the_password_appears_nowhere(fake, guarded, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="seedcache")
    location = f"{guarded.url}?namespace=team"
    record_some(location, fake)
    seen: list[str] = []
    with seedcache.SeedCache(location, mode="replay") as cache:
        seen += [cache.location, repr(cache)]
    for command in (["ls"], ["stats"], ["verify"], ["export", str(tmp_path / "out.json")]):
        result = CliRunner().invoke(cli, ["--cache-dir", location, *command])
        assert result.exit_code == 0, result.output
        seen += [result.output]
    empty = CliRunner().invoke(cli, ["--cache-dir", f"{guarded.url}?namespace=empty", "ls"])
    assert "nothing recorded in redis://127.0.0.1:" in empty.output
    seen.append(empty.output)
    wrong = location.replace(PASSWORD, "not-the-" + PASSWORD[::-1])
    with pytest.raises(StoreError) as refused:
        RedisStore(wrong)
    seen.append(str(refused.value))
    result = CliRunner().invoke(cli, ["--cache-dir", wrong, "ls"])
    assert result.exit_code == 1
    seen += [result.output, caplog.text]
    seen += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert "127.0.0.1" in str(refused.value)
    for text in seen:
        assert PASSWORD not in text
        assert PASSWORD[::-1] not in text


def test_an_unreachable_server_is_a_named_error_never_a_live_call(fake, redis_server):
    port = free_port()
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}") as refused:
        seedcache.SeedCache(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", mode="replay")
    assert PASSWORD not in str(refused.value)
    # A server that goes away mid-run: replay fails loudly, nothing goes live.
    server = RedisServer(redis_server.directory.parent / "short-lived")
    cache = seedcache.SeedCache(server.url, mode="replay")
    client = cache.wrap(client_for(fake))
    server.kill()
    with pytest.raises(StoreError, match=f"127.0.0.1:{server.port}"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=1)
    assert fake.request_count == 0
    cache.close()


def test_a_server_that_may_evict_is_warned_about(tmp_path, caplog):
    server = RedisServer(
        tmp_path / "lru", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"
    )
    try:
        with caplog.at_level(logging.WARNING, logger="seedcache"):
            RedisStore(server.url).close()
        assert "allkeys-lru" in caplog.text
        assert "noeviction" in caplog.text
    finally:
        server.stop()


def test_a_value_over_the_server_limit_is_a_clear_error(tmp_path):
    server = RedisServer(tmp_path / "small", "--proto-max-bulk-len", "1mb")
    try:
        store = RedisStore(server.url)
        noise = os.urandom(2 * 1024 * 1024)  # does not compress below the limit
        big = seedcache.Take(200, (("content-type", "text/plain"),), noise)
        entry = seedcache.Entry("ab12", {"method": "POST", "url": "u"}, (big,))
        with pytest.raises(StoreError, match="proto-max-bulk-len"):
            store.update("ab12", lambda _: entry)
        assert store.get("ab12") is None
        store.close()
    finally:
        server.stop()


_RECORDER = textwrap.dedent(
    """
    import sys, openai, seedcache
    location, base_url = sys.argv[1], sys.argv[2]
    with seedcache.SeedCache(location, mode="auto") as cache:
        client = cache.wrap(openai.OpenAI(api_key="k", base_url=base_url, max_retries=0))
        for n in range(10_000):
            kwargs = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": f"p{n}"}])
            if n % 3 == 0:
                list(client.chat.completions.create(**kwargs, seed=n, stream=True))
            else:
                client.chat.completions.create(**kwargs, seed=n)
            print(n, flush=True)
    """
)


def test_a_killed_server_keeps_every_completed_take_and_no_half_one(fake, tmp_path):
    server = RedisServer(tmp_path / "aof", "--appendonly", "yes", "--appendfsync", "always")
    recorder = subprocess.Popen(
        [sys.executable, "-c", _RECORDER, server.url, fake.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert recorder.stdout is not None
    completed = []
    for line in recorder.stdout:
        completed.append(int(line))
        if len(completed) == 40:
            server.kill()  # SIGKILL, mid-recording
            break
    _, errors = recorder.communicate(timeout=60)
    assert recorder.returncode != 0
    assert "StoreError" in errors
    assert "127.0.0.1" in errors

    server.start()  # the same directory: the append-only file is read back
    try:
        store = open_store(server.url)
        check = store.check()
        assert check.broken == []
        assert check.checked >= 40
        with seedcache.SeedCache(server.url, mode="replay") as cache:
            client = cache.wrap(client_for(fake))
            calls = fake.request_count
            for n in completed:
                messages = [{"role": "user", "content": f"p{n}"}]
                if n % 3 == 0:
                    list(
                        client.chat.completions.create(
                            model="gpt-4o-mini", messages=messages, seed=n, stream=True
                        )
                    )
                else:
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages, seed=n)
            assert fake.request_count == calls
        store.close()
    finally:
        server.stop()


# -- cluster -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> list[RedisServer]:
    """Three masters, no replicas, made a cluster by redis-cli as an operator would."""
    root = tmp_path_factory.mktemp("cluster")
    options = [
        *("--cluster-enabled", "yes"),
        *("--cluster-config-file", "nodes.conf"),
        *("--cluster-node-timeout", "2000"),
    ]
    nodes = [RedisServer(root / f"node{n}", *options) for n in range(3)]
    addresses = [f"127.0.0.1:{node.port}" for node in nodes]
    create = [binary("redis-cli"), "--cluster", "create", *addresses]
    create += ["--cluster-replicas", "0", "--cluster-yes"]
    subprocess.run(create, check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [
            subprocess.run(
                [binary("redis-cli"), "-p", str(node.port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            for node in nodes
        ]
        if all("cluster_state:ok" in state for state in states):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the Redis cluster did not come up")
    yield nodes
    for node in nodes:
        node.stop()


def test_a_cluster_records_and_replays_through_any_node(fake, cluster):
    namespace = namespace_for("cluster")
    first, second, third = (f"{node.url}?namespace={namespace}" for node in cluster)
    record_some(first, fake)
    calls = fake.request_count
    assert replay_all(second, fake).hits == 3
    assert replay_all(third, fake).hits == 3
    assert fake.request_count == calls
    store = open_store(third)
    assert len(store.keys()) == 3  # keys spread over the nodes, listed from any one
    assert store.get_meta("fingerprints") is not None  # the registry
    store.close()


_CLUSTER_WORKER = textwrap.dedent(
    """
    import random, sys, openai, seedcache
    location, base_url, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
    prompts = random.Random(number).sample(range(100), 75)
    with seedcache.SeedCache(location, mode="auto") as cache:
        client = cache.wrap(openai.OpenAI(api_key="k", base_url=base_url, max_retries=0))
        for prompt in prompts:
            kwargs = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{prompt}"}])
            if prompt % 4 == 0:
                list(client.chat.completions.create(**kwargs, seed=1, stream=True))
            else:
                client.chat.completions.create(**kwargs, seed=1)
    """
)


@pytest.mark.stress
def test_processes_on_different_cluster_nodes_fetch_each_prompt_once(
    fake, cluster, fork_server, tmp_path
):
    namespace = namespace_for("cluster-workers")
    workers = [
        start_python(
            fork_server,
            _CLUSTER_WORKER,
            f"{cluster[n % 3].url}?namespace={namespace}",
            fake.base_url,
            str(n),
            where=tmp_path,
        )
        for n in range(8)
    ]
    outputs = [finish(worker) for worker in workers]
    assert [err for err, code in outputs if code != 0] == []
    import random

    wanted = set()
    for n in range(8):
        wanted.update(random.Random(n).sample(range(100), 75))
    assert fake.request_count == len(wanted)
    store = open_store(f"{cluster[0].url}?namespace={namespace}")
    entries = list(store.entries())
    store.close()
    assert len(entries) == len(wanted)
    assert all(len(e.takes) == 1 for e in entries)


def test_a_directory_never_imports_the_redis_client(tmp_path):
    script = (
        "import sys, seedcache; seedcache.SeedCache(sys.argv[1]).close(); "
        "assert 'redis' not in sys.modules, 'redis imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "plain")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert Path(tmp_path / "plain" / "cache.db").is_file()
