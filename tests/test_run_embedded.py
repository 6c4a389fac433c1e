"""`make run`'s start script on the embedded defaults, end to end, with real processes.

scripts/run.sh is started the way `make run` starts it (after the venv step), in a temporary var
dir with nothing configured: SQLite, kombu's filesystem broker, a generated SECRET_KEY, DEBUG off.
The test then logs in with a printed password, runs a real background import on the real Celery
worker through the filesystem broker, and stops everything with Ctrl-C (SIGINT to the process group).
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bench.embedded_load import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[1]
# The virtual environment running the tests (its bin/ holds python, celery and gunicorn).
VENV = Path(sys.prefix)


class Running:
    """scripts/run.sh in its own process group, its output collected by a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output, flags=re.M)
            if match:
                return match
            if self.proc.poll() is not None:
                time.sleep(0.5)  # let the reader drain
                raise AssertionError(f"run.sh exited ({self.proc.returncode}) before {pattern!r}:\n{self.output[-6000:]}")
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} after {timeout}s:\n{self.output[-6000:]}")

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        if self.group_alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def login(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/", timeout=10).read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match is not None, "the login page has no CSRF token"
    token = match.group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"}
    ).encode()
    request = urllib.request.Request(f"{base}/admin/login/", data=data, headers={"Referer": f"{base}/admin/login/"})
    opener.open(request, timeout=10)
    return opener


ENQUEUE = """
import sys
import django
django.setup()
from pathlib import Path
from annotation.importing import import_file
from annotation.models import Project
batch = import_file(project=Project.objects.get(slug="demo"), path=Path(sys.argv[1]),
                    source_name="background.jsonl", fmt="tribunal", background=True)
print("BATCH", batch.pk, batch.status)
"""


def test_make_run_serves_logs_in_runs_a_background_task_on_the_worker_and_stops_on_ctrl_c(tmp_path):
    # given nothing configured but a private var dir and port
    port = free_port()
    var = tmp_path / "var"
    env = {
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "VENV": str(VENV),
        "PORT": str(port),
        "TRIBUNAL_VAR_DIR": str(var),
        "WEB_WORKERS": "1",
        "STOP_TIMEOUT": "20",
    }
    base = f"http://127.0.0.1:{port}"

    run = Running(env)
    try:
        # when it starts
        run.wait_for_line(rf"^Tribunal is running at http://127\.0\.0\.1:{port}/", timeout=150)

        # then it is not DEBUG, runs with a generated key kept private, on SQLite + filesystem broker
        key_file = var / "secret_key"
        assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert (var / "tribunal.sqlite3").is_file()
        assert (var / "broker" / "queue").is_dir()
        missing = None
        try:
            urllib.request.urlopen(f"{base}/no-such-page/", timeout=10)
        except urllib.error.HTTPError as exc:
            missing = exc
        assert missing is not None and missing.code == 404
        assert "Traceback" not in missing.read().decode() and "URLconf" not in str(missing.headers)
        run.wait_for_line(r"tribunal@\S+ ready", timeout=60)
        run.wait_for_line(r"tribunal-gpu@\S+ ready", timeout=60)  # model work has its own worker

        # and a printed password logs the admin in (static files are served too)
        password = run.wait_for_line(r"^  admin\s+(\S+)$", timeout=1).group(1)
        opener = login(base, "admin", password)
        admin_page = opener.open(f"{base}/admin/", timeout=10).read().decode()
        assert "Log out" in admin_page or "logout" in admin_page
        css = urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=10)
        assert css.status == 200

        # when a background import is queued on the filesystem broker
        data = tmp_path / "background.jsonl"
        data.write_text(
            "\n".join(
                json.dumps({"id": f"bg-{n}", "prompt": f"Background question {n}?", "responses": [f"answer {n}a", f"answer {n}b"]})
                for n in range(5)
            ) + "\n"
        )
        enqueue_env = dict(env, DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY_FILE=str(key_file))
        proc = subprocess.run(
            [sys.executable, "-c", ENQUEUE, str(data)], cwd=ROOT, env=enqueue_env,
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        batch_pk, status = re.search(r"BATCH (\d+) (\w+)", proc.stdout).groups()
        assert status == "pending"

        # then the worker process picks it up and finishes it
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            with sqlite3.connect(var / "tribunal.sqlite3", timeout=30) as db:
                status, created = db.execute(
                    "SELECT status, items_created FROM annotation_importbatch WHERE id = ?", (batch_pk,)
                ).fetchone()
            if status in ("done", "failed"):
                break
            time.sleep(0.5)
        assert (status, created) == ("done", 5), run.output[-4000:]
        assert re.search(r"Task \S+\[[0-9a-f-]+\] succeeded", run.output), run.output[-4000:]

        # when Ctrl-C reaches the foreground process group
        os.killpg(run.proc.pid, signal.SIGINT)

        # then both processes stop cleanly
        assert run.proc.wait(timeout=45) in (130, 0), run.output[-3000:]
        deadline = time.monotonic() + 10
        while run.group_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not run.group_alive(), "a worker or server process outlived run.sh"
        assert "==> stopped" in run.output
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    finally:
        run.kill()


def test_run_refuses_a_taken_port_before_touching_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "VENV": str(VENV),
            "PORT": str(port), "TRIBUNAL_VAR_DIR": str(tmp_path / "var"),
        }
        proc = subprocess.run(["bash", "scripts/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "PORT=" in proc.stderr
    assert not (tmp_path / "var" / "tribunal.sqlite3").exists()
