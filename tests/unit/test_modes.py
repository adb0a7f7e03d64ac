"""Choosing the mode: code, then SEEDCACHE_MODE, then auto."""

from __future__ import annotations

import pytest

from seedcache import ConfigurationError, Mode, SeedCache


def test_default_is_auto(monkeypatch, tmp_path):
    monkeypatch.delenv("SEEDCACHE_MODE", raising=False)
    with SeedCache(tmp_path) as cache:
        assert cache.mode is Mode.AUTO


def test_environment_sets_the_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("SEEDCACHE_MODE", "Replay")
    with SeedCache(tmp_path) as cache:
        assert cache.mode is Mode.REPLAY


def test_mode_in_code_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SEEDCACHE_MODE", "replay")
    with SeedCache(tmp_path, mode="record") as cache:
        assert cache.mode is Mode.RECORD


@pytest.mark.parametrize("source", ["code", "env"])
def test_unknown_mode_is_a_value_error_listing_the_valid_ones(monkeypatch, tmp_path, source):
    monkeypatch.setenv("SEEDCACHE_MODE", "replya" if source == "env" else "auto")
    with pytest.raises(ValueError, match="'replay', 'auto', 'record', 'refresh'"):
        SeedCache(tmp_path, mode="replya" if source == "code" else None)


def test_seedcache_dir_sets_the_default_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("SEEDCACHE_DIR", str(tmp_path / "from-env"))
    with SeedCache() as cache:
        assert cache.store.location == str(tmp_path / "from-env")


def test_cassette_path_that_is_a_directory_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="is a directory"):
        SeedCache.cassette(tmp_path)
