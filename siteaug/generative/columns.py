"""Column kinds of a feature table and the codec between feature space and the diffusion model's space.

The generator must stay generic over any ``f_*`` table (the built-in sequence/structure features, precomputed PSSM/HMM/
DSSP groups, learned embeddings), so the kinds are read from the data of the training rows, with one naming rule
(one-hot groups share a prefix). This is the one place where they are decided:

- **constant**: one value in every training row. Not diffused; written back as that value.
- **one-hot group**: two or more two-valued columns with a common name prefix (the name without its last ``_token``:
  ``f_aa_A`` → ``f_aa``, ``f_ss_helix`` → ``f_ss``, ``f_dssp_7`` → ``f_dssp``) of which at most one is at its higher value
  in any training row. Its categories are its members, plus "none" when some rows have none of them (the all-zero
  one-hot of an unknown residue ``X``, the secondary structure of a protein without one). Diffused as one ±1 column
  per category; decoded by argmax, so a generated row always holds an exact, observed one-hot pattern.
- **derived**: a column that is a function of one group's category in the training rows (the BLOSUM62 row and the
  five physicochemical scales of the amino acid, ``has_structure`` of the secondary-structure state). Not diffused:
  written back as the value that the decoded category has in real rows, so it always agrees with the one-hot.
- **numeric**: every other column. With ``quantile`` on, mapped through the empirical CDF of the training positives
  to a standard normal before diffusion (scikit-learn's ``QuantileTransformer(output_distribution="normal")``, fitted
  with the seed) and back after; heavy tails and spikes become a Gaussian the DDPM can match. A numeric column with few
  distinct values (integer counts, two-decimal RSA, a binary flag, a table-valued profile; at most
  ``MAX_DISCRETE_VALUES`` and at most one per ``ROWS_PER_DISCRETE_VALUE`` rows) is **discrete-valued**: its decoded
  value is snapped to the nearest value observed in training rows.

- **circle pair**: two numeric columns whose unstandardised training values lie on the unit circle, apart from rows
  where both are 0 (the sine and cosine of a backbone dihedral, 0/0 where it is undefined; GraphPPIS's DSSP columns
  hold two such pairs). Diffused as two numbers like any numeric column, then decoded to the nearest point of that
  support: onto the circle, or to 0/0 when the pair is nearer the origin (and 0/0 occurs in training rows). A boosted-
  tree C2ST told generated rows from real ones by these pairs alone (0.96-0.99 on DNA-573 and PPI-335,
  bench/RESULTS.md), because a model that diffuses the two values independently leaves them off the circle. Needs the
  standardisation statistics (``features/standardisation.json``) to see the raw values.

An all-continuous table (e.g. ``f_emb_<k>`` embeddings) has only numeric columns: it gets the quantile transform and
nothing else. ``discrete=False`` treats every column as numeric and snaps nothing (the pre-codec behaviour when
``quantile`` is off too).

The codec is saved inside ``model.pt`` (``extra["codec"]``) as plain tensors, lists and numbers, because the model
file is read with ``torch.load(weights_only=True)``. Encoding (training) runs in numpy; decoding (sampling) runs in
torch on the sampler's device, after each chunk, outside the compiled / graph-captured sampler step.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtri

from siteaug.runtime.tables import feature_columns, train_rows

log = logging.getLogger(__name__)

MAX_QUANTILES = 1000
QUANTILE_SUBSAMPLE = 100_000
MAX_DISCRETE_VALUES = 256
ROWS_PER_DISCRETE_VALUE = 10
# scikit-learn's QuantileTransformer clips the uniform scores to [1e-7, 1 - 1e-7] before the normal quantile function.
_BOUND = 1e-7
_CODEC_VERSION = 2
# A circle pair's raw values must satisfy sin² + cos² = 1 this closely (float32 tables) in every row off the origin.
CIRCLE_TOLERANCE = 1e-4
CIRCLE_MIN_ROWS_ON = 0.5  # and at least this share of training rows must be on the circle, not at the origin


def _prefix(name: str) -> str:
    return name.rsplit("_", 1)[0] if "_" in name else name


@dataclass
class OneHotGroup:
    """A one-hot group: ``members`` (feature indices), ``none`` (a category with no member high) and the value of every
    member and derived column in each category (``table``: categories × len(columns), columns = members + derived)."""

    name: str
    members: list[int]
    derived: list[int]
    none: bool
    table: np.ndarray
    categories: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[int]:
        return self.members + self.derived


@dataclass
class CirclePair:
    """Two feature columns (indices) whose raw values ``mean + std * value`` lie on the unit circle, or at 0/0 when
    ``origin`` (0/0 occurs in training rows)."""

    columns: tuple[int, int]
    mean: tuple[float, float]
    std: tuple[float, float]
    origin: bool


@dataclass
class ColumnCodec:
    names: list[str]  # the feature columns, in table order
    numeric: list[int]  # feature indices diffused as numbers, in model-space order
    quantiles: np.ndarray | None  # (n_quantiles, len(numeric)) quantile function at evenly spaced levels, or None
    snap: dict[int, np.ndarray]  # position in ``numeric`` -> sorted observed values of a discrete-valued column
    groups: list[OneHotGroup]
    constants: dict[int, float]  # feature index -> value
    circles: list[CirclePair] = field(default_factory=list)

    # ----------------------------------------------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, reference: pd.DataFrame, positives: pd.DataFrame, names: list[str], seed: int, quantile: bool = True,
            discrete: bool = True, standardisation: dict | None = None) -> ColumnCodec:
        """Kinds from ``reference`` (the training rows of the table), quantiles from ``positives`` (the training
        positives, the rows the model learns). Circle pairs need ``standardisation`` (column -> mean and std of the
        table's standardisation); without it none are looked for."""
        if not names:
            raise ValueError("the feature table has no f_ columns")
        ref = reference[names].to_numpy(np.float64)
        pos = positives[names].to_numpy(np.float64)
        if len(ref) == 0 or len(pos) < 2:
            raise ValueError(f"need training rows and at least two training positives to fit the column codec, got {len(ref)} and {len(pos)}")
        if not (np.isfinite(ref).all() and np.isfinite(pos).all()):
            raise ValueError("the feature table holds NaN/inf in training rows")
        constants, groups, used = {}, [], set()
        if discrete:
            lows, highs = ref.min(axis=0), ref.max(axis=0)
            constants = {j: float(lows[j]) for j in range(len(names)) if lows[j] == highs[j]}
            groups = _one_hot_groups(ref, names, lows, highs, set(constants))
            used = set(constants) | {j for g in groups for j in g.members}
            for group in groups:
                group.derived = _derived_columns(ref, group, used)
                used |= set(group.derived)
                group.table = _category_table(ref, group)
        numeric = [j for j in range(len(names)) if j not in used]
        circles = _circle_pairs(ref, names, numeric, standardisation) if standardisation is not None else []
        on_circle = {j for c in circles for j in c.columns}
        snap = {}
        if discrete:
            for k, j in enumerate(numeric):
                if j in on_circle:  # decoded onto the circle instead
                    continue
                values = np.unique(ref[:, j])
                if len(values) <= MAX_DISCRETE_VALUES and len(values) * ROWS_PER_DISCRETE_VALUE <= len(ref):
                    snap[k] = values
        quantiles = _fit_quantiles(pos[:, numeric], seed) if quantile and numeric else None
        codec = cls(list(names), numeric, quantiles, snap, groups, constants, circles)
        log.info("column codec: %s", codec.describe())
        return codec

    def describe(self) -> str:
        groups = ", ".join(
            f"{g.name} ({len(g.members)} members{' + none' if g.none else ''}, {len(g.derived)} derived)" for g in self.groups
        ) or "none"
        return (f"{len(self.names)} feature columns -> {self.model_dim} model columns: {len(self.numeric)} numeric "
                f"({len(self.snap)} discrete-valued, quantile transform {'on' if self.quantiles is not None else 'off'}), "
                f"one-hot groups: {groups}, {len(self.constants)} constant, circle pairs: "
                f"{', '.join(f'{self.names[c.columns[0]]}/{self.names[c.columns[1]]}' for c in self.circles) or 'none'}")

    @property
    def model_dim(self) -> int:
        return len(self.numeric) + sum(len(g.table) for g in self.groups)

    @property
    def model_columns(self) -> list[str]:
        out = [f"z_{self.names[j]}" for j in self.numeric]
        for g in self.groups:
            out += [f"z_{g.name}={c}" for c in g.categories]
        return out

    # ---------------------------------------------------------------------------------------------------- encoding
    def encode(self, rows: np.ndarray) -> np.ndarray:
        """Feature rows (n × len(names)) to model space (n × model_dim), float32."""
        rows = np.asarray(rows, np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.names):
            raise ValueError(f"expected rows with {len(self.names)} feature columns, got shape {rows.shape}")
        parts = [self._quantile_forward(rows[:, self.numeric])]
        for g in self.groups:
            parts.append(np.where(np.arange(len(g.table))[None, :] == self._category(rows, g)[:, None], 1.0, -1.0))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def encode_table(self, residues: pd.DataFrame) -> pd.DataFrame:
        """``residues`` with its feature columns replaced by the model-space columns (``model_columns``)."""
        meta = residues[[c for c in residues.columns if c not in self.names]].reset_index(drop=True)
        encoded = pd.DataFrame(self.encode(residues[self.names].to_numpy()), columns=self.model_columns)
        return pd.concat([meta, encoded], axis=1)

    def _quantile_forward(self, x: np.ndarray) -> np.ndarray:
        if self.quantiles is None:
            return x
        q = self.quantiles
        levels = np.linspace(0, 1, len(q))
        out = np.empty_like(x)
        for k in range(x.shape[1]):
            # Mean of the interpolation from below and from above: a value repeated in the data (a spike, a discrete
            # level) maps to the middle of its CDF step, as in scikit-learn.
            up = np.interp(x[:, k], q[:, k], levels)
            down = -np.interp(-x[:, k], -q[::-1, k], -levels[::-1])
            out[:, k] = 0.5 * (up + down)
        return ndtri(np.clip(out, _BOUND, 1 - _BOUND))

    def _category(self, rows: np.ndarray, g: OneHotGroup) -> np.ndarray:
        """Category index of every row: the member that is high, else "none" (the last category)."""
        highs = g.table[: len(g.members), : len(g.members)].diagonal()
        high = np.isclose(rows[:, g.members], highs[None, :], rtol=1e-5, atol=1e-6)
        count = high.sum(axis=1)
        if (count > 1).any() or (not g.none and (count == 0).any()):
            raise ValueError(f"rows whose one-hot group {g.name} does not have exactly one category: not the table the codec was fitted on")
        return np.where(count == 1, high.argmax(axis=1), len(g.members))

    # ---------------------------------------------------------------------------------------------------- decoding
    def decoder(self, device) -> TorchDecoder:
        return TorchDecoder(self, torch.device(device))

    def decode(self, model_rows: np.ndarray) -> np.ndarray:
        """Model-space rows back to feature rows (numpy convenience around the torch decoder, float32)."""
        with torch.inference_mode():
            return self.decoder("cpu")(torch.as_tensor(np.asarray(model_rows, np.float32))).numpy()

    # ----------------------------------------------------------------------------------------------- serialisation
    def state(self) -> dict:
        """Plain tensors, lists and numbers, for ``model.pt`` (read with ``weights_only=True``)."""
        return {
            "version": _CODEC_VERSION,
            "names": list(self.names),
            "numeric": list(self.numeric),
            "quantiles": None if self.quantiles is None else torch.from_numpy(np.ascontiguousarray(self.quantiles)),
            "snap": {str(k): torch.from_numpy(v) for k, v in self.snap.items()},
            "groups": [
                {"name": g.name, "members": g.members, "derived": g.derived, "none": g.none, "categories": g.categories,
                 "table": torch.from_numpy(np.ascontiguousarray(g.table))}
                for g in self.groups
            ],
            "constants": {str(j): v for j, v in self.constants.items()},
            "circles": [{"columns": list(c.columns), "mean": list(c.mean), "std": list(c.std), "origin": c.origin} for c in self.circles],
        }

    @classmethod
    def from_state(cls, state: dict) -> ColumnCodec:
        if state.get("version") != _CODEC_VERSION:
            raise ValueError(f"column codec version {state.get('version')!r} is not {_CODEC_VERSION}: retrain the diffusion model")
        groups = [OneHotGroup(g["name"], list(g["members"]), list(g["derived"]), bool(g["none"]), _host(g["table"]), list(g["categories"]))
                  for g in state["groups"]]
        return cls(
            list(state["names"]), list(state["numeric"]),
            None if state["quantiles"] is None else _host(state["quantiles"]),
            {int(k): _host(v) for k, v in state["snap"].items()},
            groups,
            {int(j): float(v) for j, v in state["constants"].items()},
            [CirclePair(tuple(int(j) for j in c["columns"]), tuple(float(v) for v in c["mean"]), tuple(float(v) for v in c["std"]),
                        bool(c["origin"])) for c in state["circles"]],
        )


def _host(tensor: torch.Tensor) -> np.ndarray:
    # The model file may be loaded straight onto a GPU (map_location), which .numpy() refuses.
    return tensor.detach().cpu().numpy()


class TorchDecoder:
    """The codec's inverse on one device: (rows × model_dim) → (rows × features), float32.

    Numeric columns: the standard normal CDF, then linear interpolation of the stored quantile function (what
    ``QuantileTransformer.inverse_transform`` does), then snapping of discrete-valued columns to the nearest observed
    value. One-hot groups: argmax, then the category's real values of members and derived columns. A row with a
    non-finite model value comes out all NaN (the caller drops such rows)."""

    def __init__(self, codec: ColumnCodec, device: torch.device):
        self.codec = codec
        as_tensor = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        self.numeric = as_tensor(codec.numeric, torch.long)
        self.quantiles = None if codec.quantiles is None else as_tensor(codec.quantiles, torch.float64)
        self.snap_positions = as_tensor(sorted(codec.snap), torch.long)
        if codec.snap:
            width = max(len(v) for v in codec.snap.values())
            table = np.full((len(codec.snap), width), np.inf)
            for r, k in enumerate(sorted(codec.snap)):
                table[r, : len(codec.snap[k])] = codec.snap[k]
            self.snap_values = as_tensor(table, torch.float64)
            self.snap_counts = as_tensor([len(codec.snap[k]) for k in sorted(codec.snap)], torch.long)
        self.groups = [(len(g.table), as_tensor(g.columns, torch.long), as_tensor(g.table)) for g in codec.groups]
        self.constant_index = as_tensor(list(codec.constants), torch.long)
        self.constant_values = as_tensor(list(codec.constants.values()))
        # Circle pairs as (pairs × 2) tensors: feature indices, raw means and stds; and which pairs may sit at 0/0.
        self.circle_index = as_tensor([c.columns for c in codec.circles], torch.long).reshape(-1, 2)
        self.circle_mean = as_tensor([c.mean for c in codec.circles], torch.float64).reshape(-1, 2)
        self.circle_std = as_tensor([c.std for c in codec.circles], torch.float64).reshape(-1, 2)
        self.circle_origin = as_tensor([c.origin for c in codec.circles], torch.bool)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        codec = self.codec
        if z.shape[1] != codec.model_dim:
            raise ValueError(f"expected {codec.model_dim} model columns, got {z.shape[1]}")
        out = torch.empty((z.shape[0], len(codec.names)), dtype=torch.float32, device=z.device)
        # Non-finite values would become out-of-range indices below; such rows are decoded from zeros, then blanked.
        bad = ~torch.isfinite(z).all(dim=1)
        z = torch.where(bad[:, None], torch.zeros_like(z), z)
        n = len(codec.numeric)
        values = z[:, :n].double()
        if self.quantiles is not None:
            position = torch.special.ndtr(values).clamp(0, 1) * (len(self.quantiles) - 1)
            below = position.floor().clamp(0, len(self.quantiles) - 2).long()
            low, high = self.quantiles.gather(0, below), self.quantiles.gather(0, below + 1)
            values = low + (position - below) * (high - low)
        if codec.snap:
            query = values[:, self.snap_positions].T.contiguous()
            above = torch.searchsorted(self.snap_values, query)
            last = (self.snap_counts - 1)[:, None]
            hi = self.snap_values.gather(1, torch.minimum(above, last))
            lo = self.snap_values.gather(1, (above - 1).clamp(min=0))
            values[:, self.snap_positions] = torch.where((query - lo).abs() <= (hi - query).abs(), lo, hi).T
        out[:, self.numeric] = values.float()
        if len(self.circle_index):
            out[:, self.circle_index] = self._onto_circles(out[:, self.circle_index].double()).float()
        offset = n
        for size, columns, table in self.groups:
            category = z[:, offset : offset + size].argmax(dim=1)
            out[:, columns] = table[category]
            offset += size
        if len(self.constant_index):
            out[:, self.constant_index] = self.constant_values
        return out.masked_fill(bad[:, None], float("nan"))

    def _onto_circles(self, pairs: torch.Tensor) -> torch.Tensor:
        """(rows × pairs × 2) standardised values to the nearest point of each pair's real support: the unit circle in
        raw values, or 0/0 where the pair allows it and lies nearer the origin (radius below 1/2)."""
        raw = pairs * self.circle_std + self.circle_mean
        radius = torch.linalg.vector_norm(raw, dim=-1, keepdim=True)
        on_circle = raw / radius.clamp_min(1e-12)
        # A pair decoded exactly at 0/0 without an origin in its support has no nearest circle point: take angle 0.
        on_circle = torch.where(radius > 0, on_circle, torch.tensor([0.0, 1.0], dtype=raw.dtype, device=raw.device))
        at_origin = self.circle_origin[None, :, None] & (radius < 0.5)
        raw = torch.where(at_origin, torch.zeros_like(raw), on_circle)
        return (raw - self.circle_mean) / self.circle_std


def _fit_quantiles(rows: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.preprocessing import QuantileTransformer

    transformer = QuantileTransformer(
        n_quantiles=min(MAX_QUANTILES, len(rows)), output_distribution="normal", subsample=QUANTILE_SUBSAMPLE, random_state=seed
    ).fit(rows)
    return np.asarray(transformer.quantiles_, np.float64)


def _circle_pairs(ref: np.ndarray, names: list[str], numeric: list[int], standardisation: dict) -> list[CirclePair]:
    """Pairs of numeric columns whose raw values lie on the unit circle (or at 0/0) in every training row.

    Pairs are matched greedily in column order (each column in one pair at most); a pair must put at least
    CIRCLE_MIN_ROWS_ON of the rows on the circle, so two mostly-zero columns are not a pair."""
    missing = [names[j] for j in numeric if names[j] not in standardisation]
    if missing:
        raise ValueError(f"the standardisation statistics lack column {missing[0]}: not the table's own statistics")
    mean = np.array([standardisation[names[j]]["mean"] for j in numeric])
    std = np.array([standardisation[names[j]]["std"] for j in numeric])
    raw = ref[:, numeric] * std + mean
    bounded = [k for k in range(len(numeric)) if np.abs(raw[:, k]).max() <= 1 + CIRCLE_TOLERANCE and len(np.unique(raw[:, k])) > 2]

    def on_circle_or_origin(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        on = np.abs((xy * xy).sum(axis=1) - 1) <= 2 * CIRCLE_TOLERANCE
        return on, (np.abs(xy) <= CIRCLE_TOLERANCE).all(axis=1)

    pairs, taken = [], set()
    for a_pos, a in enumerate(bounded):
        if a in taken:
            continue
        for b in bounded[a_pos + 1 :]:
            if b in taken:
                continue
            on, origin = on_circle_or_origin(raw[:2000, [a, b]])  # most pairs fail on the first rows already
            if not (on | origin).all():
                continue
            on, origin = on_circle_or_origin(raw[:, [a, b]])
            if (on | origin).all() and on.mean() >= CIRCLE_MIN_ROWS_ON:
                pairs.append(CirclePair((numeric[a], numeric[b]), (float(mean[a]), float(mean[b])), (float(std[a]), float(std[b])),
                                        bool(origin.any())))
                taken |= {a, b}
                break
    return pairs


def _one_hot_groups(ref: np.ndarray, names: list[str], lows, highs, constant: set[int]) -> list[OneHotGroup]:
    two_valued = [j for j in range(len(names)) if j not in constant and len(np.unique(ref[:, j])) == 2]
    by_prefix: dict[str, list[int]] = {}
    for j in two_valued:
        by_prefix.setdefault(_prefix(names[j]), []).append(j)
    groups = []
    for prefix, members in by_prefix.items():
        if len(members) < 2:
            continue
        high = ref[:, members] == highs[members][None, :]
        count = high.sum(axis=1)
        if (count > 1).any():
            log.info("two-valued columns %s* are not one-hot (rows with several high): numeric", prefix)
            continue
        none = bool((count == 0).any())
        categories = [names[j][len(prefix) + 1 :] for j in members] + (["none"] if none else [])
        groups.append(OneHotGroup(prefix, members, [], none, np.zeros((0, 0)), categories))
    return groups


def _codes(ref: np.ndarray, g: OneHotGroup) -> np.ndarray:
    high = ref[:, g.members] == ref[:, g.members].max(axis=0)[None, :]
    return np.where(high.any(axis=1), high.argmax(axis=1), len(g.members))


def _derived_columns(ref: np.ndarray, g: OneHotGroup, used: set[int]) -> list[int]:
    """Columns equal within every category of ``g`` (in training rows), when the categories are well populated."""
    codes = _codes(ref, g)
    counts = np.bincount(codes, minlength=len(g.categories))
    # With few rows per category any column looks like a function of it; require most rows in repeated categories.
    if counts[counts >= 2].sum() < 0.9 * len(ref) or len(ref) < 5 * len(g.categories):
        return []
    candidates = [j for j in range(ref.shape[1]) if j not in used]
    if not candidates:
        return []
    frame = pd.DataFrame(ref[:, candidates]).groupby(codes)
    spread = (frame.max() - frame.min()).to_numpy().max(axis=0)
    scale = np.abs(ref[:, candidates]).max(axis=0)
    return [j for j, s, m in zip(candidates, spread, scale) if s <= 1e-5 * (1 + m)]


def _category_table(ref: np.ndarray, g: OneHotGroup) -> np.ndarray:
    """Value of every member and derived column in each category: the first training row of that category."""
    codes = _codes(ref, g)
    table = np.zeros((len(g.categories), len(g.columns)))
    for c in range(len(g.categories)):
        table[c] = ref[np.flatnonzero(codes == c)[0], g.columns]
    return table


def fit_codec(residues: pd.DataFrame, seed: int, quantile: bool = True, discrete: bool = True,
              standardisation: dict | None = None) -> ColumnCodec:
    """The codec of a residue table: kinds from all its rows, quantiles from its training positives; circle pairs
    from ``standardisation`` (the table's column statistics), when given."""
    names = feature_columns(residues)
    train = train_rows(residues)
    # Column kinds (one-hot groups, their "none" category, derived columns) from the rows of every split: the codec
    # encodes them all for the context encoder, and a protein without a structure (all-zero secondary structure) may
    # sit in validation only. Feature values only, no labels; the quantiles come from training positives alone.
    return ColumnCodec.fit(residues, train[train["label"] == 1], names, seed, quantile, discrete, standardisation)
