"""The API's endpoints. Thin: forms shape the input, flows run it, errors.py words refusals.

Every answer is JSON, errors included: a malformed body, a wrong method or an
unknown path under /api/ gets `{"status": …, "error_text": …}`, never Django's
HTML pages. These views, and only these, are exempt from CSRF: they read no
cookie, and the signed request_id and the limits protect them instead; a
browser page of another origin is refused (cors.cross_origin_refused), so no
other site can make its visitors' browsers send codes.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path

from django import forms
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from . import flows
from .cors import cors_add_headers, cors_preflight_response, cross_origin_refused
from .errors import (
    ApiError,
    api_error_for,
    bad_body,
    cross_origin,
    internal_error,
    invalid_field,
    method_not_allowed,
    missing_field,
    not_found,
)
from .forms import VerifyCheckForm, VerifyControlForm, VerifyRequestForm, with_aliases

logger = logging.getLogger(__name__)

OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
# The largest real body is well under 1 KiB; refuse more before parsing it.
MAX_BODY_BYTES = 4096
JSON_CONTENT_TYPES = {"application/json"}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

ApiView = Callable[[HttpRequest, dict], dict]


def error_response(error: ApiError) -> JsonResponse:
    """Return the JSON answer for a refusal."""
    response = JsonResponse(
        {"status": error.status, "error_text": error.error_text}, status=error.http_status
    )
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def _not_allowed_response(allowed: str) -> JsonResponse:
    response = error_response(method_not_allowed(allowed))
    response["Allow"] = allowed
    return response


def request_data(request: HttpRequest) -> dict:
    """Return the body as a dict of fields, or raise ApiError."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise bad_body("too_large")
    try:
        body = request.body
    except RequestDataTooBig:
        raise bad_body("too_large") from None
    if len(body) > MAX_BODY_BYTES:
        raise bad_body("too_large")
    content_type = request.content_type or ""
    if content_type in JSON_CONTENT_TYPES:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            # ValueError covers bad JSON, bad UTF-8 and oversized integers;
            # RecursionError, a few thousand nested brackets.
            raise bad_body() from None
        if not isinstance(data, dict):
            raise bad_body()
        return data
    if content_type == FORM_CONTENT_TYPE:
        try:
            return QueryDict(body, encoding="utf-8").dict()
        except (ValueError, SuspiciousOperation):
            raise bad_body() from None
    raise bad_body()


def cleaned_data(form: forms.Form) -> dict:
    """Return the form's cleaned data, or raise ApiError for its first bad field."""
    if form.is_valid():
        return form.cleaned_data
    for name, errors in form.errors.as_data().items():
        if any(error.code == "required" for error in errors):
            raise missing_field(name)
        raise invalid_field(name)
    raise bad_body()


def api_endpoint(view: ApiView) -> Callable[[HttpRequest], HttpResponse]:
    """Make `view(request, data) -> dict` a JSON endpoint: POST only, CSRF exempt."""

    @functools.wraps(view)
    def endpoint(request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            response = cors_preflight_response(request) or _not_allowed_response("POST")
        elif request.method != "POST":
            response = _not_allowed_response("POST")
        elif cross_origin_refused(request):
            # Before the body is read: nothing is sent, counted or logged as a
            # verification for a page of another site.
            logger.warning(
                "cross-origin API request refused at %s: Origin %.100r, Sec-Fetch-Site %.20r",
                request.path,
                request.headers.get("Origin"),
                request.headers.get("Sec-Fetch-Site"),
            )
            response = error_response(cross_origin())
        else:
            response = _run(view, request)
        return cors_add_headers(request, response)

    return csrf_exempt(never_cache(endpoint))


def _run(view: ApiView, request: HttpRequest) -> HttpResponse:
    try:
        return JsonResponse(view(request, request_data(request)))
    except Exception as exc:
        error = api_error_for(exc)
        if error is None:
            # A bug: say so in JSON, never with a traceback. The log has it
            # (the request body, which may hold a code, is not logged).
            logger.exception("unexpected error in the JSON API at %s", request.path)
            error = internal_error()
        return error_response(error)


@api_endpoint
def verify_request(request: HttpRequest, data: dict) -> dict:
    number = cleaned_data(VerifyRequestForm(data))["number"]
    token = flows.api_verification_request(request, number=number)
    return {"request_id": token, "status": "0"}


@api_endpoint
def verify_check(request: HttpRequest, data: dict) -> dict:
    fields = cleaned_data(VerifyCheckForm(with_aliases(data)))
    result = flows.api_verification_check(
        request, token=fields["request_id"], code=fields["code"], number=fields["number"] or None
    )
    return {
        "request_id": fields["request_id"],
        "status": "0",
        "event_id": _text_or_none(result.event_id),
        "price": _text_or_none(result.price),
        "currency": _text_or_none(result.currency),
    }


@api_endpoint
def verify_cancel(request: HttpRequest, data: dict) -> dict:
    fields = cleaned_data(VerifyControlForm(with_aliases(data)))
    flows.api_verification_cancel(
        request, token=fields["request_id"], number=fields["number"] or None
    )
    return {"status": "0", "command": "cancel"}


@api_endpoint
def verify_next(request: HttpRequest, data: dict) -> dict:
    fields = cleaned_data(VerifyControlForm(with_aliases(data)))
    flows.api_verification_next(
        request, token=fields["request_id"], number=fields["number"] or None
    )
    return {"status": "0", "command": "trigger_next_event"}


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


@functools.cache
def _openapi_document() -> bytes:
    return OPENAPI_DOCUMENT.read_bytes()


@csrf_exempt
def openapi_document(request: HttpRequest) -> HttpResponse:
    """Serve the OpenAPI 3 description of the API, the file kept beside this module."""
    if request.method not in ("GET", "HEAD"):
        return _not_allowed_response("GET, HEAD")
    return HttpResponse(_openapi_document(), content_type="application/json")


@csrf_exempt
@never_cache
def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer any other path under /api/ in JSON."""
    return error_response(not_found())
