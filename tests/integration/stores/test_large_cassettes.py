"""Large cassettes are opened by an index: entries decoded when first read, never lost."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from helpers import make_client
from seedcache import CassetteStore, CorruptEntryError, Entry, SeedCache, Take
from seedcache._cli import cli
from seedcache._stores._cassette import read_cassette
from seedcache._stores._cassette_index import LAZY_FROM_BYTES

ANSWER = json.dumps({"object": "embedding", "data": [0.125] * 300}, indent=2).encode() + b"\n"


def filler(number: int) -> Entry:
    take = Take(200, (("content-type", "application/json"),), ANSWER, None, "m", 1, 2)
    request = {"method": "POST", "url": "https://api.example/v1/embeddings", "body": {"n": number}}
    return Entry(f"{number:032x}", request, (take,))


def large_cassette(path, count=500):
    store = CassetteStore(path)
    with store.batch():
        for number in range(count):
            store.update(f"{number:032x}", lambda _, n=number: filler(n))
        store.update_meta("note", lambda _: b'{"kept": true}')
    assert path.stat().st_size >= LAZY_FROM_BYTES
    return path


def test_a_damaged_entry_of_a_large_cassette_fails_its_own_read_not_the_others(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    text = path.read_text()
    damaged = f"{7:032x}"
    # Entry 7's status made a string, in place: the file keeps seedcache's layout.
    start = text.index(f'"key": "{damaged}"')
    at = text.index('"status": 200', start)
    path.write_text(text[:at] + '"status": "ok"' + text[at + len('"status": 200') :])

    store = CassetteStore(path)
    assert store.get(f"{8:032x}") == filler(8)
    assert len(store.keys()) == 500
    damage = r"big\.json: entries\[7\]\.takes\[0\]\.status.*verify"
    with pytest.raises(CorruptEntryError, match=damage):
        store.get(damaged)
    # Nothing is written over it: a change refuses rather than drop the damaged entry.
    with pytest.raises(CorruptEntryError):
        store.update(f"{9:032x}", lambda entry: entry)
    assert '"status": "ok"' in path.read_text()
    checked = CliRunner().invoke(cli, ["--cassette", str(path), "verify"])
    assert checked.exit_code != 0
    assert "entries[7]" in checked.output


def test_a_change_to_an_indexed_cassette_keeps_every_entry_and_the_meta(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    before = read_cassette(path)
    added = dataclasses.replace(filler(10_000), key="ab" * 16)
    CassetteStore(path).update("ab" * 16, lambda _: added)
    after = read_cassette(path)
    assert after.entries[:-1] == before.entries
    assert after.entries[-1] == added
    assert after.meta == {"note": {"kept": True}}


def test_a_large_cassette_in_another_layout_is_read_whole(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    entries = read_cassette(path).entries
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))  # formatted by hand
    store = CassetteStore(path)
    assert list(store.entries()) == entries
    path.write_text(path.read_text().rstrip().removesuffix("}"))  # not JSON any more
    with pytest.raises(CorruptEntryError, match="not valid JSON"):
        CassetteStore(path)


def test_a_repeated_key_keeps_its_last_entry_in_its_first_place(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    document = json.loads(path.read_text())
    repeated = json.loads(json.dumps(document["entries"][3]))
    repeated["request"]["body"] = {"n": "again"}
    document["entries"].append(repeated)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    whole = CassetteStore(path, tolerate_broken=True)  # parses whole
    indexed = CassetteStore(path)
    assert indexed.keys() == whole.keys()
    assert indexed.get(f"{3:032x}") == whole.get(f"{3:032x}")
    assert indexed.get(f"{3:032x}").request["body"] == {"n": "again"}


def _three_answers(fake, path, mode):
    """The raw bytes of three chat answers through a cache over the cassette at ``path``."""
    with SeedCache.cassette(path, mode=mode) as cache:
        client = cache.wrap(make_client(fake))
        return [
            client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{n}"}], seed=1
            ).content
            for n in range(3)
        ]


def test_replays_from_an_indexed_cassette_are_the_recorded_bytes(fake, tmp_path):
    path = tmp_path / "big.json"
    live = _three_answers(fake, path, "auto")
    store = CassetteStore(path)
    with store.batch():
        for number in range(500):
            store.update(f"{number:032x}", lambda _, n=number: filler(n))
    assert path.stat().st_size >= LAZY_FROM_BYTES
    assert _three_answers(fake, path, "replay") == live
    assert fake.request_count == 3


def _parsed_keys(path):
    return [entry.key for entry in read_cassette(path).entries]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda text: text.replace("\n    },\n", "\n    }, \n", 1), id="space"),
        pytest.param(
            lambda text: text.replace(f'"{5:032x}"', '"' + "5" * 80 + '"', 1), id="long-key"
        ),
        pytest.param(lambda text: text.replace("\r", "").replace("\n", "\r\n"), id="crlf"),
    ],
)
def test_a_large_cassette_edited_out_of_seedcache_s_layout_reads_as_a_parse_does(tmp_path, edit):
    path = large_cassette(tmp_path / "big.json")
    path.write_bytes(edit(path.read_text()).encode())
    store = CassetteStore(path)
    assert store.keys() == _parsed_keys(path)
    assert list(store.entries()) == read_cassette(path).entries


def test_a_large_cassette_with_merge_conflict_lines_is_refused_when_opened(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    text = path.read_text()
    at = text.index(f'    {{\n      "key": "{9:032x}"')
    path.write_text(text[:at] + "<<<<<<< HEAD\n" + text[at:])
    with pytest.raises(CorruptEntryError, match="not valid JSON"):
        CassetteStore(path)


def test_a_large_cassette_of_a_newer_format_is_refused_when_opened(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    path.write_text(path.read_text().rstrip().removesuffix("}") + ',\n  "seedcache": 2\n}\n')
    with pytest.raises(CorruptEntryError, match="newer seedcache"):
        CassetteStore(path)


def test_verify_reports_a_layout_that_misleads_the_index_and_fix_writes_it_again(tmp_path):
    path = large_cassette(tmp_path / "big.json")
    document = json.loads(path.read_text())
    document["entries"][5]["request"]["body"] = {"x": "SPOT"}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    # Valid JSON whose whitespace lays out an entry start inside entry 5.
    phantom = '[{\n    },\n    {\n      "key": "' + "b" * 32 + '",\n      "z": 1\n    }]'
    path.write_text(text.replace('"SPOT"', phantom))
    assert "b" * 32 not in _parsed_keys(path)
    checked = CliRunner().invoke(cli, ["--cassette", str(path), "verify"])
    assert checked.exit_code != 0
    assert "reads other entries than parsing it does" in checked.output
    fixed = CliRunner().invoke(cli, ["--cassette", str(path), "verify", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert CassetteStore(path).keys() == _parsed_keys(path)
    assert len(_parsed_keys(path)) == 500
