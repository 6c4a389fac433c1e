"""Model backends of the jury. Importing this package is cheap: torch and transformers are imported
only when a local backend is built (in the worker), never by the web process."""
from __future__ import annotations

from jury.backends.base import Backend, JudgeRequest, JudgeResult, clear_backends, get_backend
from jury.backends.registry import backend_kinds as judging_backend_kinds
from jury.backends.registry import register_backend

__all__ = ["Backend", "JudgeRequest", "JudgeResult", "get_backend", "clear_backends", "register_backend",
           "judging_backend_kinds"]
