"""Which answer a request gets: OpenAI and Azure OpenAI routes, files, images, models.

The fake answers as the real services do, shape for shape: Azure deployment routes need
``api-version`` and take an ``api-key`` header (or an Azure AD bearer token) and answer
errors in Azure's shape; an unknown route is OpenAI's 404 naming its method.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import random
import secrets
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._bodies import Generated, generate

__all__ = [
    "FileStore",
    "Route",
    "answer",
    "authorized",
    "azure_error",
    "models",
    "openai_error",
    "parse_route",
    "tiny_png",
    "unknown_route",
]

MODELS = ("gpt-4o-mini", "gpt-3.5-turbo-1106", "gpt-3.5-turbo-0125", "gpt-4.1-nano", "gpt-5")


@dataclass(frozen=True, slots=True)
class Route:
    """A request as the OpenAI API would see it: method, ``/v1/...`` path, query, Azure or not."""

    method: str
    path: str
    query: dict[str, list[str]]
    azure: bool
    deployment: str | None = None


def parse_route(method: str, target: str) -> Route | None:
    """The route of ``target``; None for an Azure path without ``api-version``."""
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    path = parts.path
    if not path.startswith("/openai/"):
        return Route(method, path, query, azure=False)
    if not query.get("api-version"):
        return None
    rest = path.removeprefix("/openai/")
    if rest.startswith("deployments/"):
        deployment, _, endpoint = rest.removeprefix("deployments/").partition("/")
        return Route(method, f"/v1/{endpoint}", query, azure=True, deployment=deployment)
    return Route(method, f"/v1/{rest}", query, azure=True)


def azure_error(status: int, message: str, code: str | None = None) -> Generated:
    """An error as Azure OpenAI shapes it."""
    return Generated(status, {"error": {"code": code or str(status), "message": message}})


def openai_error(
    status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
) -> Generated:
    """An error as the OpenAI API shapes it."""
    document = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Generated(status, document, indent=4)


def authorized(route: Route, headers: dict[str, str]) -> bool:
    """OpenAI takes a bearer key; Azure an ``api-key`` header or an Azure AD bearer token."""
    bearer = headers.get("authorization", "").startswith("Bearer ")
    return bearer or (route.azure and bool(headers.get("api-key")))


class FileStore:
    """Uploaded files, kept in memory for the life of the server."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}

    def handle(self, route: Route, body: bytes, content_type: str) -> Generated:
        """Answer a request under ``/v1/files``."""
        parts = route.path.removeprefix("/v1/files").strip("/").split("/")
        file_id = parts[0] if parts and parts[0] else None
        if route.method == "POST" and file_id is None:
            return self._upload(body, content_type)
        if route.method == "GET" and file_id is None:
            data = [meta for meta, _ in self._files.values()]
            return Generated(document={"object": "list", "data": data, "has_more": False})
        if file_id is None or file_id not in self._files:
            message = f"No such File object: {file_id}"
            return openai_error(404, message, code=None)
        meta, content = self._files[file_id]
        if route.method == "GET" and parts[1:] == ["content"]:
            return Generated(raw=content, content_type="application/octet-stream")
        if route.method == "GET" and len(parts) == 1:
            return Generated(document=meta)
        if route.method == "DELETE" and len(parts) == 1:
            del self._files[file_id]
            return Generated(document={"id": file_id, "object": "file", "deleted": True})
        return unknown_route(route)

    def _upload(self, body: bytes, content_type: str) -> Generated:
        fields = _multipart(body, content_type)
        upload = fields.get("file")
        purpose = fields.get("purpose")
        if upload is None or purpose is None:
            return openai_error(400, "Missing required parameter: 'file' or 'purpose'.")
        filename, content = upload
        file_id = "file-" + secrets.token_hex(11)
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename or "upload",
            "purpose": purpose[1].decode(errors="replace"),
            "status": "processed",
            "status_details": None,
        }
        self._files[file_id] = (meta, content)
        return Generated(document=meta)


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """Form fields by name: (filename, bytes)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def images(request: dict[str, Any], base_url: str) -> Generated:
    """``images.generate``: small valid PNGs, as base64 or as URLs on this server."""
    count = int(request.get("n") or 1)
    as_url = request.get("response_format") == "url"
    rng = random.Random(request.get("prompt", ""))
    data = []
    for _ in range(count):
        png = tiny_png(rng)
        if as_url:
            name = base64.urlsafe_b64encode(png[-16:]).decode().rstrip("=")
            data.append({"url": f"{base_url}/images/{name}.png", "revised_prompt": None})
        else:
            data.append({"b64_json": base64.b64encode(png).decode(), "revised_prompt": None})
    return Generated(document={"created": int(time.time()), "data": data})


def tiny_png(rng: random.Random, size: int = 8) -> bytes:
    """An 8x8 RGB PNG of one colour: valid, small, different per prompt."""
    colour = bytes(rng.randrange(256) for _ in range(3))
    rows = b"".join(b"\x00" + colour * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def models(route: Route) -> Generated:
    """``GET /v1/models`` and ``GET /v1/models/{id}``."""

    def card(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1700000000, "owned_by": "system"}

    wanted = route.path.removeprefix("/v1/models").strip("/")
    if not wanted:
        return Generated(document={"object": "list", "data": [card(m) for m in MODELS]})
    if wanted in MODELS:
        return Generated(document=card(wanted))
    message = f"The model '{wanted}' does not exist or you do not have access to it."
    return openai_error(404, message, code="model_not_found")


def unknown_route(route: Route) -> Generated:
    """The API's answer to a route it does not have, naming the method as it does."""
    return openai_error(404, f"Invalid URL ({route.method} {route.path})")


def answer(
    route: Route,
    payload: dict[str, Any],
    fingerprint: str | None,
    *,
    serves_fingerprint: bool,
    base_url: str,
) -> Generated:
    """The answer to a JSON request on a generated endpoint (chat, embeddings, images…)."""
    if route.deployment is not None:
        payload = {**payload, "model": payload.get("model") or route.deployment}
    if route.method != "POST":
        return unknown_route(route)
    if route.path == "/v1/images/generations":
        return images(payload, base_url)
    generated = generate(route.path, payload, fingerprint, serves_fingerprint)
    if generated.status == 404:
        return unknown_route(route)
    return generated
