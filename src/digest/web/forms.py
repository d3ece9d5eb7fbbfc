"""Request bodies and CSRF: bounded, strictly decoded, never a 500.

Forms are read by hand rather than by FastAPI's validation so that every bad body gets a
page a person can read: too large (413), not UTF-8 (400), not a form (415).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request

from digest.infra import check_csrf_token, make_csrf_token, new_csrf_secret

CSRF_COOKIE = "digest_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_SECONDS = 6 * 3600
MAX_FIELD_CHARS = 2000


class BadRequest(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class Form:
    """A parsed form: first value of a field, all values, never None for strings."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def __contains__(self, name: str) -> bool:
        return any(key == name for key, _ in self.pairs)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(400, "Bad request", "The Content-Length header is not a number.")
        if int(declared) > limit:
            raise BadRequest(413, "Too large", f"That request is larger than {limit // 1024} KB.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, "Too large", f"That request is larger than {limit // 1024} KB.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # let starlette's own form parser reuse it  # noqa: SLF001
    return body


async def read_form(request: Request, limit: int) -> Form:
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(400, "Bad request", "The form was not sent as UTF-8 text.") from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, encoding="utf-8",
                              errors="strict", max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, "Bad request", "The form could not be read.") from None
    elif content_type == "multipart/form-data":
        try:
            body.decode("utf-8")  # files are refused anyway, so the whole body is text
        except UnicodeDecodeError:
            raise BadRequest(400, "Bad request", "The form was not sent as UTF-8 text.") from None
        try:
            parsed = await request.form(max_files=0, max_fields=200)
        except Exception:  # noqa: BLE001 - python-multipart raises several kinds on junk
            raise BadRequest(400, "Bad request", "The form could not be read.") from None
        pairs = []
        for key, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                raise BadRequest(400, "Bad request", "Files are not accepted here.")
            pairs.append((key, value))
    else:
        raise BadRequest(415, "Unsupported form", "Please send the form from the page.")
    for key, value in pairs:
        if len(value) > MAX_FIELD_CHARS or "\x00" in value:
            raise BadRequest(400, "Bad request", f"The field {key[:40]!r} is too long or holds a NUL byte.")
    return Form(pairs)


def csrf_pair(request: Request, secret: str) -> tuple[str, str]:
    """(cookie value, form token) for a page with a form; reuses the visitor's cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or len(cookie) > 64:
        cookie = new_csrf_secret()
    return cookie, make_csrf_token(secret, cookie)


def require_csrf(request: Request, form: Form, secret: str) -> None:
    if not check_csrf_token(secret, form.get(CSRF_FIELD) or None, request.cookies.get(CSRF_COOKIE),
                            CSRF_MAX_AGE_SECONDS):
        raise BadRequest(403, "Please try again",
                         "This form has expired or was not sent from our page. Reload the page and try again.")


class Upload(NamedTuple):
    form: Form  # the other fields
    data: bytes
    file_name: str | None  # as the browser named it: the base name only, one line, at most 200 characters


async def read_upload(request: Request, limit: int, file_field: str) -> Upload:
    """A multipart form with one file in `file_field`.

    Bounded like read_form (the whole body at most `limit` bytes); an empty or missing file
    is a 400, so callers only ever see a real upload.
    """
    await read_body(request, limit)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "multipart/form-data":
        raise BadRequest(415, "Unsupported form", "Please send the file from the page's upload form.")
    try:
        parsed = await request.form(max_files=1, max_fields=50)
    except Exception:  # noqa: BLE001 - python-multipart raises several kinds on junk
        raise BadRequest(400, "Bad request", "The form could not be read.") from None
    pairs: list[tuple[str, str]] = []
    data = b""
    file_name: str | None = None
    try:
        for key, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                if key != file_field:
                    raise BadRequest(400, "Bad request", "Files are not accepted in that field.")
                data = await value.read()
                file_name = _base_name(value.filename)
            else:
                pairs.append((key, value))
    finally:
        await parsed.close()
    for key, value in pairs:
        if len(value) > MAX_FIELD_CHARS or "\x00" in value:
            raise BadRequest(400, "Bad request", f"The field {key[:40]!r} is too long or holds a NUL byte.")
    if not data:
        raise BadRequest(400, "No file", "Choose a file to upload.")
    return Upload(Form(pairs), data, file_name)


def _base_name(name: str | None) -> str | None:
    """The name a browser gave an upload, fit to keep in a record: some browsers send a
    whole Windows path; control characters and the like go."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or None
