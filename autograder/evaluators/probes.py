"""Small networks that notebook 05's hidden tests probe the graded GAN losses with.

``TinyGenerator`` remembers every latent batch it is given, so a test can recompute the losses
for exactly those ``z``; ``TinyDiscriminator`` is linear with its logits scaled by ``scale``
(large scales make a confident discriminator). They live on the grading side: students never
need them.
"""
from __future__ import annotations

import torch


class TinyGenerator(torch.nn.Module):
    """(batch, 3) -> (batch, 1, 28, 28) in (0, 1); keeps every latent batch in self.seen."""

    def __init__(self):
        super().__init__()
        self.dim_z, self.lin, self.seen = 3, torch.nn.Linear(3, 784), []

    def forward(self, z):
        self.seen.append(z.detach().clone())
        return torch.sigmoid(self.lin(z)).reshape(-1, 1, 28, 28)


class TinyDiscriminator(torch.nn.Module):
    """(batch, 1, 28, 28) -> logits (batch,): a linear map times scale."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.lin, self.scale = torch.nn.Linear(784, 1), scale

    def forward(self, x):
        return self.scale * self.lin(x.reshape(len(x), -1)).squeeze(-1)


def tiny_logits(g, d, x_real, z):
    """Logits of the real batch and of the fakes g makes from z, in float64: ((batch,), (batch,))."""
    return d(x_real).double(), d(torch.sigmoid(g.lin(z)).reshape(-1, 1, 28, 28)).double()
