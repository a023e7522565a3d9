"""Conditional DDPM over residue feature vectors, conditioned on a per-protein graph context.

The conditioning enters every residual block as a FiLM modulation that is the *sum* of a time part and a context
part. Both parts are linear read-outs, so a sampler can tabulate the time part for all T steps and the context part for
every protein once, and the step loop runs no conditioning matmuls at all.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from siteaug.runtime.io import load_torch, save_torch


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
    schedule: str = "linear"
    clip_denoised: bool = True  # clamp the predicted x0 to the training rows' range at every step
    mlp_ratio: int = 1  # width of each residual block's inner layer, in units of hidden


# The config file's diffusion keys that set the model (the others set training and sampling).
SETTING_KEYS = tuple(f.name for f in fields(DiffusionConfig) if f.name != "feature_dim")


def diffusion_config(settings: dict, feature_dim: int) -> DiffusionConfig:
    """A DiffusionConfig from the config file's ``diffusion`` section."""
    return DiffusionConfig(feature_dim=feature_dim, **{k: settings[k] for k in SETTING_KEYS})


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


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int, mlp_ratio: int = 1):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_ratio * hidden), nn.SiLU(), nn.Linear(mlp_ratio * hidden, hidden))

    def forward(self, h: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class Denoiser(nn.Module):
    """ε-prediction network: residual MLP blocks with FiLM = time part + context part."""

    def __init__(self, feature_dim: int, hidden: int, blocks: int, context: int, mlp_ratio: int = 1):
        super().__init__()
        self.hidden, self.n_blocks = hidden, blocks
        self.time_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.time_film = nn.Linear(hidden, blocks * 2 * hidden)
        self.context_film = nn.Linear(context, blocks * 2 * hidden)
        self.input = nn.Linear(feature_dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, mlp_ratio) for _ in range(blocks))
        self.out_norm = nn.LayerNorm(hidden)
        self.output = nn.Linear(hidden, feature_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def time_modulation(self, t: torch.Tensor) -> torch.Tensor:
        """FiLM parameters of timesteps ``t`` (0-based), shape (len(t), blocks * 2 * hidden)."""
        return self.time_film(self.time_mlp(sinusoidal_embedding(t, self.hidden)))

    def context_modulation(self, context: torch.Tensor) -> torch.Tensor:
        return self.context_film(context)

    def forward_modulated(
        self, x: torch.Tensor, modulation: torch.Tensor, time_modulation: torch.Tensor | None = None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """ε̂ given FiLM parameters: per row, or with ``rows`` a table indexed by ``rows`` (row i uses
        ``modulation[rows[i]]``). ``time_modulation`` (one row, broadcast) is added slice by slice, so the sampler never
        materialises a (rows × blocks·2·hidden) sum at every step."""
        h = self.input(x)
        # With a table, the gather happens here, slice by slice: compiled, it fuses into the FiLM kernel and reads the
        # small per-protein table from cache instead of a (rows × blocks·2·hidden) tensor from memory.
        row_index = slice(None) if rows is None else rows
        for i, block in enumerate(self.blocks):
            offset = 2 * i * self.hidden
            scale = modulation[row_index, offset : offset + self.hidden]
            shift = modulation[row_index, offset + self.hidden : offset + 2 * self.hidden]
            if time_modulation is not None:
                scale = scale + time_modulation[offset : offset + self.hidden]
                shift = shift + time_modulation[offset + self.hidden : offset + 2 * self.hidden]
            h = block(h, scale, shift)
        return self.output(self.out_norm(h))

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.forward_modulated(x, self.time_modulation(t) + self.context_modulation(context))


class SiteDiffusion(nn.Module):
    """Context encoder + denoiser. Without the encoder (``with_encoder=False``) it samples from cached contexts."""

    def __init__(self, config: DiffusionConfig, with_encoder: bool = True):
        super().__init__()
        self.config = config
        self.encoder = None
        if with_encoder:
            # Imported here: torch-geometric takes seconds to import, which a sampling job reading cached contexts
            # would pay for nothing.
            from siteaug.features.graphs import ContextEncoder

            self.encoder = ContextEncoder(config.feature_dim, config.gnn_hidden, config.context, config.gnn_layers, config.gnn_heads)
        self.denoiser = Denoiser(config.feature_dim, config.hidden, config.blocks, config.context, config.mlp_ratio)
        self.register_buffer("alpha_bar", noise_schedule(config.schedule, config.timesteps).float())
        self.register_buffer("x0_low", torch.full((config.feature_dim,), -torch.inf))
        self.register_buffer("x0_high", torch.full((config.feature_dim,), torch.inf))

    def set_feature_range(self, rows: torch.Tensor, margin: float = 0.1) -> None:
        """Remember the per-feature range of the training rows (widened by ``margin``) for clamping x0 in sampling."""
        low, high = rows.min(dim=0).values, rows.max(dim=0).values
        pad = margin * (high - low)
        self.x0_low.copy_(low - pad)
        self.x0_high.copy_(high + pad)

    def loss(self, x0: torch.Tensor, context: torch.Tensor, generator: torch.Generator | None = None,
             real_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Standard ε-prediction MSE at uniformly drawn timesteps. ``real_rows`` (a one-element tensor), for a batch
        padded to a fixed size (a captured CUDA step): the mean over the first ``real_rows`` rows only, so that the
        padding rows after them change neither the loss nor any gradient."""
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        a = self.alpha_bar[t][:, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        squared = (self.denoiser(x_t, t, context) - noise) ** 2
        if real_rows is None:
            return torch.mean(squared)
        real = (torch.arange(x0.shape[0], device=x0.device) < real_rows).to(squared.dtype)
        return (squared.sum(dim=1) * real).sum() / (real_rows.to(squared.dtype).squeeze() * x0.shape[1])


SAMPLERS = ("ddpm", "ddim", "dpmpp_2m")


@dataclass
class SamplerPlan:
    """A sampler as data: the model timesteps to visit and the linear update after each evaluation.

    Every sampler here moves as x ← a_k·x + b_k·x̂0 + c_k·x̂0_prev + s_k·z, where x̂0 is the (clamped) prediction at
    step k and x̂0_prev the one before it, so one batched loop (and one captured CUDA graph) serves them all.
    """

    name: str
    timesteps: list[int]  # 0-based model timesteps, descending
    x0_from_xt: torch.Tensor  # x̂0 = x0_from_xt[k]·x − x0_from_eps[k]·ε̂
    x0_from_eps: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    noise: torch.Tensor  # s_k; zero for deterministic samplers and the last step

    def coefficients(self, like: torch.Tensor) -> torch.Tensor:
        """(steps, 6): x0_from_xt, x0_from_eps, a, b, c, noise of each step, on ``like``'s device and dtype."""
        return torch.stack([self.x0_from_xt, self.x0_from_eps, self.a, self.b, self.c, self.noise], dim=1).to(like)

    @property
    def stochastic(self) -> bool:
        return bool((self.noise > 0).any())


def trailing_timesteps(total: int, steps: int) -> list[int]:
    """Evenly spaced timesteps that always start at the last one ("trailing", Lin et al. 2024).

    The common "leading" spacing starts below T and never samples from pure noise.
    """
    if not 1 <= steps <= total:
        raise ValueError(f"sampler steps must be in 1..{total}, got {steps}")
    return sorted({int(round(v)) - 1 for v in np.arange(total, 0, -total / steps)}, reverse=True)


def sampler_plan(alpha_bar: torch.Tensor, sampler: str = "ddpm", steps: int | None = None) -> SamplerPlan:
    """Coefficients of DDPM (ancestral, posterior variance β̃), DDIM (η = 0) or DPM-Solver++(2M) in float64."""
    alpha_bar = alpha_bar.double().cpu()
    total = len(alpha_bar)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    if sampler == "ddpm" and steps not in (None, total):
        raise ValueError(f"the ancestral DDPM sampler visits all T={total} steps; use ddim or dpmpp_2m for fewer")
    timesteps = list(range(total - 1, -1, -1)) if steps is None else trailing_timesteps(total, steps)
    ab = alpha_bar[timesteps]
    ab_next = torch.cat([alpha_bar[timesteps[1:]], ab.new_ones(1)])  # ᾱ = 1 after the last step
    n = len(timesteps)
    a, b, c, noise = (torch.zeros(n, dtype=torch.float64) for _ in range(4))
    if sampler == "ddpm":
        alpha = ab / ab_next
        beta = 1 - alpha
        a = alpha.sqrt() * (1 - ab_next) / (1 - ab)
        b = ab_next.sqrt() * beta / (1 - ab)
        noise = (beta * (1 - ab_next) / (1 - ab)).sqrt()
    elif sampler == "ddim":
        a = ((1 - ab_next) / (1 - ab)).sqrt()
        b = ab_next.sqrt() - a * ab.sqrt()
    else:
        # DPM-Solver++(2M), data prediction (Lu et al. 2022), first order on the first and last step.
        sigma, alpha_t = (1 - ab).sqrt(), ab.sqrt()
        sigma_next, alpha_next = (1 - ab_next).sqrt(), ab_next.sqrt()
        lam = torch.log(alpha_t / sigma)
        lam_next = torch.log(alpha_next / sigma_next.clamp_min(1e-300))
        h = lam_next - lam
        a = sigma_next / sigma
        first = alpha_next * (1 - torch.exp(-h))  # multiplies D; exact when sigma_next = 0 (exp(-inf) = 0)
        for k in range(n):
            if k == 0 or k == n - 1:
                b[k] = first[k]
            else:
                r = h[k - 1] / h[k]
                b[k] = first[k] * (1 + 1 / (2 * r))
                c[k] = -first[k] / (2 * r)
    return SamplerPlan(
        sampler, timesteps, (1 / ab.sqrt()).float(), ((1 - ab) / ab).sqrt().float(), a.float(), b.float(), c.float(), noise.float()
    )


@torch.inference_mode()
def time_modulation_table(model: SiteDiffusion, dtype: torch.dtype | None = None) -> torch.Tensor:
    """FiLM read-outs of every timestep, (T, blocks*2*hidden): computed once per sampling run."""
    return model.denoiser.time_modulation(torch.arange(model.config.timesteps, device=model.alpha_bar.device)).to(dtype)


def sampler_step(network, x, table, time_row, rows, dtype, coefficients, low, high, x0_prev, z):
    """One sampler update: ε̂ from the network, x0 from ε̂ (clamped to [low, high] unless they are None), then
    x_next = a·x + b·x0 (+ c·x0_prev) (+ σ·z), with ``coefficients`` = (x0_from_xt, x0_from_eps, a, b, c, σ) of the step.

    A function of tensors only, so ``torch.compile`` can fuse the update into the network's last kernels: run
    separately, its dozen elementwise passes over the rows cost about a quarter of a compiled step.
    """
    if rows is None:
        eps = network(x.to(dtype), table, time_row)
    else:
        eps = network(x.to(dtype), table + time_row, None, rows)
    from_xt, from_eps, a, b, c, sd = coefficients.unbind()
    x0 = from_xt * x - from_eps * eps.to(x.dtype)
    if low is not None:
        x0 = torch.maximum(torch.minimum(x0, high), low)
    x_next = a * x + b * x0
    if x0_prev is not None:
        x_next = x_next + c * x0_prev
    if z is not None:
        x_next = x_next + sd * z
    return x_next, x0


@torch.inference_mode()
def sample(
    model: SiteDiffusion,
    context_modulation: torch.Tensor,
    x_T: torch.Tensor,
    noise: torch.Generator | torch.Tensor | None,
    sampler: str = "ddpm",
    steps: int | None = None,
    plan: SamplerPlan | None = None,
    time_table: torch.Tensor | None = None,
    network=None,
    rows: torch.Tensor | None = None,
    step=None,
    coefficients: torch.Tensor | None = None,
    on_step=None,
) -> torch.Tensor:
    """Run a sampler on a batch whose row i is conditioned by ``context_modulation[i]``, or, given ``rows``, by
    ``context_modulation[rows[i]]`` (a per-protein table: each step adds the time read-out to the table, not to every
    row); returns x0.

    ``noise`` is a generator (fresh z each step), a tensor (n_steps, *x_T.shape) of the z to use (tests use it to show
    that batching changes no row), or None for the default generator. ``network`` replaces
    ``model.denoiser.forward_modulated``; ``step`` replaces ``sampler_step`` (e.g. a torch.compile'd version of it,
    which then fuses the network with the update); ``coefficients`` is ``plan.coefficients`` made beforehand (a
    CUDA graph capture cannot copy it from the host). ``on_step(k, n)`` is called on the host after step k of n
    (progress; a captured graph replays without it).
    """
    plan = plan or sampler_plan(model.alpha_bar, sampler, steps)
    time_table = time_modulation_table(model) if time_table is None else time_table
    network = network or model.denoiser.forward_modulated
    step = step or sampler_step
    dtype = context_modulation.dtype  # the network's precision (bf16 copies get bf16 modulation)
    low, high = (model.x0_low.to(x_T.dtype), model.x0_high.to(x_T.dtype)) if model.config.clip_denoised else (None, None)
    # All coefficients in one device tensor made before the loop, and the branches decided on host copies, so no step
    # reads a tensor back from the device (and the loop can be captured as a CUDA graph).
    coefficients = plan.coefficients(x_T) if coefficients is None else coefficients
    uses_previous, noisy = (plan.c != 0).tolist(), (plan.noise > 0).tolist()
    x, x0_prev = x_T, None
    for k, t in enumerate(plan.timesteps):
        z = None
        if noisy[k]:
            z = noise[k] if isinstance(noise, torch.Tensor) else torch.randn(x.shape, device=x.device, generator=noise)
        x, x0_prev = step(network, x, context_modulation, time_table[t], rows, dtype, coefficients[k], low, high, x0_prev if uses_previous[k] else None, z)
        if on_step is not None:
            on_step(k + 1, len(plan.timesteps))
    return x


def save_model(model: SiteDiffusion, path, extra: dict | None = None) -> None:
    save_torch({"config": asdict(model.config), "state_dict": model.state_dict(), "extra": extra or {}}, path)


def load_model(path, device: str | torch.device = "cpu", with_encoder: bool = True) -> tuple[SiteDiffusion, dict]:
    """The saved model and its ``extra`` dict; ``with_encoder=False`` leaves out the context encoder (and its weights)."""
    payload = load_torch(path, device)  # a truncated file: one line naming it
    model = SiteDiffusion(DiffusionConfig(**payload["config"]), with_encoder)
    state = payload["state_dict"] if with_encoder else {k: v for k, v in payload["state_dict"].items() if not k.startswith("encoder.")}
    model.load_state_dict(state)
    return model.to(device).eval(), payload["extra"]
