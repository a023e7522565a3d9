"""Sampler throughput: candidate-steps per second (one candidate through one denoising step).

    python bench/sampler.py [--device cuda] [--json OUT.json] [--batches 65536 262144] [--quick]

Measures, in one process and on the same model (hidden 512, 4 blocks, context 256, 96 features, T=200 by default):
- ``original``: the users' script style: a loop over proteins, each a batch of its own candidates, the time embedding
  and conditioning recomputed at every step, eager fp32;
- ``eager``, ``graph`` (the whole chunk loop captured as one CUDA graph) and ``compiled+graph`` (the network through
  torch.compile, then captured) for fp32 / tf32 / bf16 at each batch size.
Every fast path is checked against the fp32 eager reference on the same noise (relative error of the samples).
On CUDA it also measures, at the largest batch, one network evaluation alone in bf16: eager, compiled, compiled with
max-autotune (Triton matrix-product templates with the bias, SiLU and residual fused into them), and the bound set by
the matrix products alone (the same products through cuBLAS, back to back, with nothing between them).
Prints tables and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from siteaug.generative.diffusion import DiffusionConfig, SiteDiffusion, sample, sampler_plan
from siteaug.generative.generation import ChunkedSampler


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int = 3) -> float:
    """Median wall seconds of ``fn`` after one warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.inference_mode()
def original_style(model: SiteDiffusion, contexts: torch.Tensor, per_protein: int, features: int, device) -> None:
    """Per-protein batches; the time embedding and both FiLM read-outs are recomputed at every step."""
    plan = sampler_plan(model.alpha_bar, "ddpm")
    for context in contexts:
        x = torch.randn((per_protein, features), device=device)
        ctx = context.expand(per_protein, -1)
        for k, t in enumerate(plan.timesteps):
            eps = model.denoiser(x, torch.full((per_protein,), t, device=device), ctx)
            x0 = plan.x0_from_xt[k].item() * x - plan.x0_from_eps[k].item() * eps
            x = plan.a[k].item() * x + plan.b[k].item() * x0
            if plan.noise[k] > 0:
                x = x + plan.noise[k].item() * torch.randn_like(x)


def step_flops(batch: int, features: int, hidden: int, blocks: int, inner: int) -> float:
    return 2.0 * batch * (2 * features * hidden + blocks * 2 * hidden * inner)


@torch.inference_mode()
def network_only(model: SiteDiffusion, table: torch.Tensor, batch: int, features: int, device) -> list[dict]:
    """One network evaluation (no sampler update) in bf16: eager, compiled, max-autotune, cuBLAS products alone."""
    import copy

    denoiser = model.denoiser
    hidden, blocks, inner = denoiser.hidden, denoiser.n_blocks, denoiser.blocks[0].mlp[0].out_features
    flops = step_flops(batch, features, hidden, blocks, inner)
    x = torch.randn((batch, features), device=device, dtype=torch.bfloat16)
    rows_index = torch.arange(batch, device=device) % table.shape[0]
    table16 = table.to(torch.bfloat16)
    bf16 = copy.deepcopy(denoiser).to(torch.bfloat16)
    candidates = {
        "eager": bf16.forward_modulated,
        "compiled": torch.compile(bf16.forward_modulated, dynamic=False),
        "compiled max-autotune": torch.compile(bf16.forward_modulated, dynamic=False, mode="max-autotune-no-cudagraphs"),
    }
    reference = bf16.forward_modulated(x, table16, None, rows_index).float()
    results = []
    for name, net in candidates.items():
        try:
            seconds = timed(lambda: [net(x, table16, None, rows_index) for _ in range(10)], device) / 10
            out = net(x, table16, None, rows_index).float()
        except Exception as error:  # e.g. max-autotune finding no template that fits: report it, measure the rest
            print(f"{name}: failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}", flush=True)
            continue
        row = {"network": name, "batch": batch, "seconds": seconds, "rows_per_s": batch / seconds,
               "tflops": flops / seconds / 1e12, "rel_diff_vs_eager_bf16": float((out - reference).norm() / reference.norm())}
        results.append(row)
        print(f"network {name:28s}: {batch / seconds / 1e6:8.2f} M rows/s ({flops / seconds / 1e12:6.1f} TFLOP/s), "
              f"rel. diff vs eager bf16 {row['rel_diff_vs_eager_bf16']:.1e}", flush=True)
    # The bound of the matrix products alone: the same GEMMs through cuBLAS, back to back, nothing else.
    w_in = torch.randn((hidden, features), device=device, dtype=torch.bfloat16)
    w1 = torch.randn((inner, hidden), device=device, dtype=torch.bfloat16)
    w2 = torch.randn((hidden, inner), device=device, dtype=torch.bfloat16)
    w_out = torch.randn((features, hidden), device=device, dtype=torch.bfloat16)
    h = torch.empty((batch, hidden), device=device, dtype=torch.bfloat16)
    v = torch.empty((batch, inner), device=device, dtype=torch.bfloat16)
    o = torch.empty((batch, features), device=device, dtype=torch.bfloat16)

    def products():
        torch.mm(x, w_in.T, out=h)
        for _ in range(blocks):
            torch.mm(h, w1.T, out=v)
            torch.mm(v, w2.T, out=h)
        torch.mm(h, w_out.T, out=o)

    seconds = timed(lambda: [products() for _ in range(10)], device) / 10
    results.append({"network": "matrix products alone (cuBLAS)", "batch": batch, "seconds": seconds,
                    "rows_per_s": batch / seconds, "tflops": flops / seconds / 1e12})
    print(f"network {'matrix products alone (cuBLAS)':28s}: {batch / seconds / 1e6:8.2f} M rows/s ({flops / seconds / 1e12:6.1f} TFLOP/s)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[16384, 65536, 262144])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--features", type=int, default=96)
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--proteins", type=int, default=3, help="proteins timed for the original-style baseline")
    parser.add_argument("--per-protein", type=int, default=11_500, help="candidates per protein (DNA-573 at 90 %%, 5x)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--json", default="sampler_bench.json")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.hidden, args.timesteps, args.per_protein, args.proteins = [256, 1024], 64, 20, 200, 2
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = DiffusionConfig(feature_dim=args.features, hidden=args.hidden, blocks=args.blocks, timesteps=args.timesteps)
    model = SiteDiffusion(config).to(device).eval()
    with torch.no_grad():  # a trained-looking output layer: the zero init would make every step trivial
        torch.nn.init.normal_(model.denoiser.output.weight, std=0.02)
    model.set_feature_range(torch.randn(1000, args.features, device=device) * 3)
    rows = []
    n_proteins = 64
    contexts = torch.randn((n_proteins, config.context), device=device)

    seconds = timed(lambda: original_style(model, contexts[: args.proteins], args.per_protein, args.features, device), device, repeats=1)
    candidate_steps = args.proteins * args.per_protein * args.timesteps
    rows.append({"mode": "original", "precision": "fp32", "batch": args.per_protein, "seconds": seconds,
                 "candidate_steps_per_s": candidate_steps / seconds, "rel_error": None})

    with torch.inference_mode():
        modulation_all = model.denoiser.context_modulation(contexts)
    for batch in args.batches:
        row_protein = torch.arange(batch, device=device) % n_proteins
        reference = None
        for precision in args.precisions:
            modes = ["eager"]
            if device.type == "cuda":
                modes += ["graph", "compiled+graph"]
            for mode in modes:
                runner = ChunkedSampler(model, "ddpm", None, precision, device, cuda_graph=mode != "eager", compile=mode == "compiled+graph")
                run = lambda: runner.run(modulation_all, row_protein, args.features, batch, seed=7)  # noqa: E731
                seconds = timed(run, device)
                out = torch.from_numpy(run())
                if reference is None:
                    reference = out
                rel = float((out - reference).norm() / reference.norm())
                rows.append({"mode": mode, "precision": precision, "batch": batch, "seconds": seconds,
                             "candidate_steps_per_s": batch * args.timesteps / seconds, "rel_error": rel})
                print(f"{mode:14s} {precision:5s} batch {batch:7d}: {batch * args.timesteps / seconds / 1e6:8.2f} M candidate-steps/s, rel. error vs fp32 eager {rel:.2e}", flush=True)
                del runner
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    network_rows = network_only(model, modulation_all, max(args.batches), args.features, device) if device.type == "cuda" else []

    # Batched vs one-protein-at-a-time on identical noise: the same rows.
    with torch.inference_mode():
        n, steps = 8, len(sampler_plan(model.alpha_bar, "ddpm").timesteps)
        x_T = torch.randn((n, args.features), device=device)
        noise = torch.randn((steps, n, args.features), device=device)
        batched = sample(model, modulation_all[:n], x_T, noise)
        alone = torch.cat([sample(model, modulation_all[i : i + 1], x_T[i : i + 1], noise[:, i : i + 1]) for i in range(n)])
        batch_vs_alone = float((batched - alone).norm() / alone.norm())

    print(f"\nmodel: hidden {args.hidden}, {args.blocks} blocks, {args.features} features, T={args.timesteps}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    print(f"{'mode':14s} {'prec':5s} {'batch':>8s} {'M cand-steps/s':>15s} {'rel err':>9s}")
    for r in rows:
        err = "-" if r["rel_error"] is None else f"{r['rel_error']:.1e}"
        print(f"{r['mode']:14s} {r['precision']:5s} {r['batch']:8d} {r['candidate_steps_per_s'] / 1e6:15.2f} {err:>9s}")
    print(f"batched vs per-protein on the same noise: relative difference {batch_vs_alone:.1e}")
    with open(args.json, "w") as handle:
        json.dump({"device": str(device), "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                   "args": vars(args), "rows": rows, "network_only": network_rows, "batched_vs_per_protein_rel_diff": batch_vs_alone}, handle, indent=2)


if __name__ == "__main__":
    main()
