#!/usr/bin/env bash
# Start Tribunal on the embedded defaults (what `make run` does after scripts/venv.sh):
#   1. migrate, load the taxonomy presets and the demo (project, items, users; passwords printed once),
#      collect static files;
#   2. start two real Celery workers (queue celery; queue gpu) and the web server (gunicorn) on
#      $HOST:$PORT (default 127.0.0.1:8000), both in the foreground;
#   3. Ctrl-C (or SIGTERM) stops both cleanly; if either exits, the other is stopped too.
# Not DEBUG: a random SECRET_KEY is generated once and kept in $TRIBUNAL_VAR_DIR/secret_key
# (mode 600), ALLOWED_HOSTS defaults to 127.0.0.1,localhost. Everything else comes from the
# environment as documented in the README; with nothing set, SQLite and the filesystem broker live
# in var/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
WEB_WORKERS=${WEB_WORKERS:-2}
STOP_TIMEOUT=${STOP_TIMEOUT:-20}
export TRIBUNAL_VAR_DIR=${TRIBUNAL_VAR_DIR:-$PWD/var}
export DJANGO_SETTINGS_MODULE=config.settings
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export PYTHONUNBUFFERED=1
mkdir -p "$TRIBUNAL_VAR_DIR"

# Fail early and clearly when the port is taken, before touching anything.
if ! "$PY" - "$HOST" "$PORT" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError as exc:
    sys.exit(f"error: cannot listen on {sys.argv[1]}:{sys.argv[2]} ({exc.strerror}); try PORT=8001 make run")
PYEOF
then
  exit 1
fi

if [ -z "${SECRET_KEY:-}" ] && [ -z "${SECRET_KEY_FILE:-}" ]; then
  key_file="$TRIBUNAL_VAR_DIR/secret_key"
  if [ ! -s "$key_file" ]; then
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' > "$key_file")
    echo "==> generated a secret key in $key_file"
  fi
  export SECRET_KEY_FILE="$key_file"
fi
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}

echo "==> database: migrate"
"$PY" manage.py migrate --noinput
echo "==> taxonomy presets and principles"
"$PY" manage.py load_presets
echo "==> demo project, items and users"
demo_log=$("$PY" manage.py load_demo 2>&1) || { printf '%s\n' "$demo_log"; exit 1; }
printf '%s\n' "$demo_log"
echo "==> default jury (the two packaged models; converted on the worker's first run)"
"$PY" manage.py load_default_jury
echo "==> static files"
"$PY" manage.py collectstatic --noinput -v 0

pids=()
stopping=0
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  echo
  echo "==> stopping Tribunal (worker and web server)"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local waited=0
  while [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
    waited=$((waited + 1))
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "==> $pid did not stop in ${STOP_TIMEOUT}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  echo "==> stopped"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# Two workers, so imports and exports never wait behind model work (a jury run or a guard training
# can take an hour on a CPU): one consumes the `celery` queue, one the `gpu` queue.
broker="${CELERY_BROKER_URL:-the filesystem broker in $TRIBUNAL_VAR_DIR/broker}"
echo "==> starting the Celery workers (queue celery: imports, exports; queue gpu: jury, guards) on $broker"
"$VENV/bin/celery" -A config worker -Q celery --concurrency 1 --loglevel INFO \
  --hostname "tribunal@%h" &
pids+=($!)
"$VENV/bin/celery" -A config worker -Q gpu --concurrency 1 --loglevel INFO \
  --hostname "tribunal-gpu@%h" &
pids+=($!)
echo "==> starting the web server (gunicorn, $WEB_WORKERS workers) on http://$HOST:$PORT/"
"$VENV/bin/gunicorn" config.wsgi:application --bind "$HOST:$PORT" --workers "$WEB_WORKERS" \
  --graceful-timeout 10 --access-logfile - --no-control-socket &
pids+=($!)

# Announce once the site answers, repeating the demo log (with any first-time passwords).
(
  if "$PY" scripts/wait_for.py "http://$HOST:$PORT/login/" --timeout 120; then
    printf '\n%s\n' "=================================================================="
    printf 'Tribunal is running at http://%s:%s/  (admin: http://%s:%s/admin/)\n' "$HOST" "$PORT" "$HOST" "$PORT"
    # The "created" block (header + one line per new user) or the "exist" line.
    printf '%s\n' "$demo_log" | awk '/Passwords are shown only this once/ {p=1; print; next}
      p && /^  [a-z]/ {print; next} {p=0} /^Demo users exist/ {print}'
    printf 'Press Ctrl-C to stop the worker and the web server.\n'
    printf '%s\n\n' "=================================================================="
  fi
) &
pids+=($!)

status=0
# Whichever of the workers / server exits first ends the run (the banner job exits on its own).
services=("${pids[0]}" "${pids[1]}" "${pids[2]}")
while :; do
  wait -n "${services[@]}" || status=$?
  gone=0
  for pid in "${services[@]}"; do kill -0 "$pid" 2>/dev/null || gone=1; done
  [ "$gone" = 1 ] && break
done
echo "==> a process exited (status $status); shutting down"
exit "$status"
