"""Export options: one validated, complete, JSON-serialisable description of an export.

Every interface (page, API, ``manage.py export_dataset``) builds its options here, so a bad option
gets the same clear message everywhere, before any job starts. The normalised dict is stored on the
``Export`` row and written to the manifest: same options → same files.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from exports.consensus.rankings import RANKING_METHODS
from exports.consensus.safety import NEEDS_CAUTION_POLICIES, SAFETY_TIE_POLICIES
from exports.consensus.sources import SOURCE_POLICIES
from exports.salt import DEFAULT_TOKENIZER, tokenizer_errors


@dataclass(frozen=True)
class FormatSpec:
    label: str  # what the admin and the API schema show
    card: str  # what the dataset card says the files are for


# The export formats: the one list. ``Export.Format`` and its database constraint, the page's form,
# the API, ``export_dataset`` and the dataset card all read it.
FORMAT_SPECS: dict[str, FormatSpec] = {
    "dpo": FormatSpec(
        "DPO (TRL preference)",
        "TRL preference data (DPOTrainer, RewardTrainer, KTO via unpairing; OpenRLHF reads chosen/rejected and margin)",
    ),
    "pro": FormatSpec("PRO (full rankings)", "Full rankings for PRO (Song et al.)"),
    "kto": FormatSpec("KTO (unpaired preference)", "TRL unpaired preference data (KTOTrainer)"),
    "d2o": FormatSpec(
        "D2O (negatives)", "Human-judged negatives for D2O (Duan et al.); self-samples are generated at training time"
    ),
    "sft": FormatSpec("SFT (consensus best)", "TRL prompt-completion data (SFTTrainer) with the consensus-best response"),
    "guard-aegis": FormatSpec(
        "Guard: Aegis 2.0 rows",
        "Guard training rows with the Aegis 2.0 columns as the Aegis data writes them (plus Tribunal's item_id)",
    ),
    "guard-llamaguard": FormatSpec(
        "Guard: Llama Guard 3 prompt + target",
        "Llama Guard 3 prompt of its model card and target (safe, or unsafe and a line of codes)",
    ),
    "edit-dpo": FormatSpec(
        "Edit DPO (reviewed synthetic edits)",
        "TRL preference data from synthetic edits that human review accepted or fixed (SYNFAC-EDIT): improve"
        " edits are chosen over the original, originals over corrupt edits",
    ),
    "salt": FormatSpec(
        "SALT (token alignment of reviewed edits)",
        "Token-level alignment labels (C / I / D / S with the SALT weights) between rejected and chosen texts"
        " of reviewed synthetic edits, from Needleman-Wunsch on the token ids of a named tokenizer (SYNFAC-EDIT)",
    ),
}
FORMATS = tuple(FORMAT_SPECS)
# Formats built from reviewed synthetic edits (edit_review items); every other format reads judge
# items and their imported/generated responses only.
EDIT_FORMATS = ("edit-dpo", "salt")
# Filters on judgments that mean nothing for a review verdict: refused with edit formats, not ignored.
EDIT_UNSUPPORTED = ("min_agreement", "date_from", "date_to", "categories", "min_jury_confidence")
PREFERENCE_FORMATS = ("dpo", "pro", "sft")
STYLES = ("standard", "conversational")
PRO_LAYOUTS = ("pro", "plain")
PRO_LENGTH_POLICIES = ("at-least", "exactly", "truncate")
PAIR_POLICIES = ("best-vs-worst", "all-ordered-pairs", "adjacent")
TIE_POLICIES = ("skip", "expand", "position")
SIGNALS = ("preference", "safety")
OUTPUTS = ("jsonl", "parquet", "hf")
SPLITS = ("train", "validation", "test")


class ExportOptionsError(ValueError):
    """A bad option. The message says which option and what is allowed."""


@dataclass(frozen=True)
class ExportOptions:
    format: str
    # --- consensus
    source: str = "human-with-jury-fallback"
    ranking_method: str = "borda"
    tie_policy: str = "skip"
    needs_caution: str = "defensive"
    safety_tie: str = "skip"
    # --- format
    style: str = "standard"
    pro_layout: str = "pro"
    # PRO: the reference trainer asserts one ranking length; keep rankings of at least / exactly N
    # responses, or those of at least N cut to the top N (every row then has N)
    pro_length: int | None = None
    pro_length_policy: str = "at-least"
    pair_policy: str = "best-vs-worst"
    include_margin: bool = False
    signal: str = "preference"  # kto / d2o: where good/bad comes from
    # --- filters
    min_agreement: float | None = None
    min_annotators: int | None = None
    date_from: str | None = None  # ISO date, inclusive; applies to the records' created_at
    date_to: str | None = None  # ISO date, inclusive
    categories: tuple[str, ...] = ()
    min_jury_confidence: float | None = None
    exclude_flagged: bool = False
    # --- split and files
    split: tuple[float, float, float] = (1.0, 0.0, 0.0)  # train / validation / test
    seed: int = 0
    outputs: tuple[str, ...] = ("jsonl", "parquet")
    chunk_size: int = 1000
    # --- salt
    tokenizer: str = "smollm2-135m-instruct"  # a packaged model key or a Hugging Face folder

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        data["split"] = list(self.split)
        data["outputs"] = list(self.outputs)
        if self.format != "salt":
            # only salt reads it: the other formats' options (and manifests) stay as they were
            del data["tokenizer"]
        return data

    @property
    def split_names(self) -> list[str]:
        return [name for name, share in zip(SPLITS, self.split) if share > 0]


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ExportOptionsError(f"Unknown {name} {value!r}: choose one of {', '.join(allowed)}.")
    return value


def _float(name: str, value: Any, lo: float, hi: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ExportOptionsError(f"{name} must be a number between {lo} and {hi}, not {value!r}.") from None
    if not lo <= number <= hi:  # also refuses inf and nan
        raise ExportOptionsError(f"{name} must be between {lo} and {hi}, not {number}.")
    return number


def _int(name: str, value: Any, lo: int, hi: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError
        number = int(value)  # 1e400 arrives as inf: OverflowError
    except (TypeError, ValueError, OverflowError):
        raise ExportOptionsError(f"{name} must be a whole number, not {value!r}.") from None
    if not lo <= number <= hi:
        raise ExportOptionsError(f"{name} must be between {lo} and {hi}, not {number}.")
    return number


def _date(name: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ExportOptionsError(f"{name} must be a date like 2025-01-31, not {value!r}.") from None


def _list(value: Any, name: str = "value") -> list:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ExportOptionsError(f"{name} must be a list or a comma-separated string, not {value!r}.")


as_list = _list  # for the services: a list option given as a list or a comma-separated string


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def build_options(raw: dict[str, Any], *, category_codes: set[str] | None = None) -> ExportOptions:
    """Validate and normalise options given as a dict (from a form, the API or the command line).

    ``category_codes``: the codes of the project's taxonomy version; an unknown code in the
    categories filter is an error (it would match nothing), not an empty file.
    """
    known = {f.name for f in fields(ExportOptions)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ExportOptionsError(f"Unknown option(s): {', '.join(unknown)}.")
    if not raw.get("format"):
        raise ExportOptionsError(f"format is required: choose one of {', '.join(FORMATS)}.")
    fmt = _choice("format", raw["format"], FORMATS)
    categories = tuple(dict.fromkeys(str(c).strip() for c in _list(raw.get("categories"), "categories")))
    if category_codes is not None:
        missing = [c for c in categories if c not in category_codes]
        if missing:
            raise ExportOptionsError(
                f"Unknown category code(s) {', '.join(missing)} for this project's taxonomy; "
                f"known codes: {', '.join(sorted(category_codes, key=_code_key))}."
            )
    split_raw = raw.get("split", (1.0, 0.0, 0.0))
    if isinstance(split_raw, dict):
        split_raw = [split_raw.get(name, 0) for name in SPLITS]
    split_values = _list(split_raw, "split")
    if len(split_values) != 3:
        raise ExportOptionsError("split must give three shares: train, validation, test (e.g. 0.8,0.1,0.1).")
    train, validation, test = (_float(f"split share for {n}", v, 0.0, 1.0) or 0.0 for n, v in zip(SPLITS, split_values))
    split = (train, validation, test)
    if abs(sum(split) - 1.0) > 1e-6:
        raise ExportOptionsError(f"split shares must add up to 1, not {sum(split):g}.")
    outputs = tuple(dict.fromkeys(_choice("output", o, OUTPUTS) for o in _list(raw.get("outputs", ("jsonl", "parquet")), "outputs")))
    if not outputs:
        raise ExportOptionsError(f"outputs must name at least one of {', '.join(OUTPUTS)}.")
    date_from, date_to = _date("date_from", raw.get("date_from")), _date("date_to", raw.get("date_to"))
    if date_from and date_to and date_from > date_to:
        raise ExportOptionsError(f"date_from ({date_from}) is after date_to ({date_to}).")
    signal = _choice("signal", raw.get("signal", "preference"), SIGNALS)
    tokenizer = str(raw.get("tokenizer") or DEFAULT_TOKENIZER).strip()
    if fmt == "salt":
        error = tokenizer_errors(tokenizer)
        if error:
            raise ExportOptionsError(error[0].upper() + error[1:] + ".")
        if raw.get("style", "standard") != "standard":
            raise ExportOptionsError("salt rows are plain text (style standard); conversational is for the other formats.")
    if fmt in EDIT_FORMATS:
        given = [name for name in EDIT_UNSUPPORTED if raw.get(name) not in (None, "", [], ())]
        if given:
            raise ExportOptionsError(
                f"{', '.join(given)} filter(s) judgments, not edit reviews: leave them empty for {fmt} "
                "(it takes min_annotators, exclude_flagged, split, seed and outputs)."
            )
    pro_length = _int("pro_length", raw.get("pro_length"), 2, 1000)
    pro_length_policy = _choice("pro_length_policy", raw.get("pro_length_policy", "at-least"), PRO_LENGTH_POLICIES)
    if pro_length is not None and fmt != "pro":
        raise ExportOptionsError(f"pro_length applies to the pro format only, not {fmt}.")
    return ExportOptions(
        format=fmt,
        source=_choice("source", raw.get("source", "human-with-jury-fallback"), SOURCE_POLICIES),
        ranking_method=_choice("ranking_method", raw.get("ranking_method", "borda"), tuple(RANKING_METHODS)),
        tie_policy=_choice("tie_policy", raw.get("tie_policy", "skip"), TIE_POLICIES),
        needs_caution=_choice("needs_caution", raw.get("needs_caution", "defensive"), NEEDS_CAUTION_POLICIES),
        safety_tie=_choice("safety_tie", raw.get("safety_tie", "skip"), SAFETY_TIE_POLICIES),
        style=_choice("style", raw.get("style", "standard"), STYLES),
        pro_layout=_choice("pro_layout", raw.get("pro_layout", "pro"), PRO_LAYOUTS),
        pro_length=pro_length,
        pro_length_policy=pro_length_policy,
        pair_policy=_choice("pair_policy", raw.get("pair_policy", "best-vs-worst"), PAIR_POLICIES),
        include_margin=_bool(raw.get("include_margin", False)),
        signal=signal,
        min_agreement=_float("min_agreement", raw.get("min_agreement"), 0.0, 1.0),
        min_annotators=_int("min_annotators", raw.get("min_annotators"), 1, 1000),
        date_from=date_from,
        date_to=date_to,
        categories=categories,
        min_jury_confidence=_float("min_jury_confidence", raw.get("min_jury_confidence"), 0.0, 1.0),
        exclude_flagged=_bool(raw.get("exclude_flagged", False)),
        split=split,
        seed=_int("seed", raw.get("seed", 0), 0, 2**63 - 1) or 0,
        outputs=outputs,
        chunk_size=_int("chunk_size", raw.get("chunk_size", 1000), 1, 100_000) or 1000,
        tokenizer=tokenizer,
    )


def natural_key(code: str) -> tuple:
    """Sort key that puts S2 before S10 (runs of digits compare as numbers)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", code) if part)


_code_key = natural_key
