"""Project-wide middleware: lock conflicts, private caching, and the Content-Security-Policy of Tribunal's pages."""
from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control

from annotation.api_errors import BUSY
from annotation.dbretry import is_lock_error

logger = logging.getLogger("tribunal.errors")


class LockConflictMiddleware:
    """A lock conflict that outlived :func:`annotation.dbretry.retry_on_lock` is a 503 that says
    "busy, send it again", not a 500 (JSON under ``/api/``; DRF views answer theirs themselves)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_lock_error(exception):
            return None
        logger.warning("%s %s: lock conflict after retries: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(BUSY, status=503)
        else:
            response = HttpResponse(
                "The database is busy right now and that request changed nothing. Go back and send it again.",
                status=503, content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = "1"
        return response


class PrivateCacheMiddleware:
    """``Cache-Control: private, no-store`` on every page a logged-in user gets and on every JSON
    answer, unless the view set its own: item text, labels and tokens must not stay in a shared
    proxy's cache or the browser's disk cache. Static files (WhiteNoise, earlier in the chain) keep
    their long-lived caching."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            return response
        user = getattr(request, "user", None)
        is_json = response.get("Content-Type", "").startswith("application/json")
        if is_json or (user is not None and user.is_authenticated):
            patch_cache_control(response, private=True, no_store=True)
        return response


# Model text (prompts, responses, verdicts, rationales) is escaped by the templates; this header is
# a second wall should that ever fail: no inline script, no script from elsewhere, no plugins, no
# framing. Tribunal's own templates load their scripts from /static/ and use no inline handlers.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Every HTML page gets it: Tribunal's templates, the Django admin (its scripts are files) and the
# API docs (Swagger UI served split: its start-up script is a file too, see annotation/api_urls.py).
CSP_EXEMPT_PREFIXES: tuple[str, ...] = ()


class ContentSecurityPolicyMiddleware:
    """Every HTML page Tribunal renders (the workbench, adjudication, project, import, jury and
    export pages: all of them may show model text) carries :data:`CSP`. A view that sets its own
    policy keeps it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html") and not request.path.startswith(
            CSP_EXEMPT_PREFIXES
        ):
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response
