"""One linear layer with a low-rank adapter: LoRA (Hu et al. 2021, arXiv:2106.09685).

Fine-tuning changes a pretrained weight W0 by some ΔW. LoRA's bet is that ΔW has low rank, so
it trains ΔW = B A instead, with A of shape r×in and B of shape out×r, and leaves W0 frozen
(eq. 3 of the paper):

    h = W0 x + ΔW x = W0 x + B A x · scaling

B starts at zero, so a freshly wrapped layer computes exactly what the pretrained one did and
training starts from the pretrained model. For evaluation B A · scaling can be added into W0
once ("merged"), and the adapted layer costs no more than the original.

The scaling (``lora_scaling``) is α/r in the paper (section 4.1): dividing by r keeps the size of
the update roughly independent of the rank, so α need not be retuned when r changes. Kalajdzievski
2023 ("A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA", arXiv:2312.03732) shows
that α/r over-corrects: as r grows, the update and its gradients shrink like 1/√r, so a larger
rank learns more slowly and ends no better than a small one. Rank-stabilised LoRA (rsLoRA)
divides by √r instead, which keeps the update's scale stable as r grows; it is opt-in here
(``rslora=True``), α/r stays the default.
"""
import math

import torch
from torch import nn


class LoRAError(ValueError):
    """A LoRA adapter cannot be built, loaded or applied as asked."""


def lora_scaling(alpha: float, r: int, rslora: bool = False) -> float:
    """The factor of B A: α/r (Hu et al. 2021), or α/√r with rsLoRA (Kalajdzievski 2023); see above."""
    return alpha / math.sqrt(r) if rslora else alpha / r


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``B @ A * scaling`` (α/r, or α/√r with rsLoRA)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False):
        super().__init__()
        if r <= 0:
            raise LoRAError(f"the LoRA rank r must be a positive integer, got {r}")
        self.base = base
        self.base.requires_grad_(False)
        self.r = r
        self.alpha = alpha
        self.rslora = rslora
        self.scaling = lora_scaling(alpha, r, rslora)
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=weight.dtype, device=weight.device))
        # A gets nn.Linear's own default init (as in loralib); B = 0 makes ΔW = 0 at the start.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout)
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """ΔW = B A · scaling, the same shape as the frozen weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:  # ΔW already sits inside base.weight
            return self.base(x)
        return self.base(x) + (self.lora_dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into the frozen weight, so evaluation runs one matmul instead of three.

        While merged the LoRA path is skipped, so A and B get no gradient: unmerge before training.
        """
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW out of the weight again, e.g. to continue training after an evaluation."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, rslora={self.rslora}, scaling={self.scaling:g}, merged={self.merged}"
