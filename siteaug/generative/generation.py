"""Batched generation of candidate positives for one shard of training proteins."""
from __future__ import annotations

import contextlib
import copy
import logging
import sys
import time

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from siteaug.generative.columns import ColumnCodec
from siteaug.generative.diffusion import SiteDiffusion, sample, sampler_plan, sampler_step, time_modulation_table
from siteaug.runtime.tables import is_feature_column

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "tf32", "bf16")


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device):
    """fp32 everywhere; on CUDA, tf32 lets float32 matmuls use TF32 (bf16 is handled by casting the denoiser)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    previous = torch.get_float32_matmul_precision()
    cuda = torch.device(device).type == "cuda"
    torch.set_float32_matmul_precision("high" if cuda and precision == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


# torch.compile of the sampler step costs about 15 s in a fresh process (importing the compiler stack and compiling
# the step's two variants; DDPM stage on 1 x H100, bench/RESULTS.md). Per candidate-step it saves about 2.4e-8 s in
# bf16, the default (23.0 -> 51.7 M candidate-steps/s, bench/sampler.py, same card), and 3.8e-8 s in tf32
# (14.0 -> 29.6): it pays from about 6e8 candidate-steps in bf16 (4e8 in tf32).
COMPILE_PAYS_FROM = 6e8


def compile_setting(compile: bool | str, device: torch.device) -> bool | str:
    """The compile option on ``device``: as given on CUDA; off on CPU, where the compile time outweighs what fusion
    saves."""
    if compile not in (True, False, "auto"):
        raise ValueError(f"compile must be true, false or 'auto', got {compile!r}")
    return compile if torch.device(device).type == "cuda" else False


def compile_pays(compile: bool | str, candidate_steps: int) -> bool:
    """Whether to compile the sampler step: always for True, for "auto" only when the run is long enough to win back
    the compile time."""
    return compile is True or (compile == "auto" and candidate_steps >= COMPILE_PAYS_FROM)


def chunk_seed(seed: int, chunk_index: int) -> int:
    return (seed * 1_000_003 + chunk_index) % (2**63)


class ChunkCopier:
    """Moves finished chunks (features × rows, on the device) into the host array while the device samples the next.

    On CUDA each chunk goes by an asynchronous copy into one of two pinned buffers, and the host empties the other
    one meanwhile, so the card does not wait for host copies between chunks. On CPU a chunk is copied at once.
    """

    def __init__(self, out: np.ndarray, device: torch.device):
        self.out, self.cuda = out, device.type == "cuda"
        self.buffers, self.turn, self.pending = [], 0, None

    def put(self, chunk: torch.Tensor, start: int) -> None:
        if not self.cuda:
            self.out[:, start : start + chunk.shape[1]] = chunk.numpy()
            return
        if not self.buffers or self.buffers[0].shape[1] < chunk.shape[1]:
            self.flush()
            self.buffers = [torch.empty(chunk.shape, dtype=chunk.dtype, pin_memory=True) for _ in range(2)]
        buffer = self.buffers[self.turn][:, : chunk.shape[1]]
        self.turn ^= 1
        buffer.copy_(chunk, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        self.flush()  # the previous chunk, whose copy the device finished while this chunk was sampled
        self.pending = (copied, buffer, start)

    def flush(self) -> None:
        if self.pending is not None:
            copied, buffer, start = self.pending
            copied.synchronize()
            self.out[:, start : start + buffer.shape[1]] = buffer.numpy()
            self.pending = None


class ChunkedSampler:
    """Samples rows chunk by chunk with a fixed plan; on CUDA the whole chunk loop can be one captured CUDA graph.

    The noise of chunk i comes from the device's default generator seeded with ``chunk_seed(seed, i)``, in eager mode and
    in graph replay alike, so the two paths draw the same numbers and a run is reproducible for a given chunk size.
    """

    def __init__(self, model: SiteDiffusion, sampler: str, steps: int | None, precision: str, device, cuda_graph: bool, compile: bool | str = False):
        self.device = torch.device(device)
        self.precision = precision
        self.bf16 = precision == "bf16" and self.device.type == "cuda"
        self.model = model
        self.dtype = torch.bfloat16 if self.bf16 else torch.float32
        # bf16 runs a bf16 copy of the network (x and the update stay float32): cheaper than autocast's per-op casts.
        denoiser = copy.deepcopy(model.denoiser).to(torch.bfloat16) if self.bf16 else model.denoiser
        self.plan = sampler_plan(model.alpha_bar, sampler, steps)
        self.coefficients = self.plan.coefficients(model.alpha_bar)
        with matmul_precision(precision, self.device):
            self.time_table = time_modulation_table(model, self.dtype)
        self.compile = compile_setting(compile, self.device)
        self.network = denoiser.forward_modulated
        self.step = sampler_step
        self.use_graph = cuda_graph and self.device.type == "cuda"
        self.graph = None
        self.on_step = None  # progress after each sampler step of an eager chunk (set by run)
        self.table_source = None

    def _fork_rng(self):
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def _seed(self, value: int) -> None:
        if self.device.type == "cuda":
            torch.cuda.manual_seed(value)
        else:
            torch.manual_seed(value)

    def _eager(self, rows: torch.Tensor, n_features: int, on_step=None) -> torch.Tensor:
        x_T = torch.randn((rows.shape[0], n_features), device=self.device)
        return sample(self.model, self.table, x_T, None, plan=self.plan, time_table=self.time_table, network=self.network, rows=rows,
                      step=self.step, coefficients=self.coefficients, on_step=on_step)

    def _capture(self, rows: int, n_features: int) -> None:
        self.static_rows = torch.zeros(rows, device=self.device, dtype=torch.long)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._eager(self.static_rows, n_features)  # warm-up: cuBLAS handles and workspaces
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = self._eager(self.static_rows, n_features)
        self.graph_rows = rows

    @torch.inference_mode()
    def run(self, context_modulation: torch.Tensor, row_protein: torch.Tensor, n_features: int, chunk_size: int, seed: int, progress: bool = False,
            decode=None) -> np.ndarray:
        """Samples of every row of ``row_protein``, rows × features. ``decode`` (e.g. a :class:`siteaug.generative.columns.TorchDecoder`)
        maps each chunk's model-space rows to feature rows on the device, after the sampler (outside any compiled step or
        captured graph); ``n_features`` is the model's width, the result has ``decode``'s width."""
        if self.step is sampler_step and compile_pays(self.compile, len(row_protein) * len(self.plan.timesteps)):
            # Kernel fusion of the elementwise work around the matmuls (LayerNorm, FiLM, SiLU, residual, and the
            # sampler's update after the last layer), which is what bounds the eager step; shapes are fixed per chunk
            # size, so it compiles once per step variant (with or without noise, with or without the previous x0).
            self.step = torch.compile(sampler_step, dynamic=False)
            self.graph = None
        # The graph reads the per-protein table where it was at capture (rows carry only an index into it), so the same
        # input keeps the same converted table and a captured graph stays valid across calls.
        if self.table_source is not context_modulation:
            self.table_source, self.table = context_modulation, context_modulation.to(self.dtype)
            self.graph = None
        # Feature-major on the host: the device transposes each chunk, and the rows-by-features view returned below is
        # what pandas and Arrow store column by column, so building the candidate table copies nothing.
        width = n_features if decode is None else len(decode.codec.names)
        out = np.empty((width, len(row_protein)), dtype=np.float32)
        copier = ChunkCopier(out, self.device)
        start, chunk_index = 0, 0
        began = time.perf_counter()
        bar = tqdm(total=len(row_protein), file=sys.stderr, mininterval=10, disable=not progress, desc="generate", unit="row")

        redrawn = [time.perf_counter()]

        def on_step(k: int, n: int) -> None:
            # A chunk on a CPU takes minutes: the bar names the step within it, redrawn at most every 10 s (the bar's
            # own mininterval only counts rows, which move once per chunk).
            if time.perf_counter() - redrawn[0] >= 10 or k == n:
                chunks = chunk_index + -(-(len(row_protein) - start) // chunk_size)
                bar.set_postfix_str(f"chunk {chunk_index + 1} of {chunks}, step {k}/{n}", refresh=k < n)
                redrawn[0] = time.perf_counter()

        self.on_step = on_step if progress else None
        with self._fork_rng(), matmul_precision(self.precision, self.device):
            while start < len(row_protein):
                rows = row_protein[start : start + chunk_size]
                try:
                    copier.put(self._chunk(rows, n_features, chunk_size, chunk_seed(seed, chunk_index), decode), start)
                except torch.cuda.OutOfMemoryError:
                    if chunk_size == 1:
                        raise
                    chunk_size //= 2
                    self.graph = None
                    torch.cuda.empty_cache()
                    log.warning("CUDA out of memory: chunk size halved to %d rows", chunk_size)
                    continue
                start += len(rows)
                chunk_index += 1
                bar.update(len(rows))
                if chunk_index == 1:  # compile and graph capture happen here
                    log.info("first chunk of %d rows: %.1f s", len(rows), time.perf_counter() - began)
            copier.flush()
        bar.close()
        self.on_step = None
        log.info("sampled %d rows in %d chunks: %.1f s", len(row_protein), chunk_index, time.perf_counter() - began)
        return out.T

    def _chunk(self, rows: torch.Tensor, n_features: int, chunk_size: int, seed: int, decode=None) -> torch.Tensor:
        """The chunk's samples, features by rows, on the device; ``rows`` index the per-protein table."""
        n = rows.shape[0]
        self._seed(seed)
        if not self.use_graph:
            samples = self._eager(rows, n_features, self.on_step)
        else:
            if self.graph is None or self.graph_rows != chunk_size:
                self._capture(chunk_size, n_features)
                self._seed(seed)
            # A short last chunk is padded by repeating its rows; the padding's samples are discarded.
            self.static_rows.copy_(rows[torch.arange(chunk_size, device=rows.device) % n])
            self.graph.replay()
            samples = self.static_out[:n]
        samples = samples.float()
        if decode is not None:
            samples = decode(samples)
        return samples.T.contiguous()


@torch.inference_mode()
def generate_candidates(
    model: SiteDiffusion,
    contexts: pd.DataFrame,
    feature_cols: list[str],
    candidates_per_protein: pd.Series,
    seed: int,
    device: torch.device,
    chunk_size: int = 65536,
    max_nonfinite_fraction: float = 0.5,
    precision: str = "bf16",
    sampler: str = "dpmpp_2m",
    sampler_steps: int | None = 20,
    cuda_graph: bool = True,
    compile: bool | str = "auto",
    progress: bool = True,
    codec: ColumnCodec | None = None,
) -> pd.DataFrame:
    """Sample ``candidates_per_protein[pid]`` rows for every protein, all proteins in one batch (chunked by rows).

    With a ``codec`` (the one the model was trained with, ``extra["codec"]`` of ``model.pt``) the model samples its
    model space and each chunk is decoded to the ``feature_cols`` on the device; without one the model's columns are
    the ``feature_cols`` themselves.

    ``contexts`` holds each protein's context vector (index ``protein_id``, see ``graphs.protein_contexts``); their
    FiLM read-outs are computed once per protein and looked up per row, and the time read-outs of all T steps are
    tabulated once. Rows with NaN/inf are dropped with a warning; a mostly non-finite shard is an error. The sampling
    defaults are the config schema's ``generation`` defaults (tests/test_defaults.py).
    """
    counts = candidates_per_protein[candidates_per_protein > 0]
    protein_ids = counts.index.tolist()
    columns = ["protein_id", "candidate_id", *feature_cols]
    if not protein_ids:
        return pd.DataFrame({c: pd.Series(dtype="float32" if is_feature_column(c) else ("int64" if c == "candidate_id" else "str")) for c in columns})
    missing = [pid for pid in protein_ids if pid not in contexts.index]
    if missing:
        raise ValueError(f"no cached context for {len(missing)} protein(s), e.g. {missing[0]!r}: the context table is from another run")
    context = torch.tensor(contexts.loc[protein_ids].to_numpy(np.float32), device=device)
    context_modulation = model.denoiser.context_modulation(context)
    row_protein = torch.repeat_interleave(torch.arange(len(protein_ids), device=device), torch.tensor(counts.to_numpy(), device=device))
    if codec is not None and codec.names != list(feature_cols):
        raise ValueError("the column codec was fitted on other feature columns than the ones asked for")
    width = len(feature_cols) if codec is None else codec.model_dim
    if width != model.config.feature_dim:
        raise ValueError(f"the model samples {model.config.feature_dim} columns but {width} are expected: pass the codec it was trained with")
    runner = ChunkedSampler(model, sampler, sampler_steps, precision, device, cuda_graph, compile)
    decode = None if codec is None else codec.decoder(device)
    samples = runner.run(context_modulation, row_protein, width, chunk_size, seed, progress, decode)
    finite = np.isfinite(samples.T).all(axis=0)  # over the feature-major base: contiguous, ~7x faster than axis=1
    n_bad = int((~finite).sum())
    if n_bad:
        if n_bad > max_nonfinite_fraction * len(samples):
            raise RuntimeError(f"{n_bad} of {len(samples)} generated rows hold NaN/inf: the diffusion model has diverged")
        log.warning("dropped %d of %d generated rows holding NaN/inf", n_bad, len(samples))
    protein_of_row = np.repeat(np.array(protein_ids, dtype=object), counts.to_numpy())
    candidate_id = np.concatenate([np.arange(n) for n in counts.to_numpy()])
    kept = samples if not n_bad else samples.T[:, finite].T  # stays feature-major (see ChunkedSampler.run)
    table = pd.DataFrame(kept, columns=feature_cols, copy=False)
    table.insert(0, "candidate_id", candidate_id[finite].astype(np.int64))
    table.insert(0, "protein_id", protein_of_row[finite].astype(str))
    return table[columns]
