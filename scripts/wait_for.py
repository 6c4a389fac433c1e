#!/usr/bin/env python3
"""Wait until a URL answers (any HTTP status) or a TCP port accepts connections.

    python scripts/wait_for.py http://127.0.0.1:8000/login/ --timeout 60
    python scripts/wait_for.py tcp://localhost:5432 --timeout 30

Exits 0 when ready, 1 on timeout (with the last error). Standard library only, so it runs before
the virtual environment exists.
"""
from __future__ import annotations

import argparse
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def probe(target: str) -> None:
    """Raise if ``target`` is not ready yet."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(target, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # the server answered; a 4xx/5xx still means it is up
    elif parts.scheme == "tcp":
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            return
    else:
        raise SystemExit(f"unsupported target {target!r}: use http://, https:// or tcp://host:port")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            probe(args.target)
            return 0
        except (OSError, urllib.error.URLError) as exc:
            last = exc
            time.sleep(args.interval)
    print(f"wait_for: {args.target} not ready after {args.timeout:.0f}s: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
