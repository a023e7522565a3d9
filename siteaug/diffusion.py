"""Conditional DDPM over residue feature vectors, conditioned on a per-protein graph context.

The conditioning enters every residual block as a FiLM modulation that is the *sum* of a time part and a context
part. Both parts are linear read-outs, so a sampler can tabulate the time part for all T steps and the context part for
every protein once, and the step loop runs no conditioning matmuls at all.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv
from torch_geometric.nn.aggr import AttentionalAggregation

from .io import atomic_path


@dataclass
class DiffusionConfig:
    feature_dim: int
    hidden: int = 512
    blocks: int = 4
    context: int = 256
    gnn_hidden: int = 128
    gnn_layers: int = 2
    gnn_heads: int = 4
    timesteps: int = 200
    schedule: str = "cosine"
    clip_denoised: bool = True  # clamp the predicted x0 to the training rows' range at every step


def noise_schedule(name: str, timesteps: int) -> torch.Tensor:
    """Return ᾱ_t for t = 1..T (float64). Refuses a schedule that does not reach (near) pure noise."""
    if name == "cosine":
        # Nichol & Dhariwal (2021); β clipped at 0.999 as in the paper.
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    elif name == "linear":
        betas = torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64) * (1000 / timesteps)
        betas = betas.clamp(max=0.999)
    else:
        raise ValueError(f"unknown noise schedule {name!r}")
    alpha_bar = torch.cumprod(1 - betas, dim=0)
    if not alpha_bar[-1] < 1e-3:
        raise ValueError(
            f"schedule {name!r} with T={timesteps} ends at alpha_bar_T={alpha_bar[-1]:.3g}; it must be < 1e-3 or every "
            "sample starts from a biased prior"
        )
    return alpha_bar


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ContextEncoder(nn.Module):
    """GATv2 layers over the residue graph, then attention pooling to one context vector per protein."""

    def __init__(self, in_dim: int, hidden: int, context: int, layers: int, heads: int):
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(GATv2Conv(hidden, hidden // heads, heads=heads) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.pool = AttentionalAggregation(gate_nn=nn.Linear(hidden, 1), nn=nn.Linear(hidden, context))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        h = self.input(x)
        for conv, norm in zip(self.convs, self.norms):
            h = h + conv(norm(h), edge_index).relu()
        return self.pool(h, batch, dim_size=num_graphs)


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))

    def forward(self, h: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class Denoiser(nn.Module):
    """ε-prediction network: residual MLP blocks with FiLM = time part + context part."""

    def __init__(self, feature_dim: int, hidden: int, blocks: int, context: int):
        super().__init__()
        self.hidden, self.n_blocks = hidden, blocks
        self.time_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.time_film = nn.Linear(hidden, blocks * 2 * hidden)
        self.context_film = nn.Linear(context, blocks * 2 * hidden)
        self.input = nn.Linear(feature_dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden) for _ in range(blocks))
        self.out_norm = nn.LayerNorm(hidden)
        self.output = nn.Linear(hidden, feature_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def time_modulation(self, t: torch.Tensor) -> torch.Tensor:
        """FiLM parameters of timesteps ``t`` (0-based), shape (len(t), blocks * 2 * hidden)."""
        return self.time_film(self.time_mlp(sinusoidal_embedding(t, self.hidden)))

    def context_modulation(self, context: torch.Tensor) -> torch.Tensor:
        return self.context_film(context)

    def forward_modulated(self, x: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for i, block in enumerate(self.blocks):
            offset = 2 * i * self.hidden
            scale = modulation[:, offset : offset + self.hidden]
            shift = modulation[:, offset + self.hidden : offset + 2 * self.hidden]
            h = block(h, scale, shift)
        return self.output(self.out_norm(h))

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.forward_modulated(x, self.time_modulation(t) + self.context_modulation(context))


class SiteDiffusion(nn.Module):
    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.encoder = ContextEncoder(config.feature_dim, config.gnn_hidden, config.context, config.gnn_layers, config.gnn_heads)
        self.denoiser = Denoiser(config.feature_dim, config.hidden, config.blocks, config.context)
        self.register_buffer("alpha_bar", noise_schedule(config.schedule, config.timesteps).float())
        self.register_buffer("x0_low", torch.full((config.feature_dim,), -torch.inf))
        self.register_buffer("x0_high", torch.full((config.feature_dim,), torch.inf))

    def set_feature_range(self, rows: torch.Tensor, margin: float = 0.1) -> None:
        """Remember the per-feature range of the training rows (widened by ``margin``) for clamping x0 in sampling."""
        low, high = rows.min(dim=0).values, rows.max(dim=0).values
        pad = margin * (high - low)
        self.x0_low.copy_(low - pad)
        self.x0_high.copy_(high + pad)

    def loss(self, x0: torch.Tensor, context: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard ε-prediction MSE at uniformly drawn timesteps."""
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        a = self.alpha_bar[t][:, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        return torch.mean((self.denoiser(x_t, t, context) - noise) ** 2)


@dataclass
class SamplerTables:
    """Everything a DDPM step needs that does not depend on the rows: computed once per sampling run."""

    time_modulation: torch.Tensor  # (T, blocks*2*hidden)
    x0_from_xt: torch.Tensor  # x̂0 = x0_from_xt·x_t − x0_from_eps·ε̂, each (T,)
    x0_from_eps: torch.Tensor
    mean_x0: torch.Tensor  # posterior mean = mean_x0·x̂0 + mean_xt·x_t
    mean_xt: torch.Tensor
    sigma: torch.Tensor  # posterior standard deviation, sqrt(β̃_t)


@torch.inference_mode()
def sampler_tables(model: SiteDiffusion) -> SamplerTables:
    """Ancestral DDPM (Ho et al. 2020) through the predicted x0, with the posterior variance β̃_t.

    Going through x̂0 lets the sampler clamp it to the data range: at the last cosine steps 1/sqrt(α_t) reaches ~30,
    and the ε-form update would amplify the network's error by that factor.
    """
    alpha_bar = model.alpha_bar.double()
    prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    alpha = alpha_bar / prev
    beta = 1 - alpha
    steps = torch.arange(model.config.timesteps, device=alpha_bar.device)
    return SamplerTables(
        time_modulation=model.denoiser.time_modulation(steps),
        x0_from_xt=(1 / alpha_bar.sqrt()).float(),
        x0_from_eps=((1 - alpha_bar) / alpha_bar).sqrt().float(),
        mean_x0=(prev.sqrt() * beta / (1 - alpha_bar)).float(),
        mean_xt=(alpha.sqrt() * (1 - prev) / (1 - alpha_bar)).float(),
        sigma=(beta * (1 - prev) / (1 - alpha_bar)).sqrt().float(),
    )


@torch.inference_mode()
def ddpm_sample(
    model: SiteDiffusion, context_modulation: torch.Tensor, x_T: torch.Tensor, noise: torch.Generator | torch.Tensor, tables: SamplerTables | None = None
) -> torch.Tensor:
    """Run all T reverse steps on a batch whose row i is conditioned by ``context_modulation[i]``.

    ``noise`` is either a generator (fresh z each step) or a tensor (T, *x_T.shape) of the z to use, which is how tests
    check that batching does not change any row.
    """
    tables = tables or sampler_tables(model)
    clip = model.config.clip_denoised
    x = x_T
    for t in range(model.config.timesteps - 1, -1, -1):
        eps = model.denoiser.forward_modulated(x, context_modulation + tables.time_modulation[t])
        x0 = tables.x0_from_xt[t] * x - tables.x0_from_eps[t] * eps
        if clip:
            x0 = torch.maximum(torch.minimum(x0, model.x0_high), model.x0_low)
        x = tables.mean_x0[t] * x0 + tables.mean_xt[t] * x
        if t > 0:
            z = noise[t] if isinstance(noise, torch.Tensor) else torch.randn(x.shape, device=x.device, generator=noise)
            x = x + tables.sigma[t] * z
    return x


def save_model(model: SiteDiffusion, path, extra: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        torch.save({"config": asdict(model.config), "state_dict": model.state_dict(), "extra": extra or {}}, tmp)


def load_model(path, device: str | torch.device = "cpu") -> tuple[SiteDiffusion, dict]:
    payload = torch.load(path, map_location=device, weights_only=True)
    model = SiteDiffusion(DiffusionConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload["extra"]
