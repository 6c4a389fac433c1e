"""A juror's endpoint and key cannot be used to send the platform's own secrets anywhere
(issue: hardening 7): keys only from TRIBUNAL_JUROR_KEY_* variables, the endpoint's error body
capped and sanitised, and every configuration change logged."""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from jury import services
from jury.backends.openai import ECHO_CHARS, EndpointError, OpenAIBackend

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "tribunal_juror_key_x", "TRIBUNAL_JUROR_KEY_", "HOME"])
def test_a_juror_cannot_read_any_other_variable(name):
    with pytest.raises(ValidationError) as err:
        services.juror_create(name="leaky", backend="openai", model="m", endpoint="http://127.0.0.1:9/v1",
                              api_key_env=name)
    assert "TRIBUNAL_JUROR_KEY_" in str(err.value.message_dict["api_key_env"])
    # and a spec that slipped past validation (edited in the database) is refused when it is loaded
    with pytest.raises(ValueError, match="TRIBUNAL_JUROR_KEY_"):
        OpenAIBackend({"backend": "openai", "model": "m", "endpoint": "http://127.0.0.1:9/v1", "api_key_env": name})


def test_a_named_key_variable_is_accepted_and_the_change_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="tribunal.audit"):
        juror = services.juror_create(name="remote", backend="openai", model="m", endpoint="http://127.0.0.1:9/v1",
                                      api_key_env="TRIBUNAL_JUROR_KEY_LAB")
    assert juror.model_spec.api_key_env == "TRIBUNAL_JUROR_KEY_LAB"
    lines = [r.getMessage() for r in caplog.records if r.name == "tribunal.audit"]
    assert any("ModelSpec" in line and "created" in line and "TRIBUNAL_JUROR_KEY_LAB" in line for line in lines)
    assert any(line.startswith("jury configuration: Juror") for line in lines)


class _Echoing(BaseHTTPRequestHandler):
    """An endpoint that answers 400 with the request's Authorization header, terminal escapes and 5 kB."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = f"bad request from {self.headers.get('Authorization')}\x1b[31m\x00".encode() + b"x" * 5000
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_endpoints_error_body_is_capped_sanitised_and_never_repeats_the_key(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echoing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TRIBUNAL_JUROR_KEY_T", "sk-very-secret")
        backend = OpenAIBackend({"backend": "openai", "model": "m", "max_retries": 0,
                                 "endpoint": f"http://127.0.0.1:{server.server_port}/v1",
                                 "api_key_env": "TRIBUNAL_JUROR_KEY_T"})
        with pytest.raises(EndpointError) as err:
            backend.score_contexts([("Is this safe? ", {"safe": "yes"})])
    finally:
        server.shutdown()
    message = str(err.value)
    assert "HTTP 400" in message and "[key]" in message
    assert "sk-very-secret" not in message
    assert "\x1b" not in message and "\x00" not in message
    assert len(message) < ECHO_CHARS + 200  # the URL and status around at most ECHO_CHARS of the body
