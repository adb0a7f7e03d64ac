"""What every adapter does, written once: capture, replay, tee.

httpx and httpx2 have the same shapes (``Request``, ``Response``, byte streams) but
distinct classes, and each checks ``isinstance`` against its own stream bases. So the
behaviour lives in mixins here, and each library module only names its base classes.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NoReturn, Protocol

import anyio

from .._errors import CacheMiss
from .._request._core import Core
from .._request._outcome import OUTCOME_EXTENSION
from .._request._recording import Recording
from .._request._steps import Serve, resolve_async, resolve_sync
from .._request._wire import CapturedRequest
from .._takes._take import Take, media_type
from ._upstream import AsyncLazy, Lazy

__all__ = [
    "AsyncCacheTransportBase",
    "AsyncReplayBody",
    "AsyncTeeBody",
    "BuildResponse",
    "CacheTransportBase",
    "SyncReplayBody",
    "SyncTeeBody",
    "handle_async",
    "handle_sync",
]


class _Headers(Protocol):
    @property
    def encoding(self) -> str: ...

    @property
    def raw(self) -> list[tuple[bytes, bytes]]: ...


class _Request(Protocol):
    method: str
    headers: _Headers

    @property
    def url(self) -> Any: ...


class BuildResponse(Protocol):
    """Makes the library's Response: ``(status, headers, body stream, extensions)``."""

    def __call__(
        self, status: int, headers: list[tuple[str, str]], stream: Any, extensions: dict[str, Any]
    ) -> Any: ...


def capture(request: _Request, body: bytes) -> CapturedRequest:
    """The library request as plain data (its body already read)."""
    # What multi_items() gives, with the encoding read once rather than twice per header.
    encoding = request.headers.encoding
    return CapturedRequest(
        method=request.method,
        url=str(request.url),
        headers=tuple(
            (key.decode(encoding).lower(), value.decode(encoding))
            for key, value in request.headers.raw
        ),
        body=body,
    )


def replay_chunks(take: Take) -> list[bytes]:
    """A take's body as the chunks a replay yields: one per event for streams."""
    return body_chunks(take.body, is_stream=take.is_stream)


def body_chunks(body: bytes, *, is_stream: bool) -> list[bytes]:
    """``body`` as the chunks a replay yields: one per event for streams."""
    if not is_stream or not body:
        return [body] if body else []
    events = body.split(b"\n\n")
    chunks = [event + b"\n\n" for event in events[:-1]]
    if events[-1]:
        chunks.append(events[-1])
    return chunks


def handle_sync(
    core: Core,
    request: Any,
    send: Callable[[Any], Any],
    build: BuildResponse,
    tee: Callable[[Any, Recording], Any],
    replay: Callable[[list[bytes]], Any],
) -> Any:
    """Serve ``request`` through the core, calling ``send`` only when going live."""
    step = resolve_sync(core, capture(request, request.read()))
    if isinstance(step, Serve):
        return _replayed(step, build, replay)
    recording = step.recording
    try:
        upstream = send(request)
    except BaseException:
        recording.abandon()
        raise
    if not recording.is_check:
        return _respond(upstream, recording, build, tee)
    try:
        for sample in range(1, recording.samples + 1):
            if sample > 1:
                upstream = send(request)
            try:
                body = upstream.read()
            finally:
                upstream.close()
            if sample == recording.samples or not _ask_again(recording, upstream, body):
                break
    except BaseException:
        recording.abandon()
        raise
    headers = recording.accept(upstream.status_code, upstream.headers.multi_items())
    recording.feed(body)
    recording.finish(exhausted=True)
    return _checked(upstream, recording, headers, body, build, replay)


async def handle_async(
    core: Core,
    request: Any,
    send: Callable[[Any], Awaitable[Any]],
    build: BuildResponse,
    tee: Callable[[Any, Recording], Any],
    replay: Callable[[list[bytes]], Any],
) -> Any:
    """The async twin of :func:`handle_sync`; only the waiting and the send differ."""
    step = await resolve_async(core, capture(request, await request.aread()))
    if isinstance(step, Serve):
        return _replayed(step, build, replay)
    recording = step.recording
    try:
        upstream = await send(request)
    except BaseException:
        recording.abandon()
        raise
    if not recording.is_check:
        return _respond(upstream, recording, build, tee)
    try:
        for sample in range(1, recording.samples + 1):
            if sample > 1:
                upstream = await send(request)
            try:
                body = await upstream.aread()
            finally:
                await upstream.aclose()
            if sample == recording.samples or not _ask_again(recording, upstream, body):
                break
    except BaseException:
        recording.abandon()
        raise
    headers = recording.accept(upstream.status_code, upstream.headers.multi_items())
    recording.feed(body)
    await finish_in_thread(recording, exhausted=True)
    return _checked(upstream, recording, headers, body, build, replay)


async def finish_in_thread(recording: Recording, *, exhausted: bool) -> None:
    """``recording.finish`` in a worker thread (storing is disk or network I/O).

    A cancellation can land before the thread starts (while a worker is acquired); the
    recording is then abandoned here, or its flight, lease and check would stay claimed
    and every identical request, and every check of its model, would wait on them.
    """
    try:
        await anyio.to_thread.run_sync(lambda: recording.finish(exhausted=exhausted))
    except BaseException:
        recording.abandon()  # nothing when the thread finished it first
        raise


def _ask_again(recording: Recording, upstream: Any, body: bytes) -> bool:
    """Whether a check's answer came from another backend: a model serving two side by
    side may still show the recorded one if asked again."""
    return recording.shows_other_backend(upstream.status_code, upstream.headers.multi_items(), body)


def _checked(
    upstream: Any,
    recording: Recording,
    headers: list[tuple[str, str]],
    body: bytes,
    build: BuildResponse,
    replay: Callable[[list[bytes]], Any],
) -> Any:
    """The answer to a check, read whole: what the core chose to serve, else the live one."""
    if recording.served is not None:
        return _replayed(recording.served, build, replay)
    is_stream = media_type(headers) == "text/event-stream"
    extensions = {**upstream.extensions, OUTCOME_EXTENSION: recording.outcome}
    return build(
        upstream.status_code, headers, replay(body_chunks(body, is_stream=is_stream)), extensions
    )


def _replayed(step: Serve, build: BuildResponse, replay: Callable[[list[bytes]], Any]) -> Any:
    return build(
        step.take.status,
        step.headers(),
        replay(replay_chunks(step.take)),
        {OUTCOME_EXTENSION: step.outcome},
    )


def _respond(
    upstream: Any, recording: Recording, build: BuildResponse, tee: Callable[[Any, Recording], Any]
) -> Any:
    headers = recording.accept(upstream.status_code, upstream.headers.multi_items())
    extensions = {**upstream.extensions, OUTCOME_EXTENSION: recording.outcome}
    return build(upstream.status_code, headers, tee(upstream, recording), extensions)


class SyncReplayBody:
    """A recorded body as a sync byte stream; iterable any number of times."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        """Nothing to release."""


class AsyncReplayBody:
    """A recorded body as an async byte stream; iterable any number of times."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def whole(self) -> bytes:
        """Every chunk at once: a replay is all in memory from the start."""
        return b"".join(self._chunks)

    async def aclose(self) -> None:
        """Nothing to release."""


class SyncTeeBody:
    """Passes the upstream's decoded chunks on as they arrive, keeping a copy.

    The upstream is read through one iterator made once: a caller that iterates this
    stream a second time (to drain it) continues where the first stopped, so no byte is
    recorded twice.
    """

    def __init__(self, upstream: Any, recording: Recording) -> None:
        self._upstream = upstream
        self._recording = recording
        self._chunks: Iterator[bytes] = upstream.iter_bytes()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                self._recording.feed(chunk)
                yield chunk
        except Exception:
            self._recording.abandon()
            raise
        self._recording.finish(exhausted=True)

    def close(self) -> None:
        """The caller is done reading; store the take if the response was complete."""
        try:
            self._recording.finish(exhausted=False)
        finally:
            self._upstream.close()


class AsyncTeeBody:
    """The async twin of :class:`SyncTeeBody`; storing runs in a worker thread."""

    def __init__(self, upstream: Any, recording: Recording) -> None:
        self._upstream = upstream
        self._recording = recording
        self._chunks: AsyncIterator[bytes] = upstream.aiter_bytes()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                self._recording.feed(chunk)
                yield chunk
        except GeneratorExit:
            raise  # the caller stopped reading: aclose() judges whether the body was whole
        except BaseException:  # a cancelled read too: what was cut off is never stored
            self._recording.abandon()
            raise
        await finish_in_thread(self._recording, exhausted=True)

    async def aclose(self) -> None:
        """The caller is done reading; store the take if the response was complete."""
        try:
            await finish_in_thread(self._recording, exhausted=False)
        finally:
            await self._upstream.aclose()


class _TransportBase:
    """What the sync and async cache transports share: a library module binds ``build``
    (its Response), ``tee`` and ``replay`` (its stream types) and ``default_next`` (its
    HTTP transport, built on the first request that must go live). ``close_next=False``
    leaves the next transport open on close: it is shared, or the user's.
    """

    build: BuildResponse
    tee: Callable[[Any, Recording], Any]
    replay: Callable[[list[bytes]], Any]
    default_next: Callable[[], Any]
    lazy: type[Lazy] = Lazy

    def __init__(self, core: Core, next_transport: Any = None, *, close_next: bool = True) -> None:
        self._core: Core | None = core
        self._next: Any = next_transport or self.lazy(type(self).default_next)
        self._close_next = close_next

    @property
    def core(self) -> Core:
        """The core this transport serves requests through, until it is closed."""
        core = self._core
        if core is None:
            raise RuntimeError(
                "this seedcache transport is closed (the HTTP client it belonged to was "
                "closed); make another with cache.transport() or cache.wrap()"
            )
        return core

    def _let_go(self) -> None:
        # An SDK client is a web of references that only a garbage collection frees: a
        # closed transport must not keep the cache's store, entries and counters in it.
        self._core = None

    @staticmethod
    def _raise_miss(miss: CacheMiss, request: Any) -> NoReturn:
        """Raise ``miss`` so that the SDK that sent ``request`` lets it through as it is.

        The Anthropic SDK passes its own errors on and turns any other exception into
        "Connection error.", which would hide why nothing was replayed: a miss of one of
        its requests is also an ``anthropic.AnthropicError``. Only of its requests, so
        that an ``except anthropic.AnthropicError`` never swallows another provider's
        miss. ``except CacheMiss`` catches it either way.
        """
        if "anthropic" not in sys.modules or not _sent_by_anthropic(request):
            raise miss
        raise _anthropic_miss()(
            str(miss),
            key=miss.key,
            endpoint=miss.endpoint,
            model=miss.model,
            location=miss.location,
            differences=miss.differences,
        ) from None


def _sent_by_anthropic(request: Any) -> bool:
    """Whether an Anthropic SDK client (direct, Vertex, Bedrock) sent ``request``: it names
    itself in the user agent (``Anthropic/Python``, ``AnthropicVertex/Python`` …) and
    sends ``anthropic-version`` to the direct API."""
    headers = request.headers
    return "anthropic-version" in headers or headers.get("user-agent", "").startswith("Anthropic")


@functools.cache
def _anthropic_miss() -> type[CacheMiss]:
    import anthropic

    return type("CacheMiss", (CacheMiss, anthropic.AnthropicError), {"__module__": "seedcache"})


class CacheTransportBase(_TransportBase):
    """A sync transport that replays recorded responses and records the others."""

    def handle_request(self, request: Any) -> Any:
        """Replay or record ``request``."""
        cls = type(self)
        try:
            return handle_sync(
                self.core, request, self._next.handle_request, cls.build, cls.tee, cls.replay
            )
        except CacheMiss as miss:
            self._raise_miss(miss, request)

    def close(self) -> None:
        """Close the next transport, if it is this transport's to close; serve no more."""
        self._let_go()
        if self._close_next:
            self._next.close()


class AsyncCacheTransportBase(_TransportBase):
    """The async twin of :class:`CacheTransportBase`."""

    lazy = AsyncLazy

    async def handle_async_request(self, request: Any) -> Any:
        """Replay or record ``request``."""
        cls = type(self)
        try:
            return await handle_async(
                self.core, request, self._next.handle_async_request, cls.build, cls.tee, cls.replay
            )
        except CacheMiss as miss:
            self._raise_miss(miss, request)

    async def aclose(self) -> None:
        """Close the next transport, if it is this transport's to close; serve no more."""
        self._let_go()
        if self._close_next:
            await self._next.aclose()
