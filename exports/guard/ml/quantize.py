"""Dynamic int8 quantisation of a loaded guard for CPU inference (worker-only: imports torch).

``quantize_guard(guard)`` replaces every ``nn.Linear`` of the guard's encoder by a dynamically
quantised one (int8 weights, activations quantised per batch at run time, float32 out); the two
small heads stay float32, so the logits keep their scale and the folder's temperature and
thresholds still apply. Nothing is written: the folder on disk stays the float model. The accuracy
cost is measured by ``bench/guard.py`` (AUROC / F1 beside the float guard on the same data).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


def quantize_module(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its ``nn.Linear`` layers dynamically quantised to int8."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not a dependency); the eager
        # dynamic path still works on the x86 / fbgemm / qnnpack engines.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)


def quantize_guard(guard: Any) -> Any:
    """Quantise a :class:`~exports.guard.ml.modeling.LoadedGuard` in place (CPU only) and return it."""
    if guard.device.type != "cpu":
        raise ValueError(f"int8 dynamic quantisation runs on the CPU; this guard is on {guard.device}.")
    guard.model.eval()
    guard.model.encoder = quantize_module(guard.model.encoder)
    guard.quantized = True
    return guard
