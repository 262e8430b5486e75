"""The networks the VAE notebook gives you (CS236's ``v1`` encoder and decoder).

Conventions kept from CS236 so code written for that homework drops in: a diagonal
Gaussian is a mean ``m`` and a **variance** ``v``; ``enc.encode(x) -> (m, v)``;
``dec.decode(z) -> logits`` of Bernoulli pixels; the prior is ``N(z_prior_m, z_prior_v)``
held as ``(1,)``-shaped tensors; everything is float32. The loss itself
(``negative_elbo_bound``) is what the notebook asks you to write.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def gaussian_parameters(h: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``h`` in two halves along ``dim``: mean, and variance ``softplus(.) + 1e-8``."""
    m, h = torch.split(h, h.size(dim) // 2, dim=dim)
    return m, F.softplus(h) + 1e-8


class Encoder(nn.Module):
    """q(z | x): 784 -> 300 -> ELU -> 300 -> ELU -> 2 * z_dim."""

    def __init__(self, z_dim: int, x_dim: int = 784, hidden: int = 300):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(x_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden),
                                 nn.ELU(), nn.Linear(hidden, 2 * z_dim))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (batch, 784) -> mean and variance, each (batch, z_dim)."""
        return gaussian_parameters(self.net(x), dim=-1)


class Decoder(nn.Module):
    """p(x | z): z_dim -> 300 -> ELU -> 300 -> ELU -> 784 logits."""

    def __init__(self, z_dim: int, x_dim: int = 784, hidden: int = 300):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden),
                                 nn.ELU(), nn.Linear(hidden, x_dim))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` (batch, z_dim) -> logits (batch, 784)."""
        return self.net(z)


class VAEBase(nn.Module):
    """Encoder, decoder and a standard-normal prior; subclasses add ``negative_elbo_bound``.

    ``loss(x)`` returns ``(nelbo, summaries)`` as CS236's training loop expects.
    """

    def __init__(self, z_dim: int = 10, name: str = "vae"):
        super().__init__()
        self.name, self.z_dim = name, z_dim
        self.enc, self.dec = Encoder(z_dim), Decoder(z_dim)
        self.z_prior_m = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.z_prior_v = nn.Parameter(torch.ones(1), requires_grad=False)

    @property
    def z_prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z_prior_m, self.z_prior_v

    def negative_elbo_bound(self, x: torch.Tensor):
        raise NotImplementedError("the notebook's VAE class defines negative_elbo_bound")

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        nelbo, kl, rec = self.negative_elbo_bound(x)
        return nelbo, {"train/loss": nelbo, "gen/elbo": -nelbo, "gen/kl_z": kl, "gen/rec": rec}

    def sample_z(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch`` draws from the prior, (batch, z_dim)."""
        # Plain sampling, not the reparameterisation the notebook asks students to write.
        m, v = self.z_prior_m.expand(batch, self.z_dim), self.z_prior_v.expand(batch, self.z_dim)
        return torch.normal(m.detach(), v.detach().sqrt(), generator=generator)

    def compute_sigmoid_given(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means ``sigmoid(decode(z))``, (batch, 784)."""
        return torch.sigmoid(self.dec.decode(z))

    def sample_sigmoid(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.compute_sigmoid_given(self.sample_z(batch, generator))

    def sample_x(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Binary images drawn from the model, (batch, 784)."""
        return torch.bernoulli(self.sample_sigmoid(batch, generator), generator=generator)
