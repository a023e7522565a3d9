import pytest
import torch

from conftest import tiny_config, tiny_model
from siteaug.generative.diffusion import SiteDiffusion, load_model, noise_schedule, sample, sampler_plan, save_model, time_modulation_table

N, D = 5, 3


def sample_inputs(model, seed=1, n=N):
    g = torch.Generator().manual_seed(seed)
    context = torch.randn((n, model.config.context), generator=g)
    x_T = torch.randn((n, D), generator=g)
    noise = torch.randn((model.config.timesteps, n, D), generator=g)
    with torch.inference_mode():
        modulation = model.denoiser.context_modulation(context)
    return modulation, x_T, noise


@pytest.mark.parametrize("T", [10, 50, 200])
def test_cosine_schedule_reaches_noise(T):
    alpha_bar = noise_schedule("cosine", T)
    assert alpha_bar.shape == (T,) and alpha_bar.dtype == torch.float64
    assert alpha_bar[-1] < 1e-3 and alpha_bar[0] > 0.9
    assert (alpha_bar[1:] < alpha_bar[:-1]).all()


def test_linear_schedule_is_rescaled_to_T():
    assert noise_schedule("linear", 200)[-1] < 1e-3
    assert noise_schedule("linear", 10)[-1] < 1e-3


def test_schedule_that_keeps_signal_is_refused():
    # A single linear step (beta = 0.1) leaves alpha_bar_T = 0.9: the end-of-schedule check must refuse it.
    with pytest.raises(ValueError, match="must be < 1e-3"):
        noise_schedule("linear", 1)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        noise_schedule("sigmoid", 10)


def test_loss_finite_and_decreasing():
    torch.manual_seed(0)
    model = SiteDiffusion(tiny_config(timesteps=20))
    contexts = torch.randn(2, model.config.context)
    which = torch.arange(256) % 2
    x0 = torch.where(which[:, None] == 0, torch.tensor([1.0, -1.0, 0.5]), torch.tensor([-1.0, 1.0, -0.5]))

    def fixed_loss():
        with torch.no_grad():
            return model.loss(x0, contexts[which], torch.Generator().manual_seed(123)).item()

    before = fixed_loss()
    optimiser = torch.optim.Adam(model.denoiser.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        loss = model.loss(x0, contexts[which], g)
        assert torch.isfinite(loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert fixed_loss() < 0.7 * before


def test_batched_equals_per_row(model):
    model.set_feature_range(torch.tensor([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]]))  # keeps the rows O(1)
    modulation, x_T, noise = sample_inputs(model)
    batched = sample(model, modulation, x_T, noise)
    assert batched.shape == (N, D) and torch.isfinite(batched).all()
    for i in range(N):
        alone = sample(model, modulation[i : i + 1], x_T[i : i + 1], noise[:, i : i + 1])
        torch.testing.assert_close(alone, batched[i : i + 1], atol=1e-5, rtol=0)
    # rows really are conditioned on their own context: swapping contexts changes the output
    assert not torch.allclose(sample(model, modulation.flip(0), x_T, noise), batched, atol=1e-4)


def test_table_lookup_equals_per_row_modulation(model):
    """The generation path passes a per-protein table and row indices; it must give the per-row path's samples."""
    model.set_feature_range(torch.tensor([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]]))
    modulation, x_T, noise = sample_inputs(model)
    table = modulation[:3]
    rows = torch.arange(N) % 3
    torch.testing.assert_close(sample(model, table, x_T, noise, rows=rows), sample(model, table[rows], x_T, noise), atol=1e-6, rtol=0)


def test_cached_time_modulation(model):
    table = time_modulation_table(model)
    assert table.shape == (model.config.timesteps, 2 * 2 * 16)
    with torch.inference_mode():
        for t in range(model.config.timesteps):
            recomputed = model.denoiser.time_modulation(torch.tensor([t]))[0]
            torch.testing.assert_close(table[t], recomputed, atol=1e-6, rtol=1e-5)


def test_last_step_adds_nothing(model):
    plan = sampler_plan(model.alpha_bar, "ddpm")
    assert plan.noise[-1] == 0 and plan.a[-1] == 0 and plan.b[-1] == 1
    assert (plan.noise[:-1] > 0).all()


def test_clipping_bounds_the_output():
    model = tiny_model()
    with torch.no_grad():
        model.denoiser.output.weight.mul_(100)  # a wild denoiser
    model.set_feature_range(torch.tensor([[0.0, -1.0, 2.0], [1.0, 1.0, 4.0]]), margin=0.1)
    torch.testing.assert_close(model.x0_low, torch.tensor([-0.1, -1.2, 1.8]))
    torch.testing.assert_close(model.x0_high, torch.tensor([1.1, 1.2, 4.2]))
    modulation, x_T, noise = sample_inputs(model, n=50)
    clipped = sample(model, modulation, x_T, noise)
    assert torch.isfinite(clipped).all()
    assert (clipped >= model.x0_low - 1e-5).all() and (clipped <= model.x0_high + 1e-5).all()
    model.config.clip_denoised = False
    unclipped = sample(model, modulation, x_T, noise)
    assert ((unclipped < model.x0_low) | (unclipped > model.x0_high)).any()


def test_generator_sampling_is_seeded(model):
    modulation, x_T, _ = sample_inputs(model)
    a = sample(model, modulation, x_T, torch.Generator().manual_seed(5))
    b = sample(model, modulation, x_T, torch.Generator().manual_seed(5))
    c = sample(model, modulation, x_T, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_save_load_roundtrip(model, tmp_path):
    model.set_feature_range(torch.randn(20, D))
    save_model(model, tmp_path / "model.pt", extra={"steps": 3})
    assert set(torch.load(tmp_path / "model.pt", weights_only=True)) == {"config", "state_dict", "extra"}
    loaded, extra = load_model(tmp_path / "model.pt")
    assert extra == {"steps": 3} and loaded.config == model.config and not loaded.training
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    modulation, x_T, noise = sample_inputs(model)
    assert torch.equal(sample(loaded, modulation, x_T, noise), sample(model, modulation, x_T, noise))
