"""``guard.json``: the manifest of a trained guard folder, read and checked without torch.

The web process (pages, spec validation of a ``guard`` model) and the worker both read it, so this
module imports nothing heavy. A folder whose manifest is missing, unparsable or incomplete gives a
:class:`GuardManifestError` that names the folder and the problem.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_NAME = "guard.json"
FORMAT = "tribunal-guard/1"
MODEL_KINDS = ("encoder", "generative")  # model.kind: encoder + heads, or a LoRA adapter on a causal LM

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "taxonomy": dict,
    "category_codes": list,
    "threshold": (int, float),
    "category_thresholds": dict,
    "temperature": (int, float),
    "recipe": str,
    "seed": int,
    "training_data": dict,
    "libraries": dict,
    "model": dict,
}


class GuardManifestError(ValueError):
    """A guard folder whose guard.json is missing, corrupt, or made for another taxonomy."""


@dataclass(frozen=True)
class GuardManifest:
    folder: Path
    data: dict[str, Any]

    @property
    def codes(self) -> list[str]:
        return list(self.data["category_codes"])

    @property
    def taxonomy_slug(self) -> str:
        return self.data["taxonomy"]["slug"]

    @property
    def taxonomy_version(self) -> int:
        return int(self.data["taxonomy"]["version"])

    @property
    def threshold(self) -> float:
        return float(self.data["threshold"])

    @property
    def temperature(self) -> float:
        return float(self.data["temperature"])

    def category_threshold(self, code: str) -> float:
        return float(self.data["category_thresholds"].get(code, 0.5))


def read_manifest(folder: str | Path) -> GuardManifest:
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise GuardManifestError(f"{folder} is not a guard folder (no such directory).")
    if not path.is_file():
        raise GuardManifestError(f"{folder} is not a guard folder: it has no {MANIFEST_NAME}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GuardManifestError(f"{path} is corrupt: not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise GuardManifestError(f"{path} is corrupt: expected a JSON object.")
    problems = []
    for key, kind in _REQUIRED.items():
        if key not in data:
            problems.append(f"missing {key!r}")
        elif not isinstance(data[key], kind) or isinstance(data[key], bool) and kind is not bool:
            problems.append(f"{key!r} has the wrong type")
    if not problems:
        if data["format"] != FORMAT:
            problems.append(f"format {data['format']!r} is not {FORMAT!r}")
        if not {"slug", "version"} <= set(data["taxonomy"]):
            problems.append("'taxonomy' needs slug and version")
        if not all(isinstance(c, str) for c in data["category_codes"]):
            problems.append("'category_codes' must be strings")
        if not 0.0 < float(data["threshold"]) < 1.0:
            problems.append("'threshold' must be in (0, 1)")
        if float(data["temperature"]) <= 0:
            problems.append("'temperature' must be positive")
        if data["model"].get("kind", "encoder") not in MODEL_KINDS:
            problems.append(f"'model.kind' must be one of {', '.join(MODEL_KINDS)}")
        elif not (folder / (data["model"].get("weights") or data["model"].get("head", "head.safetensors"))).is_file():
            problems.append("the head weights file is missing" if data["model"].get("kind", "encoder") == "encoder"
                            else "the adapter weights file is missing")
    if problems:
        raise GuardManifestError(f"{path} is corrupt: {'; '.join(problems)}.")
    return GuardManifest(folder=folder, data=data)


def check_taxonomy(manifest: GuardManifest, *, slug: str, version: int) -> None:
    """Refuse a guard made for another taxonomy (its heads would mean other categories)."""
    if (manifest.taxonomy_slug, manifest.taxonomy_version) != (slug, int(version)):
        raise GuardManifestError(
            f"{manifest.folder} was trained for taxonomy {manifest.taxonomy_slug} v{manifest.taxonomy_version}, "
            f"not {slug} v{version}; evaluate its binary label only, or train one for {slug} v{version}."
        )
