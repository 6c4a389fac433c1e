"""Where guard training and evaluation data come from, read into :class:`Example` lists.

- a labelled file (``.jsonl`` / ``.csv``): ``prompt``, optional ``response``, ``label``
  (``safe`` / ``unsafe``; ``needs_caution`` by the policy) and optional ``categories`` (a list or a
  comma-separated string of codes, names or aliases of the taxonomy version). Aegis 2.0 rows
  (``prompt_label`` / ``response_label`` / ``violated_categories``) and OpenAI moderation samples
  (binary keys ``S, H, V, HR, SH, S3, H2, V2``; an absent key is unknown, not safe) are read too.
  A moderation sample is unsafe when any known key is 1, else safe (all keys absent: no label).
  Read under the ``openai-moderation`` taxonomy its keys are per-category labels, the absent ones
  listed in ``Example.unknown_categories`` so that evaluation masks them; under another taxonomy
  only its binary label is read;
- a ``guard-aegis`` export folder (``manifest.json`` + split ``.jsonl`` files) made under the same
  taxonomy version;
- a project's current consensus: exports' own pipeline writes a ``guard-aegis`` export of it into a
  temporary folder (the same consensus, source and needs-caution policies as any export), which is
  then read like any export folder.

Every problem is a :class:`GuardDataError` naming the file and line. Examples from one Aegis row
(the user turn, and the response when it is labelled) share the row's item key, so a split by item
never separates them.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from exports.guard.ml.data import Example, GuardDataError

MODERATION_KEYS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")
MODERATION_TAXONOMY = "openai-moderation"  # the preset whose codes are MODERATION_KEYS
_LABELS = {"safe": 0, "unsafe": 1, "0": 0, "1": 1, "false": 0, "true": 1}
_CAUTION = ("needs_caution", "needs caution")

Resolver = Callable[[str], str]


def category_resolver(taxonomy_version) -> Resolver:
    """code, name or alias (any case) -> the code in this taxonomy version; else GuardDataError."""
    table: dict[str, str] = {}
    codes = []
    for code, name, aliases in taxonomy_version.categories.order_by("order", "code").values_list("code", "name", "aliases"):
        codes.append(code)
        for spelling in (code, name, *(aliases or [])):
            table[spelling.strip().lower()] = code

    def resolve(text: str) -> str:
        try:
            return table[text.strip().lower()]
        except KeyError:
            raise GuardDataError(
                f"category {text.strip()!r} is not in taxonomy {taxonomy_version.taxonomy.slug} v{taxonomy_version.version} "
                f"(codes: {', '.join(codes)})"
            ) from None

    return resolve


def taxonomy_codes(taxonomy_version) -> list[str]:
    return list(taxonomy_version.categories.order_by("order", "code").values_list("code", flat=True))


def _label(value: Any, needs_caution: str) -> int:
    text = str(value).strip().lower()
    if text in _CAUTION:
        return 1 if needs_caution == "defensive" else 0
    if text not in _LABELS:
        raise GuardDataError(f"label {value!r} is not safe / unsafe / needs_caution")
    return _LABELS[text]


def _categories(value: Any, resolve: Resolver) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [c for c in str(value).split(",") if c.strip()]
    return tuple(dict.fromkeys(resolve(str(c)) for c in items))


def _key(row: dict, prompt: str) -> str:
    ident = row.get("id")
    if ident not in (None, ""):
        return str(ident)
    return "sha256:" + hashlib.sha256(prompt.encode()).hexdigest()[:16]


def examples_from_row(row: dict, *, resolve: Resolver, needs_caution: str = "defensive") -> list[Example]:
    """One input row -> its examples (format told by its keys)."""
    prompt = row.get("prompt")
    if isinstance(prompt, list):  # a conversation: the first user turn
        prompt = next((m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"), None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise GuardDataError("no prompt text")
    key = _key(row, prompt)
    response = row.get("response")
    response = response if isinstance(response, str) and response.strip() else None
    if "prompt_label" in row:  # Aegis 2.0 row
        if prompt == "REDACTED":
            return []
        cats = _categories(row.get("violated_categories") or None, resolve)
        p = _label(row["prompt_label"], needs_caution)
        out = [Example(key, prompt, None, p, cats if p else ())]
        if response is not None and row.get("response_label") not in (None, ""):
            r = _label(row["response_label"], needs_caution)
            out.append(Example(key, prompt, response, r, cats if r else ()))
        return out
    if "label" in row:
        label = _label(row["label"], needs_caution)
        given: tuple[str, ...] | None = (
            None if row.get("categories") in (None, "") and label else _categories(row.get("categories"), resolve)
        )
        if not label and given:
            raise GuardDataError("a safe row cannot have categories")
        return [Example(key, prompt, response, label, given if label else ())]
    present = [k for k in MODERATION_KEYS if row.get(k) not in (None, "")]
    if present:  # OpenAI moderation sample: any known 1 is unsafe, else safe; an absent key is unknown
        try:
            flags = {k: int(row[k]) for k in present}
        except (TypeError, ValueError):
            raise GuardDataError(f"OpenAI moderation labels must be 0 or 1, got {[row[k] for k in present]}") from None
        label = int(any(v == 1 for v in flags.values()))
        if not _is_moderation_taxonomy(resolve):  # read under another taxonomy: the binary label only
            return [Example(key, prompt, response, label, None)]
        positive = tuple(k for k in MODERATION_KEYS if flags.get(k) == 1)
        unknown = tuple(k for k in MODERATION_KEYS if k not in flags)
        return [Example(key, prompt, response, label, positive, unknown)]
    raise GuardDataError("no label: give `label` (safe/unsafe), Aegis `prompt_label`, or OpenAI moderation keys")


def _is_moderation_taxonomy(resolve: Resolver) -> bool:
    """Whether the resolver's taxonomy has the OpenAI moderation codes (each key is its own code;
    Aegis has an ``S3`` too, but no ``S``, ``H``, ...)."""
    try:
        return all(resolve(k) == k for k in MODERATION_KEYS)
    except GuardDataError:
        return False


def _is_moderation_row(row: dict) -> bool:
    return "label" not in row and "prompt_label" not in row and any(k in row for k in MODERATION_KEYS)


def sniff_taxonomy(path: str | Path) -> str | None:
    """The preset a file's categories are under when its format says so: ``openai-moderation``
    for OpenAI moderation samples (the first row has their keys and no ``label``); else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        for _, row in _rows(path):
            return MODERATION_TAXONOMY if _is_moderation_row(row) else None
    except (GuardDataError, OSError, UnicodeDecodeError):
        return None
    return None


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    opener = (lambda: __import__("gzip").open(path, "rt", encoding="utf-8")) if path.suffix == ".gz" else (
        lambda: open(path, encoding="utf-8-sig", newline=""))
    with opener() as fh:
        if suffix.startswith(".csv"):
            for n, row in enumerate(csv.DictReader(fh), start=2):
                yield n, {k: (v if v != "" else None) for k, v in row.items() if k}
        elif suffix.startswith((".jsonl", ".json")):
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise GuardDataError(f"{path}, line {n}: not JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise GuardDataError(f"{path}, line {n}: expected a JSON object")
                yield n, row
        else:
            raise GuardDataError(f"{path}: unknown file type {suffix or '(none)'}; use .jsonl, .csv (or .gz of either)")


def read_labelled_file(path: str | Path, *, resolve: Resolver, needs_caution: str = "defensive") -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise GuardDataError(f"{path}: no such file")
    out: list[Example] = []
    seen: set[tuple[str, str, str | None]] = set()
    for n, row in _rows(path):
        try:
            examples = examples_from_row(row, resolve=resolve, needs_caution=needs_caution)
        except GuardDataError as exc:
            raise GuardDataError(f"{path}, line {n}: {exc}") from None
        if _is_moderation_row(row):  # a published evaluation set: every sample counts, repeats included
            out.extend(examples)
            continue
        for ex in examples:
            ident = (ex.key, ex.prompt, ex.response)
            if ident not in seen:  # an export repeats the prompt on each response's row
                seen.add(ident)
                out.append(ex)
    if not out:
        raise GuardDataError(f"{path}: no labelled examples (the file is empty)")
    return out


_CONVERSATION = re.compile(r"<BEGIN CONVERSATION>\n\n(.*)\n\n<END CONVERSATION>", re.S)
_AGENT_TURN = "\n\nAgent: "


def llamaguard_row_examples(row: dict, *, resolve: Resolver) -> list[Example]:
    """One ``guard-llamaguard`` export row (``prompt``: the classifier instruction with the
    conversation between ``<BEGIN CONVERSATION>`` and ``<END CONVERSATION>``, ``User: `` / ``Agent: ``
    turns; ``completion``: ``safe`` or ``unsafe`` + a line of codes) -> its example. An ``Agent`` row
    classifies the last agent turn (the response) in the context of the turns before it."""
    instruction, completion = row.get("prompt"), row.get("completion")
    if not isinstance(instruction, str) or not isinstance(completion, str):
        raise GuardDataError("a guard-llamaguard row needs `prompt` and `completion` text")
    match = _CONVERSATION.search(instruction)
    if match is None:
        raise GuardDataError("the prompt has no <BEGIN CONVERSATION> ... <END CONVERSATION> block")
    conversation = match.group(1)
    verdict, _, codes = completion.strip().partition("\n")
    label = _label(verdict, "defensive")
    cats = _categories(codes or None, resolve) if label else ()
    response = None
    if row.get("role") == "Agent":
        cut = conversation.rfind(_AGENT_TURN)
        if cut < 0:
            raise GuardDataError("an Agent row whose conversation has no Agent turn")
        conversation, response = conversation[:cut], conversation[cut + len(_AGENT_TURN):]
    if conversation.startswith("User: ") and _AGENT_TURN not in conversation and "\n\nUser: " not in conversation:
        conversation = conversation[len("User: "):]  # a single user turn: its text alone, as in the other formats
    key = str(row["item_id"]) if row.get("item_id") not in (None, "") else _key(row, conversation)
    return [Example(key, conversation, response, label, cats)]


def read_export_folder(folder: str | Path, *, taxonomy_version, resolve: Resolver) -> tuple[list[Example], dict]:
    """A guard-aegis or guard-llamaguard export folder made under ``taxonomy_version``; returns
    (examples, its manifest)."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise GuardDataError(f"{folder}: not an export folder (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GuardDataError(f"{manifest_path}: corrupt ({exc.msg})") from None
    fmt = manifest.get("format")
    if fmt not in ("guard-aegis", "guard-llamaguard"):
        raise GuardDataError(f"{folder}: a {fmt!r} export; guards train on guard-aegis or guard-llamaguard exports")
    tax = manifest.get("taxonomy") or {}
    if (tax.get("slug"), tax.get("version")) != (taxonomy_version.taxonomy.slug, taxonomy_version.version):
        raise GuardDataError(
            f"{folder}: exported under taxonomy {tax.get('slug')} v{tax.get('version')}, not "
            f"{taxonomy_version.taxonomy.slug} v{taxonomy_version.version}"
        )
    files = [folder / f"{s}.jsonl" for s in manifest.get("splits", []) if (folder / f"{s}.jsonl").is_file()]
    if not files:
        raise GuardDataError(f"{folder}: no .jsonl split files (export with the jsonl output)")
    examples: list[Example] = []
    seen: set[tuple[str, str, str | None]] = set()
    for f in files:
        if not f.stat().st_size:
            continue
        for ex in read_labelled_file(f, resolve=resolve) if fmt == "guard-aegis" else _read_llamaguard(f, resolve):
            if (ex.key, ex.prompt, ex.response) not in seen:
                seen.add((ex.key, ex.prompt, ex.response))
                examples.append(ex)
    if not examples:
        raise GuardDataError(f"{folder}: the export has no rows")
    return examples, manifest


def _read_llamaguard(path: Path, resolve: Resolver) -> list[Example]:
    out = []
    for n, row in _rows(path):
        try:
            out.extend(llamaguard_row_examples(row, resolve=resolve))
        except GuardDataError as exc:
            raise GuardDataError(f"{path}, line {n}: {exc}") from None
    return out


def read_project(project, *, source: str = "human-with-jury-fallback", needs_caution: str = "defensive") -> tuple[list[Example], dict]:
    """The project's current consensus, through exports' pipeline (a guard-aegis export in a
    temporary folder, deleted afterwards)."""
    from exports.options import ExportOptionsError
    from exports.pipeline import ExportEmptyError, run_export
    from exports.services import export_options_validate

    try:
        options = export_options_validate(project=project, raw={
            "format": "guard-aegis", "outputs": ["jsonl"], "source": source, "needs_caution": needs_caution,
        })
    except ExportOptionsError as exc:
        raise GuardDataError(str(exc)) from None
    version = project.taxonomy_version
    with tempfile.TemporaryDirectory(prefix="guard-consensus-") as tmp:
        try:
            run_export(project=project, options=options, out_dir=Path(tmp) / "export")
        except ExportEmptyError as exc:
            raise GuardDataError(f"project {project.slug}: {exc}") from None
        return read_export_folder(Path(tmp) / "export", taxonomy_version=version, resolve=category_resolver(version))


def load_source(spec: dict[str, Any], *, taxonomy_version) -> tuple[list[Example], dict[str, Any]]:
    """``spec``: {"kind": "file", "path"} | {"kind": "export", "path"} | {"kind": "project", "slug",
    "source"?, "needs_caution"?}. Returns (examples, provenance)."""
    kind = spec.get("kind")
    needs_caution = spec.get("needs_caution", "defensive")
    resolve = category_resolver(taxonomy_version)
    if kind == "file":
        return read_labelled_file(spec["path"], resolve=resolve, needs_caution=needs_caution), dict(spec)
    if kind == "export":
        examples, manifest = read_export_folder(spec["path"], taxonomy_version=taxonomy_version, resolve=resolve)
        return examples, {**spec, "export_project": manifest.get("project"), "export_options": manifest.get("options")}
    if kind == "project":
        from annotation.models import Project

        project = Project.objects.filter(slug=spec.get("slug")).select_related("taxonomy_version__taxonomy").first()
        if project is None:
            raise GuardDataError(f"no project {spec.get('slug')!r}")
        examples, _manifest = read_project(project, source=spec.get("source", "human-with-jury-fallback"),
                                           needs_caution=needs_caution)
        return examples, dict(spec)
    raise GuardDataError(f"unknown data source kind {kind!r}; use file, export or project")


def category_map_for(manifest, data_version):
    """How a guard's categories (``manifest``: its guard.json) are read under the data's taxonomy
    version: ``(None, crosswalk)`` when it is the guard's own version (the heads are the data's
    categories), else ``(CategoryMap, crosswalk)`` through the stored crosswalk. Raises
    GuardDataError when the guard's taxonomy version is not in this database."""
    from annotation.crosswalk import crosswalk_between, version_for
    from exports.guard.ml.evaluate import CategoryMap

    guard_version = version_for(manifest.taxonomy_slug, manifest.taxonomy_version)
    if guard_version is None:
        raise GuardDataError(
            f"the guard was trained under taxonomy {manifest.taxonomy_slug} v{manifest.taxonomy_version}, "
            "which this database does not have (run load_presets?)"
        )
    walk = crosswalk_between(guard_version, data_version)
    if walk.kind == "identity":
        return None, walk
    return CategoryMap(target_codes=walk.target_codes, mapping={c: walk.mapping.get(c, []) for c in manifest.codes},
                       description=walk.describe(), details=walk.as_json()), walk


def data_taxonomy_for(spec: dict[str, Any], *, guard_version, taxonomy_version=None):
    """The taxonomy version an evaluation source's categories are read under: ``taxonomy_version``
    when given; a project's own; an export's own (its manifest); ``openai-moderation`` for a file of
    OpenAI moderation samples; else the guard's (``guard_version``)."""
    if taxonomy_version is not None:
        return taxonomy_version
    if spec.get("kind") == "project":
        from annotation.models import Project

        project = Project.objects.select_related("taxonomy_version__taxonomy").filter(slug=spec.get("slug")).first()
        if project is None:
            raise GuardDataError(f"no project {spec.get('slug')!r}")
        return project.taxonomy_version
    if spec.get("kind") == "export":  # the export says which version it was made under
        from annotation.crosswalk import version_for

        try:
            tax = json.loads((Path(spec.get("path", "")) / "manifest.json").read_text(encoding="utf-8")).get("taxonomy") or {}
        except (OSError, ValueError, AttributeError):
            tax = {}
        if isinstance(tax, dict) and tax.get("slug") and str(tax.get("version", "")).isdigit():
            found = version_for(str(tax["slug"]), int(tax["version"]))
            if found is not None:
                return found
        return guard_version
    if spec.get("kind") == "file" and sniff_taxonomy(spec.get("path", "")) == MODERATION_TAXONOMY:
        from annotation.crosswalk import version_for

        version = version_for(MODERATION_TAXONOMY)
        if version is None:
            raise GuardDataError(f"OpenAI moderation samples need the {MODERATION_TAXONOMY} preset (run load_presets)")
        return version
    return guard_version


def load_for_evaluation(spec: dict[str, Any], *, manifest, taxonomy_version=None):
    """Everything an evaluation of the guard (``manifest``) on ``spec`` needs:
    ``(examples, data taxonomy version, CategoryMap or None, crosswalk)``; pass the map to
    ``evaluate_folder(..., category_map=...)`` and name ``crosswalk.describe()`` in the report."""
    from annotation.crosswalk import version_for

    guard_version = version_for(manifest.taxonomy_slug, manifest.taxonomy_version)
    data_version = data_taxonomy_for(spec, guard_version=guard_version, taxonomy_version=taxonomy_version)
    if data_version is None:
        raise GuardDataError(
            f"the guard was trained under taxonomy {manifest.taxonomy_slug} v{manifest.taxonomy_version}, "
            "which this database does not have (run load_presets?)"
        )
    examples, _ = load_source(spec, taxonomy_version=data_version)
    category_map, walk = category_map_for(manifest, data_version)
    return examples, data_version, category_map, walk
