"""Samplers checked against a denoiser whose answer is known exactly: Gaussian data N(mu, s^2).

For such data the optimal ε-prediction is E[ε | x_t] = sqrt(1 - ᾱ)(x_t - sqrt(ᾱ) mu) / (ᾱ s² + 1 - ᾱ), so a correct
sampler must turn N(0, I) back into N(mu, s²); a wrong coefficient shows up as a wrong mean or spread.
"""
import shutil
from types import SimpleNamespace

import pytest
import torch

from conftest import tiny_model
from siteaug.generative.diffusion import noise_schedule, sample, sampler_plan, sampler_step, trailing_timesteps

MU = torch.tensor([1.5, -0.5])
SD = torch.tensor([0.5, 2.0])
T = 200


class GaussianDenoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # gives the sampler a parameter dtype to read

    def forward_modulated(self, x, modulation, time_modulation):
        ab = time_modulation[:1]  # the fake time table carries ᾱ_t itself
        return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * SD**2 + 1 - ab)


def gaussian_model():
    alpha_bar = noise_schedule("cosine", T).float()
    model = SimpleNamespace(
        denoiser=GaussianDenoiser(), alpha_bar=alpha_bar, config=SimpleNamespace(clip_denoised=False, timesteps=T),
        x0_low=torch.full((2,), -torch.inf), x0_high=torch.full((2,), torch.inf),
    )
    return model, alpha_bar[:, None]


def draw(sampler, steps, n=40_000):
    model, time_table = gaussian_model()
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn((n, 2), generator=gen)
    return sample(model, torch.zeros((n, 1)), x_T, gen, sampler=sampler, steps=steps, time_table=time_table)


@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddim", 50), ("ddim", 200), ("dpmpp_2m", 20), ("dpmpp_2m", 50)])
def test_sampler_recovers_the_data_distribution(sampler, steps):
    x = draw(sampler, steps)
    torch.testing.assert_close(x.mean(0), MU, atol=0.05, rtol=0)
    torch.testing.assert_close(x.std(0), SD, atol=0, rtol=0.04)


def spread_error(sampler, steps):
    return float(((draw(sampler, steps).std(0) - SD).abs() / SD).max())


def test_second_order_solver_beats_ddim_at_few_steps():
    assert spread_error("dpmpp_2m", 5) < spread_error("ddim", 5)


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m"])
def test_error_shrinks_with_more_steps(sampler):
    assert spread_error(sampler, 40) < spread_error(sampler, 10) < spread_error(sampler, 4)


def test_trailing_spacing_starts_from_pure_noise():
    assert trailing_timesteps(200, 10)[0] == 199
    assert trailing_timesteps(200, 10)[-1] < 20
    assert trailing_timesteps(200, 200) == list(range(199, -1, -1))
    with pytest.raises(ValueError):
        trailing_timesteps(200, 0)


def test_deterministic_samplers_draw_no_noise_and_ddpm_refuses_fewer_steps():
    alpha_bar = noise_schedule("cosine", T)
    assert not sampler_plan(alpha_bar, "ddim", 20).stochastic
    assert not sampler_plan(alpha_bar, "dpmpp_2m", 20).stochastic
    assert sampler_plan(alpha_bar, "ddpm").stochastic
    with pytest.raises(ValueError, match="all T"):
        sampler_plan(alpha_bar, "ddpm", 20)
    with pytest.raises(ValueError, match="unknown sampler"):
        sampler_plan(alpha_bar, "euler")


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="torch.compile on CPU needs a C++ compiler")
@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("dpmpp_2m", 4)])
def test_compiled_step_gives_the_eager_rows(sampler, steps):
    # The step the GPU sampler compiles (network and update fused) must compute what the eager loop does, in every
    # variant the loop calls: with and without noise (DDPM's last step), with and without the previous x0 (the solver).
    model = tiny_model()
    table = model.denoiser.context_modulation(torch.randn(3, 8)).detach()
    rows, x_T = torch.arange(40) % 3, torch.randn(40, 3)
    noise = torch.randn(model.config.timesteps, 40, 3)
    compiled = torch.compile(sampler_step, dynamic=False)
    with torch.inference_mode():
        eager = sample(model, table, x_T, noise, sampler, steps, rows=rows)
        fused = sample(model, table, x_T, noise, sampler, steps, rows=rows, step=compiled)
    torch.testing.assert_close(fused, eager, rtol=1e-4, atol=1e-5 * float(eager.abs().max()))
