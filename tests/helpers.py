"""What tests share besides fixtures: sentinel secrets, SDK clients on the fake server,
builders of takes and entries, and the in-memory store ``docs/design.md`` shows (read
from that page, so the page cannot drift from what the contract tests run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

import seedcache
from seedcache import Entry, Store, Take
from seedcache.testing import FakeOpenAI

# A key shaped like a real one; tests scan every stored byte for it.
SENTINEL_KEY = "sk-proj-SENTINELsecretKEY0123456789abcdefABCDEF"
SENTINEL_ORG = "org-SENTINELorganization42"
SENTINEL_PROJECT = "proj_SENTINELproject42"

CacheFactory = Callable[..., seedcache.SeedCache]


def take(
    body: bytes = b'{"ok": true}',
    *,
    at: int = 1,
    fingerprint: str | None = None,
    model: str = "m",
) -> Take:
    """A take with ``body``: JSON when it looks like an object, text otherwise."""
    media = "application/json" if body.startswith(b"{") else "text/plain"
    return Take(200, (("content-type", media),), body, fingerprint, model, at, 2)


def entry(key: str = "ab12", *takes: Take) -> Entry:
    """An embeddings entry holding ``takes`` (one plain take by default)."""
    request = {"method": "POST", "url": "https://x/v1/embeddings", "body": {"model": "m"}}
    return Entry(key, request, takes or (take(),))


def _memory_store_class() -> Any:
    page = (Path(__file__).parents[1] / "docs" / "design.md").read_text()
    code = page.split("<!-- memory-store -->\n```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/design.md", "exec"), namespace)
    return namespace["MemoryStore"]


MemoryStore: Callable[[], seedcache.Store] = _memory_store_class()


@dataclass(frozen=True)
class StoreKind:
    """How tests name, place and open one kind of store."""

    shares_leases: bool
    """A lease taken by one store object excludes others over the same location (another
    process would open another object)."""
    location: Callable[[Path, pytest.FixtureRequest], str]
    open: Callable[[str], Store]


class Opener:
    """Opens store objects over one location (as other processes would); closes them all."""

    def __init__(self, kind: StoreKind, location: str) -> None:
        self.shares_leases = kind.shares_leases
        self._kind, self._location = kind, location
        self.opened: list[Store] = []

    def __call__(self) -> Store:
        self.opened.append(self._kind.open(self._location))
        return self.opened[-1]


OPEN_CLIENTS: list[openai.OpenAI] = []


def make_client(fake: FakeOpenAI, **options: object) -> openai.OpenAI:
    """An SDK client pointed at the fake server with sentinel credentials and no retries."""
    options.setdefault("max_retries", 0)
    client = openai.OpenAI(
        api_key=SENTINEL_KEY,
        organization=SENTINEL_ORG,
        project=SENTINEL_PROJECT,
        base_url=fake.base_url,
        **options,  # type: ignore[arg-type]
    )
    OPEN_CLIENTS.append(client)
    return client


def stored_bytes(root: Path) -> bytes:
    """Every byte of every file under ``root``."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that generates short stories."},
    {"role": "user", "content": "Generate a short story about a journey to Mars."},
]
