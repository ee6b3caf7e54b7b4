"""Reading a client's upload safely: a size limit while streaming, accepted media types, parameters, JSON errors.

The body is read chunk by chunk and refused (413) as soon as it passes the limit, whatever Content-Length says.
An image may come as the request body (``Content-Type: image/...`` or ``application/octet-stream``) or as the
``file`` (or first file) part of ``multipart/form-data``; form fields may carry the parameters too.
"""
from __future__ import annotations

from starlette.requests import Request

from ..errors import AlexNetError

IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png", "image/gif", "image/bmp", "image/x-ms-bmp", "image/webp",
               "image/tiff", "image/x-portable-pixmap", "image/x-portable-graymap", "image/x-portable-anymap",
               "application/octet-stream")
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024   # 10 MiB: a large photo; decoded size is bounded by Pillow's bomb guard


class ApiError(AlexNetError):
    """A client mistake with its HTTP status; answered as ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or ApiError 413 once it is over ``limit`` bytes (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"upload of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_image_upload(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """(image bytes, parameters from the query string and form fields); 400/413/415 as ApiError."""
    kind = media_type(request)
    params = dict(request.query_params)
    if kind == "multipart/form-data":
        body = await read_limited(request, limit)
        data = await _multipart(request, body, params)
    elif kind in IMAGE_TYPES or kind.startswith("image/"):
        data = await read_limited(request, limit)
    else:
        raise ApiError(415, f"unsupported media type {kind!r}: send the image as the body (image/jpeg, image/png, "
                            "... or application/octet-stream) or as multipart/form-data")
    if not data:
        raise ApiError(400, "empty body: send an image (JPEG, PNG, ...)")
    return data, params


async def _multipart(request: Request, body: bytes, params: dict) -> bytes:
    """The file part of a multipart body already read (and size-checked) into memory."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except Exception as e:   # malformed multipart (python-multipart raises several kinds)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ApiError(400, f"malformed multipart body ({why})") from None
    data = None
    try:
        for key, value in form.multi_items():
            if isinstance(value, str):
                params[key] = value
            elif data is None:
                data = await value.read()
    finally:
        await form.close()
    if data is None:
        raise ApiError(400, "multipart body without a file part: send the image as the field 'file'")
    return data


def int_param(params: dict, name: str, default: int, low: int, high: int | None = None,
              allowed: tuple | None = None) -> int:
    """An integer parameter in range, or ApiError 400 naming it."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r}: expected an integer") from None
    if allowed is not None and value not in allowed:
        raise ApiError(400, f"{name}={value}: expected one of {', '.join(map(str, allowed))}")
    if value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise ApiError(400, f"{name}={value}: expected >= {low}{upper}")
    return value


__all__ = ["ApiError", "DEFAULT_MAX_UPLOAD", "IMAGE_TYPES", "int_param", "media_type", "read_image_upload",
           "read_limited"]
