"""Every API error is JSON with a ``code``.

- DRF's own errors keep their shape (field errors stay top-level keys, so clients that read
  ``body["options"]`` keep working) and gain ``code`` (and ``detail`` where they had none);
- a lock conflict that survived :mod:`annotation.dbretry`'s retries is ``503 {"code": "busy"}``
  with ``Retry-After``: the request changed nothing and can be sent again (submits are
  idempotent by key);
- anything else unexpected is logged with its traceback and answered ``500 {"code":
  "server_error"}``, never Django's HTML page;
- ``handler404`` / ``handler500`` (``config/urls.py``) give paths under ``/api/`` the same JSON
  when the error happens outside a DRF view (an unknown URL, a middleware).
"""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.dbretry import is_lock_error

logger = logging.getLogger("tribunal.api")

BUSY = {
    "code": "busy",
    "detail": "The database is busy right now and this request changed nothing. Send it again in a moment.",
}
SERVER_ERROR = {"code": "server_error", "detail": "Something went wrong on the server; it has been logged."}


def _code_of(exc, default: str) -> str:
    if isinstance(exc, Http404):  # DRF answers these as its NotFound / PermissionDenied
        return "not_found"
    if isinstance(exc, DjangoPermissionDenied):
        return "permission_denied"
    get_codes = getattr(exc, "get_codes", None)
    codes = get_codes() if get_codes else None
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", None) or default


def exception_handler(exc, context) -> Response:
    response = drf_exception_handler(exc, context)
    if response is not None:
        data = response.data
        if isinstance(data, dict):
            if "code" not in data:
                data["code"] = _code_of(exc, "error")
                if "detail" not in data:
                    data["detail"] = "Invalid input." if response.status_code == 400 else "Request failed."
        else:
            response.data = {"code": _code_of(exc, "invalid"), "detail": data}
        return response
    if is_lock_error(exc):
        logger.warning("API %s: lock conflict after retries: %s", _where(context), exc)
        return Response(BUSY, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})
    logger.error("API %s failed", _where(context), exc_info=exc)
    return Response(SERVER_ERROR, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _where(context) -> str:
    request = context.get("request") if context else None
    return f"{request.method} {request.path}" if request is not None else "?"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception=None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(SERVER_ERROR, status=500)
    return defaults.server_error(request)
