"""Logging in: brute-force protection for the login form and the token endpoint.

Two layers, both on by default:
- **lockout** (django-axes, settings ``LOGIN_FAILURE_LIMIT`` / ``LOGIN_LOCKOUT_MINUTES``): after that
  many failed logins for one account, or from one address, further attempts are refused without
  checking the password (no hashing cost) until the lock times out or an admin lifts it
  (``/admin/axes/`` or ``manage.py axes_reset_username NAME``); a success resets the count;
- **rate** (``LOGIN_RATE``, per address and web process): how many login attempts, right or wrong,
  an address may make, so a burst of guesses cannot tie up the server's CPU with password hashing.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.throttling import SimpleRateThrottle


def _lock_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


LOCKED = ("Too many failed logins for this account or from this address. Try again in {minutes} minutes, "
          "or ask an admin to lift the lock.")
SLOW_DOWN = "Too many login attempts from this address. Wait a minute and try again."


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """What a locked-out login gets: JSON with a code on the API, the login page with the reason otherwise."""
    detail = LOCKED.format(minutes=_lock_minutes())
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "locked_out", "detail": detail}, status=429)
    form = AuthenticationForm(request)
    return render(request, "registration/login.html", {"form": form, "refused": detail}, status=429)


class LoginRateThrottle(SimpleRateThrottle):
    """``LOGIN_RATE`` login attempts per client address (Django's cache; per web process with the
    default local-memory cache)."""

    scope = "login"

    def get_rate(self) -> str:
        return settings.LOGIN_RATE  # read per request, so a deployment (or a test) can change it

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginView(auth_views.LoginView):
    """Django's login view, rate-limited per address (the lockout itself is django-axes')."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        throttle = LoginRateThrottle()
        if not throttle.allow_request(request, self):
            form = self.get_form()
            return render(request, self.template_name, {"form": form, "refused": SLOW_DOWN}, status=429)
        return super().post(request, *args, **kwargs)


def locked_out(request, username: str) -> bool:
    """Whether this login attempt is refused unchecked (an API view's ``request`` is DRF's: the lock
    is read and marked on the Django request under it, where django-axes looks)."""
    from axes.handlers.proxy import AxesProxyHandler

    django_request = getattr(request, "_request", request)
    if getattr(request, "axes_locked_out", False) or getattr(django_request, "axes_locked_out", False):
        return True
    return bool(settings.AXES_ENABLED) and AxesProxyHandler.is_locked(django_request, {"username": username})
