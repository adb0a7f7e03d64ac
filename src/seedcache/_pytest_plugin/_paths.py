"""Where a test's cassette lives: one file per test, stable, readable, never shared by chance.

``<cassette dir>/<test file relative to the rootdir, without .py>/<test name>.json``,
where the test name is its class path and function with the parametrize id, e.g.
``cassettes/tests/unit/test_api/TestClient.test_call[gpt-4o].json``. A name that must be
escaped (``/``, ``:``, ``?`` … in an id) or shortened gets a hash of the raw name, so two
tests can never share a file by accident.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import xxhash

__all__ = ["default_cassette", "legacy_cassette", "safe_name", "unhashed_cassette"]

# Characters no file name may hold on some system, plus "~", which only the hash suffix
# uses (a name without "~" was never escaped, so it cannot equal an escaped one), and "^",
# which only marks capitals.
_UNSAFE = re.compile(r'[<>:"/\\|?*~^\x00-\x1f\x7f]')
# File systems allow 255 bytes per name; leave room for the hash and ".json".
_MAX_NAME_BYTES = 200
_HASH_DIGITS = 10


def safe_name(raw: str) -> str:
    """``raw`` as a file name: unchanged when safe, else escaped with a hash of ``raw``."""
    safe = _UNSAFE.sub("_", raw)
    encoded = safe.encode()
    if safe == raw and len(encoded) <= _MAX_NAME_BYTES and raw not in ("", ".", ".."):
        return raw
    shortened = encoded[:_MAX_NAME_BYTES].decode("utf-8", "ignore")
    digest = xxhash.xxh3_64_hexdigest(raw.encode("utf-8", "surrogatepass"))[:_HASH_DIGITS]
    return f"{shortened}~{digest}"


def default_cassette(item: pytest.Item, cassette_dir: Path, rootpath: Path) -> Path:
    """The cassette of a test that names none.

    A capital in a parametrize id is marked with ``^`` (``test_x[^Mars]``): ``[A]`` and
    ``[a]`` would be one file on case-insensitive file systems (macOS, Windows).
    """
    file_name = safe_name(_test_name(item))
    head, bracket, parameters = file_name.partition("[")
    if bracket and "~" not in file_name:  # an escaped name's hash already tells case apart
        marked = "".join(f"^{c}" if c.isupper() else c for c in parameters)
        file_name = head + bracket + marked
    return _folder(cassette_dir, item.path, rootpath) / f"{file_name}.json"


def unhashed_cassette(item: pytest.Item, cassette_dir: Path, rootpath: Path) -> Path:
    """Where seedcache 0.3 kept this test's cassette (ids with capitals were not hashed)."""
    return _folder(cassette_dir, item.path, rootpath) / f"{safe_name(_test_name(item))}.json"


def legacy_cassette(item: pytest.Item, cassette_dir: Path) -> Path:
    """Where seedcache 0.1 kept this test's cassette: ``<module name>/<test>.json``."""
    name = re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", ".".join(item.nodeid.split("::")[1:]))
    return cassette_dir / Path(str(item.path)).stem / f"{name or item.name}.json"


@functools.lru_cache(maxsize=4096)
def _folder(cassette_dir: Path, test_file: Path, rootpath: Path) -> Path:
    """The folder of a test file's cassettes: worked out once per module, not per test."""
    return cassette_dir / _file_part(test_file, rootpath)


def _file_part(test_file: Path, rootpath: Path) -> Path:
    path = Path(str(test_file))
    try:
        relative = path.relative_to(rootpath)
    except ValueError:
        # A test file outside the rootdir: its name, told apart by where it is.
        return Path("_outside") / safe_name(f"{path.stem}~{path.parent}")
    parts = [*relative.parent.parts, relative.stem]
    return Path(*(safe_name(part) for part in parts))


def _test_name(item: pytest.Item) -> str:
    """Classes and function, dotted, with the parametrize id: ``TestA.test_b[id]``."""
    chain = item.listchain()
    module = item.getparent(pytest.Module)
    if module is None or module not in chain:
        return item.name
    return ".".join(node.name for node in chain[chain.index(module) + 1 :])
