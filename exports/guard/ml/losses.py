"""Pure tensor losses of the default recipe."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def guard_loss(
    binary_logits: torch.Tensor,  # [B]
    category_logits: torch.Tensor,  # [B, K]
    labels: torch.Tensor,  # [B] 0/1
    category_targets: torch.Tensor,  # [B, K] 0/1
    category_mask: torch.Tensor,  # [B] 1 where the categories are known
    *,
    pos_weight: torch.Tensor,  # [] n_safe / n_unsafe (class weight of the binary head)
    category_pos_weight: torch.Tensor,  # [K]
    category_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted binary cross-entropy + masked multi-label BCE; returns (loss [], parts).

    >>> loss, parts = guard_loss(torch.zeros(2), torch.zeros(2, 3), torch.tensor([0., 1.]),
    ...     torch.zeros(2, 3), torch.tensor([1., 0.]), pos_weight=torch.tensor(1.), category_pos_weight=torch.ones(3))
    >>> round(parts["binary"], 4), round(parts["categories"], 4)
    (0.6931, 0.6931)
    """
    binary = F.binary_cross_entropy_with_logits(binary_logits, labels, pos_weight=pos_weight)
    if category_logits.shape[1] and category_mask.sum() > 0:
        per = F.binary_cross_entropy_with_logits(
            category_logits, category_targets, pos_weight=category_pos_weight, reduction="none"
        ).mean(dim=1)  # [B]
        categories = (per * category_mask).sum() / category_mask.sum()
    else:
        categories = binary_logits.new_zeros(())
    loss = binary + category_weight * categories
    return loss, {"binary": float(binary.detach()), "categories": float(categories.detach())}
