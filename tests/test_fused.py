"""The fused residual-block kernel (siteaug.fused), checked against the PyTorch ops it replaces.

Without a GPU, conftest.py has Triton's interpreter run the kernel's own code (tile loops, masks, the FiLM gather, both
products) on CPU tensors; with one, the compiled kernel runs on it. Both in fp32 with exact products: the
interpreter's ``tl.dot`` mishandles bf16 operands (NumPy has no bf16). The bf16 path and the speed are measured on a
GPU by bench/sampler.py and bench/precision_quality.py.
"""
from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton", reason="Triton is not installed (make test installs it; CUDA builds of torch bring it)")

import siteaug.fused as fused  # noqa: E402
from siteaug import generation  # noqa: E402
from siteaug.diffusion import DiffusionConfig, Denoiser, SiteDiffusion  # noqa: E402

DEVICE = torch.device("cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda")


def random_denoiser(hidden: int, mlp_ratio: int, seed: int = 0) -> Denoiser:
    torch.manual_seed(seed)
    denoiser = Denoiser(feature_dim=11, hidden=hidden, blocks=2, context=8, mlp_ratio=mlp_ratio).to(DEVICE).eval()
    with torch.no_grad():  # every weight non-trivial (the output layer starts at zero)
        for parameter in denoiser.parameters():
            parameter.normal_(std=0.3)
    return denoiser


@pytest.mark.parametrize("hidden, mlp_ratio, n_rows, tile", [(32, 1, 70, 16), (32, 2, 16, 16), (64, 1, 50, 32)])
def test_fused_network_equals_pytorch_ops(hidden, mlp_ratio, n_rows, tile):
    # n_rows 70 and 50 leave a partly filled last tile: the row mask must keep the padding out.
    denoiser = random_denoiser(hidden, mlp_ratio)
    table = torch.randn(5, 2 * 2 * hidden, device=DEVICE)
    rows = torch.randint(0, 5, (n_rows,), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    x = torch.randn(n_rows, 11, device=DEVICE)
    network = fused.FusedDenoiser(denoiser, torch.float32, block_m=tile, block_n=tile, block_k=tile, num_warps=4)
    with torch.inference_mode():
        expected = denoiser.forward_modulated(x, table, None, rows)
        got = network.forward_modulated(x, table, None, rows)
    assert expected.abs().max() > 1  # a real signal, not zeros compared with zeros
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_fused_network_uses_each_rows_protein():
    # Two proteins with different FiLM rows: swapping the row index must change the output of exactly those rows.
    denoiser = random_denoiser(32, 1)
    table = torch.randn(2, 2 * 2 * 32, device=DEVICE)
    x = torch.randn(4, 11, device=DEVICE)
    network = fused.FusedDenoiser(denoiser, torch.float32, block_m=16, block_n=16, block_k=16)
    with torch.inference_mode():
        first = network.forward_modulated(x, table, None, torch.tensor([0, 0, 1, 1], device=DEVICE))
        second = network.forward_modulated(x, table, None, torch.tensor([0, 1, 1, 1], device=DEVICE))
    torch.testing.assert_close(first[[0, 2, 3]], second[[0, 2, 3]])
    assert not torch.allclose(first[1], second[1])


def test_sampler_with_fused_blocks_matches_pytorch_path():
    torch.manual_seed(0)
    model = SiteDiffusion(DiffusionConfig(feature_dim=11, hidden=32, blocks=2, context=8, timesteps=20), with_encoder=False)
    model = model.to(DEVICE).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.denoiser.output.weight, std=0.1)
    table = model.denoiser.context_modulation(torch.randn(3, 8, device=DEVICE)).detach()
    rows = torch.arange(40, device=DEVICE) % 3
    runs = {}
    for use_fused in (False, True):
        runner = generation.ChunkedSampler(model, "ddpm", None, "fp32", DEVICE, cuda_graph=False, fused=use_fused)
        assert runner.fused is use_fused
        runs[use_fused] = runner.run(table, rows, 11, chunk_size=16, seed=5)
    torch.testing.assert_close(torch.from_numpy(runs[True]), torch.from_numpy(runs[False]), rtol=1e-4, atol=1e-4)


def test_fused_refuses_widths_it_cannot_tile():
    assert fused.unsupported_reason(512, 512) is None
    assert "power of two" in fused.unsupported_reason(96, 96)
    assert "inner width 8" in fused.unsupported_reason(32, 8)
    with pytest.raises(ValueError, match="cannot run this denoiser"):
        fused.FusedDenoiser(Denoiser(feature_dim=4, hidden=96, blocks=1, context=4))


def test_fused_setting(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    denoiser = Denoiser(feature_dim=4, hidden=32, blocks=1, context=4)
    cpu = torch.device("cpu")
    assert generation.fused_setting(False, cpu, "bf16", denoiser) is False
    assert generation.fused_setting("auto", cpu, "bf16", denoiser) is False  # no GPU: PyTorch ops, said in the log
    with pytest.raises(ValueError, match="needs a CUDA device"):
        generation.fused_setting(True, cpu, "bf16", denoiser)
    with pytest.raises(ValueError, match="power of two"):
        generation.fused_setting(True, cpu, "bf16", Denoiser(feature_dim=4, hidden=48, blocks=1, context=4))
    with pytest.raises(ValueError, match="true, false or 'auto'"):
        generation.fused_setting("yes", cpu, "bf16", denoiser)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert generation.fused_setting(True, cpu, "fp32", denoiser) is True
    assert generation.fused_setting("auto", cpu, "bf16", denoiser) is False  # auto: CUDA and bf16 only
