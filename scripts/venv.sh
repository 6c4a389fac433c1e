#!/usr/bin/env bash
# Make sure .venv exists and holds what requirements*.txt pin.
#   scripts/venv.sh run    -> requirements.txt + requirements-nodeps.txt (--no-deps)
#   scripts/venv.sh test   -> requirements-test.txt (which includes requirements.txt) + nodeps
# A stamp file keyed on the hash of the requirement files skips pip when nothing changed, so a
# second `make run` starts in seconds. Delete .venv/.tribunal-* to force a reinstall.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
kind=${1:-run}
case "$kind" in
  run) reqs=requirements.txt ;;
  test) reqs=requirements-test.txt ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
pyver=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$pyver" != "3.11" ]; then
  echo "warning: $VENV runs Python $pyver; Tribunal is pinned for Python 3.11 (torch 2.13.0 CPU build, Django 5.2)." >&2
fi

hash=$(cat requirements.txt "$reqs" requirements-nodeps.txt | sha256sum | cut -c1-16)
stamp="$VENV/.tribunal-$kind-$hash"
if [ -f "$stamp" ]; then
  echo "==> $VENV is up to date ($reqs + requirements-nodeps.txt)"
  exit 0
fi
echo "==> installing $reqs into $VENV (the first time takes a few minutes)"
# pip's own failure still fails this script (pipefail); the filter only drops noise from machines
# whose pip configuration lists local index folders that do not exist.
quiet_pip() {
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v -E "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" || true; }
}
quiet_pip -r "$reqs"
echo "==> installing requirements-nodeps.txt with --no-deps"
quiet_pip --no-deps -r requirements-nodeps.txt
rm -f "$VENV"/.tribunal-"$kind"-*
touch "$stamp"
