"""The record/replay proxy: unmodified clients (the SDK via OPENAI_BASE_URL, curl) over loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import Counter

import openai
import pytest

from helpers import MESSAGES, SENTINEL_KEY, make_client, stored_bytes
from seedcache import ConfigurationError, SeedCache

SEEDED = {"model": "gpt-4o-mini", "messages": MESSAGES, "seed": 11}


_OPENED: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Clients are closed after each test: an unclosed socket is a warning, and an error."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def env_client(monkeypatch, base_url, api_key=SENTINEL_KEY):
    """A client configured the way application code does it: from the environment."""
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    _OPENED.append(openai.OpenAI(max_retries=0))
    return _OPENED[-1]


def test_sdk_records_through_the_proxy_and_replays_offline(fake, tmp_path, monkeypatch):
    with SeedCache(tmp_path / "c", mode="auto") as cache, cache.proxy(fake.base_url) as url:
        client = env_client(monkeypatch, url)
        live = client.chat.completions.with_raw_response.create(**SEEDED)
        live_stream = client.chat.completions.with_raw_response.create(**SEEDED, stream=True)
        live_stream_bytes = b"".join(live_stream.http_response.iter_bytes())
        assert live.headers["x-seedcache"].startswith("recorded")
    assert fake.request_count == 2
    fake.stop()

    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        client = env_client(monkeypatch, url, api_key="not-a-real-key")
        replayed = client.chat.completions.with_raw_response.create(**SEEDED)
        stream = client.chat.completions.with_raw_response.create(**SEEDED, stream=True)
        assert replayed.headers["x-seedcache"].startswith("hit")
        assert replayed.content == live.content
        assert b"".join(stream.http_response.iter_bytes()) == live_stream_bytes
        chunks = list(client.chat.completions.create(**SEEDED, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            live.parse().choices[0].message.content
        )
    assert SENTINEL_KEY.encode() not in stored_bytes(tmp_path / "c")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_records_and_replays(fake, tmp_path):
    def curl(url, key="sk-curl-key"):
        body = json.dumps({**SEEDED, "seed": 3})
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail-with-body",
                f"{url}/chat/completions",
                "-H",
                f"Authorization: Bearer {key}",
                "-H",
                "Content-Type: application/json",
                "--compressed",
                "-d",
                body,
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
        return done.stdout

    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        recorded = curl(url)
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        assert curl(url, key="") == recorded
    assert json.loads(recorded)["choices"][0]["message"]["content"]
    assert b"sk-curl-key" not in stored_bytes(tmp_path / "c")


def test_takes_move_between_the_proxy_and_wrap(fake, tmp_path, monkeypatch):
    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        through_proxy = env_client(monkeypatch, url).chat.completions.create(**SEEDED)
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        wrapped = cache.wrap(make_client(fake))
        assert wrapped.chat.completions.create(**SEEDED) == through_proxy
    with SeedCache(tmp_path / "c", mode="auto") as cache:
        direct = cache.wrap(make_client(fake)).chat.completions.create(**{**SEEDED, "seed": 99})
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        client = env_client(monkeypatch, url)
        assert client.chat.completions.create(**{**SEEDED, "seed": 99}) == direct


def test_replay_miss_is_a_clear_error_and_never_goes_upstream(fake, tmp_path, monkeypatch):
    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        client = env_client(monkeypatch, url)
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(**SEEDED)
    assert "no recorded response for POST /v1/chat/completions" in str(caught.value)
    assert caught.value.response.headers["x-seedcache"] == "miss"
    assert fake.request_count == 0


@pytest.mark.parametrize("status", [401, 403, 500])
def test_upstream_errors_pass_through_and_are_not_stored(fake, tmp_path, monkeypatch, status):
    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        fake.fail_next(status)
        client = env_client(monkeypatch, url)
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(**SEEDED)
        assert raised.value.status_code == status
        assert client.chat.completions.create(**SEEDED).choices
        assert cache.stats().passthrough == 1


def test_unreachable_upstream_is_a_502(tmp_path, monkeypatch):
    with (
        SeedCache(tmp_path / "c") as cache,
        cache.proxy("http://127.0.0.1:9/v1") as url,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        env_client(monkeypatch, url).chat.completions.create(**SEEDED)
    assert caught.value.status_code == 502
    assert "could not reach the upstream" in str(caught.value)


def test_sixteen_clients_fifty_requests_each(fake, tmp_path):
    """Mixed hits and misses from 16 threads: no error, each distinct request fetched once."""
    prompts = [f"topic {i}" for i in range(40)]
    errors: list[BaseException] = []
    answers: dict[str, set[str]] = {p: set() for p in prompts}
    lock = threading.Lock()

    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url) as url:
        barrier = threading.Barrier(16)

        def worker(number: int) -> None:
            client = openai.OpenAI(api_key="k", base_url=url, max_retries=0)
            _OPENED.append(client)
            barrier.wait()
            try:
                for i in range(50):
                    prompt = prompts[(number * 7 + i) % len(prompts)]
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
                    )
                    with lock:
                        answers[prompt].add(reply.choices[0].message.content)
            except BaseException as exc:  # collected, asserted empty below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = cache.stats()
    assert errors == []
    # Unseeded prompts answer differently on every live call: one answer each proves
    # every request after the first was served from the one recorded take.
    assert all(len(seen) == 1 for seen in answers.values())
    assert Counter(r.body for r in fake.requests).most_common(1)[0][1] == 1
    assert fake.request_count == len(prompts)
    assert stats.recorded == len(prompts)
    assert stats.hits + stats.joined == 16 * 50 - len(prompts)


def test_takes_mode_maps_repeats_to_takes(fake, tmp_path, monkeypatch):
    unseeded = {"model": "gpt-4o-mini", "messages": MESSAGES}
    with SeedCache(tmp_path / "c") as cache, cache.proxy(fake.base_url, repeats="takes") as url:
        client = env_client(monkeypatch, url)
        first, second = (client.chat.completions.create(**unseeded) for _ in range(2))
    assert first.choices[0].message.content != second.choices[0].message.content
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        with cache.proxy(fake.base_url, repeats="takes") as url:
            client = env_client(monkeypatch, url)
            assert [client.chat.completions.create(**unseeded) for _ in range(2)] == [first, second]
        with pytest.raises(ConfigurationError, match="repeats"):
            cache.proxy_server(fake.base_url, repeats="sometimes")


def test_bad_upstream_and_busy_port_are_configuration_errors(tmp_path, fake):
    with SeedCache(tmp_path / "c") as cache:
        with pytest.raises(ConfigurationError, match="http"):
            cache.proxy_server("api.openai.com")
        port = int(fake.base_url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(ConfigurationError, match="cannot listen"):
            cache.proxy_server(fake.base_url, port=port)


def test_serve_command_prints_the_url_and_stops_gracefully(fake, tmp_path):
    """The real command in a subprocess: SIGINT stops it and the recording is kept."""
    import os
    import signal
    import sys

    command = [
        sys.executable,
        "-m",
        "seedcache",
        "--cache-dir",
        str(tmp_path / "c"),
        "serve",
        "--upstream",
        fake.base_url,
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        line = p.stdout.readline()
        assert line.startswith("export OPENAI_BASE_URL=http://127.0.0.1:")
        url = line.strip().split("=", 1)[1]
        with openai.OpenAI(api_key="k", base_url=url, max_retries=0) as client:
            reply = client.chat.completions.create(**SEEDED)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0, p.stderr.read()
        assert "stopped: 0 hits, 1 recorded" in p.stderr.read()
    fake.stop()
    with SeedCache(tmp_path / "c", mode="replay") as cache:
        assert cache.wrap(make_client(fake)).chat.completions.create(**SEEDED) == reply
    assert os.path.isdir(tmp_path / "c")


def test_serve_options_turn_host_matching_off_and_ignore_fields(fake, tmp_path):
    """Recorded through one upstream URL; `seedcache serve --no-match-host --ignore user`
    replays it for another upstream and another user."""
    import signal
    import sys

    from click.testing import CliRunner

    from seedcache._cli import cli

    cassette = tmp_path / "proxy.json"
    with (
        SeedCache.cassette(cassette, match_host=False, ignore=["user"]) as cache,
        cache.proxy(fake.base_url) as url,
        openai.OpenAI(api_key="k", base_url=url, max_retries=0) as client,
    ):
        recorded = client.chat.completions.create(**SEEDED, user="alice")
    fake.stop()
    command = [
        *(sys.executable, "-m", "seedcache", "--cassette", str(cassette), "serve"),
        *("--mode", "replay", "--upstream", "http://localhost:9/v1"),
        *("--no-match-host", "--ignore", "user"),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        url = p.stdout.readline().strip().split("=", 1)[1]
        with openai.OpenAI(api_key="k", base_url=url, max_retries=0) as client:
            replayed = client.chat.completions.create(**SEEDED, user="bob")
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0, p.stderr.read()
    assert replayed == recorded
    key = json.loads(cassette.read_text())["entries"][0]["key"]
    shown = CliRunner().invoke(cli, ["--cassette", str(cassette), "show", key]).output
    assert "ignored  user (as sent above, but not part of the key)" in shown


def test_a_replay_is_sent_whole_with_its_length(fake, tmp_path, monkeypatch):
    with SeedCache(tmp_path / "c", mode="auto") as cache, cache.proxy(fake.base_url) as url:
        client = env_client(monkeypatch, url)
        client.chat.completions.create(**SEEDED)
        list(client.chat.completions.create(**SEEDED, stream=True))
    with SeedCache(tmp_path / "c", mode="replay") as cache, cache.proxy(fake.base_url) as url:
        client = env_client(monkeypatch, url)
        for stream in (False, True):
            raw = client.chat.completions.with_raw_response.create(**SEEDED, stream=stream)
            body = b"".join(raw.http_response.iter_bytes())
            # One message with its length, not a chunked body the client reassembles.
            assert "transfer-encoding" not in raw.headers
            assert int(raw.headers["content-length"]) == len(body) > 0
            assert raw.headers["x-seedcache"].startswith("hit")
