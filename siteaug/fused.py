"""A Triton kernel for the denoiser's residual block, for sampling.

Run as separate kernels, one FiLM residual block (LayerNorm, FiLM, Linear, SiLU, Linear, residual add) moves the
rows × hidden activations through memory six to eight times; that traffic, not the matrix products, is what bounds
the sampler (bench/RESULTS.md). Here one program owns a tile of rows for the whole block: it reads the tile once,
normalises and modulates it on chip, and runs both matrix products with the inner layer's output never leaving the
chip (it is produced and consumed a slice at a time), then writes the tile once.

The kernel is also correct under Triton's interpreter (``TRITON_INTERPRET=1``, CPU tensors), which is how the tests
check it without a GPU; speed and the bf16 path are measured on a GPU by ``bench/sampler.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # the package works without Triton; ``available()`` says whether the kernel can be used
    triton = None


def available() -> bool:
    return triton is not None


def unsupported_reason(hidden: int, inner: int) -> str | None:
    """Why the kernel cannot run a denoiser of these widths (None when it can)."""
    if triton is None:
        return "Triton is not installed"
    for name, width in (("hidden", hidden), ("inner width", inner)):
        # tl.arange needs powers of two, and tl.dot needs every dimension >= 16.
        if width < 16 or width & (width - 1):
            return f"the {name} {width} is not a power of two >= 16"
    return None


if triton is not None:

    @triton.jit
    def _film_block_kernel(
        h_ptr, out_ptr, rows_ptr, table_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr,
        n_rows, table_stride, film_offset, eps,
        HIDDEN: tl.constexpr, INNER: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr,
        DOT_PRECISION: tl.constexpr,
    ):
        """out = h + W2ᵀ·SiLU(W1ᵀ·(LN(h)·(1 + scale) + shift) + b1) + b2 for one tile of BLOCK_M rows.

        ``w1`` is W1ᵀ (HIDDEN × INNER) and ``w2`` is W2ᵀ (INNER × HIDDEN), both row-major; row m's FiLM parameters are
        ``table[rows[m], film_offset : film_offset + 2·HIDDEN]`` (scale, then shift).
        """
        offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = offs_m < n_rows
        h_rows = h_ptr + offs_m.to(tl.int64)[:, None] * HIDDEN
        offs_k = tl.arange(0, BLOCK_K)
        offs_n = tl.arange(0, BLOCK_N)
        offs_h = tl.arange(0, HIDDEN)

        # LayerNorm statistics in two passes over slices (mean, then centred squares): the slices come back from cache,
        # and no full-width fp32 tile has to sit in registers beside the accumulator.
        total = tl.zeros([BLOCK_M], dtype=tl.float32)
        for k0 in range(0, HIDDEN, BLOCK_K):
            total += tl.sum(tl.load(h_rows + (k0 + offs_k)[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32), axis=1)
        mean = total / HIDDEN
        squares = tl.zeros([BLOCK_M], dtype=tl.float32)
        for k0 in range(0, HIDDEN, BLOCK_K):
            centred = tl.load(h_rows + (k0 + offs_k)[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32) - mean[:, None]
            squares += tl.sum(centred * centred, axis=1)
        rstd = 1.0 / tl.sqrt(squares / HIDDEN + eps)

        protein = tl.load(rows_ptr + offs_m, mask=row_ok, other=0).to(tl.int64)
        film = table_ptr + protein[:, None] * table_stride + film_offset
        acc = tl.zeros([BLOCK_M, HIDDEN], dtype=tl.float32)
        for n0 in range(0, INNER, BLOCK_N):
            inner = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
            for k0 in range(0, HIDDEN, BLOCK_K):
                k = k0 + offs_k
                h = tl.load(h_rows + k[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32)
                scale = tl.load(film + k[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32)
                shift = tl.load(film + HIDDEN + k[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32)
                modulated = (h - mean[:, None]) * rstd[:, None] * (1.0 + scale) + shift
                w1 = tl.load(w1_ptr + k[:, None] * INNER + (n0 + offs_n)[None, :])
                inner = tl.dot(modulated.to(w1.dtype), w1, inner, input_precision=DOT_PRECISION)
            inner += tl.load(b1_ptr + n0 + offs_n).to(tl.float32)[None, :]
            inner = inner * tl.sigmoid(inner)
            w2 = tl.load(w2_ptr + (n0 + offs_n)[:, None] * HIDDEN + offs_h[None, :])
            acc = tl.dot(inner.to(w2.dtype), w2, acc, input_precision=DOT_PRECISION)

        acc += tl.load(b2_ptr + offs_h).to(tl.float32)[None, :]
        acc += tl.load(h_rows + offs_h[None, :], mask=row_ok[:, None], other=0.0).to(tl.float32)
        tl.store(out_ptr + offs_m.to(tl.int64)[:, None] * HIDDEN + offs_h[None, :], acc.to(out_ptr.dtype.element_ty), mask=row_ok[:, None])


class FusedDenoiser:
    """The sampling forward pass of a ``Denoiser`` (``forward_modulated`` with a per-protein table and ``rows``), with
    each residual block as one Triton kernel; the input and output layers stay PyTorch ops.

    The weights are copied once, transposed and in ``dtype``. Matrix products accumulate in fp32, LayerNorm and FiLM
    run in fp32; the residual stream is stored in ``dtype``. With fp32 weights, ``tf32`` lets the products use TF32
    (as ``torch.set_float32_matmul_precision("high")`` does for PyTorch's); otherwise they are exact fp32.
    """

    def __init__(self, denoiser, dtype: torch.dtype = torch.bfloat16, tf32: bool = False, block_m: int = 64, block_n: int = 64, block_k: int = 64, num_warps: int | None = None):
        inner = denoiser.blocks[0].mlp[0].out_features
        reason = unsupported_reason(denoiser.hidden, inner)
        if reason:
            raise ValueError(f"the fused block kernel cannot run this denoiser: {reason}")
        self.hidden, self.inner = denoiser.hidden, inner
        self.dtype = dtype
        copy = lambda t: t.detach().to(dtype).contiguous()  # noqa: E731
        self.input_weight, self.input_bias = copy(denoiser.input.weight), copy(denoiser.input.bias)
        self.blocks = [
            (copy(b.mlp[0].weight.T), copy(b.mlp[0].bias), copy(b.mlp[2].weight.T), copy(b.mlp[2].bias), b.norm.eps)
            for b in denoiser.blocks
        ]
        self.out_norm = (copy(denoiser.out_norm.weight), copy(denoiser.out_norm.bias), denoiser.out_norm.eps)
        self.output_weight, self.output_bias = copy(denoiser.output.weight), copy(denoiser.output.bias)
        self.block_m, self.block_n, self.block_k = block_m, min(block_n, inner), min(block_k, self.hidden)
        self.num_warps = num_warps or (8 if self.hidden >= 256 else 4)
        self.dot_precision = "tf32" if tf32 else "ieee"

    def block(self, h: torch.Tensor, rows: torch.Tensor, table: torch.Tensor, index: int) -> torch.Tensor:
        w1, b1, w2, b2, eps = self.blocks[index]
        out = torch.empty_like(h)
        grid = (triton.cdiv(h.shape[0], self.block_m),)
        # The launch returns the compiled kernel: kept so a benchmark can report its registers and spills.
        self.compiled = _film_block_kernel[grid](
            h, out, rows, table, w1, b1, w2, b2,
            h.shape[0], table.stride(0), 2 * index * self.hidden, eps,
            HIDDEN=self.hidden, INNER=self.inner, BLOCK_M=self.block_m, BLOCK_K=self.block_k, BLOCK_N=self.block_n,
            DOT_PRECISION=self.dot_precision, num_warps=self.num_warps,
        )
        return out

    def forward_modulated(self, x: torch.Tensor, modulation: torch.Tensor, time_modulation: torch.Tensor | None = None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """As ``Denoiser.forward_modulated`` with a table: ``modulation`` is (proteins, blocks·2·hidden), already holding
        the time part, and ``rows`` gives each row's protein."""
        if rows is None or time_modulation is not None:
            raise ValueError("the fused denoiser takes a per-protein table with the time part added, and rows")
        table = modulation.to(self.dtype).contiguous()
        h = F.linear(x.to(self.dtype), self.input_weight, self.input_bias).contiguous()
        for index in range(len(self.blocks)):
            h = self.block(h, rows, table, index)
        weight, bias, eps = self.out_norm
        return F.linear(F.layer_norm(h, (self.hidden,), weight, bias, eps), self.output_weight, self.output_bias)
