"""How many synthetic positives each protein needs, shard assignment, and the balanced training table."""
from __future__ import annotations

import heapq
import logging
import math

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def positives_needed(n_positive: int, n_negative: int, ratio: float) -> int:
    """Smallest number of extra positives that brings positives / (positives + negatives) to at least ``ratio``."""
    return max(0, math.ceil(ratio / (1 - ratio) * n_negative - 1e-9) - n_positive)


def synthetic_quota(train_residues: pd.DataFrame, ratio: float) -> pd.DataFrame:
    """Per training protein: real positives, negatives, and the synthetic positives that bring it to ``ratio``."""
    counts = train_residues.groupby("protein_id", sort=True)["label"].agg(n_positive="sum", n_residues="size").reset_index()
    counts["n_negative"] = counts["n_residues"] - counts["n_positive"]
    counts["quota"] = [positives_needed(p, n, ratio) for p, n in zip(counts["n_positive"], counts["n_negative"])]
    return counts[["protein_id", "n_positive", "n_negative", "quota"]]


def assign_shards(quota: pd.DataFrame, shards: int) -> pd.Series:
    """Shard of every protein: largest quotas first onto the least-loaded shard, so shards take similar time."""
    order = quota.sort_values(["quota", "protein_id"], ascending=[False, True])
    heap = [(0, s) for s in range(shards)]
    shard_of = {}
    for pid, q in zip(order["protein_id"], order["quota"]):
        load, s = heapq.heappop(heap)
        shard_of[pid] = s
        heapq.heappush(heap, (load + int(q), s))
    return quota["protein_id"].map(shard_of).astype(np.int32)


def shard_seed(seed: int, shard: int) -> int:
    """The sampling seed of one generation shard: distinct per shard, fixed by the config's seed."""
    return seed * 1_000_003 + shard


def generation_plan(train_residues: pd.DataFrame, ratio: float, shards: int, seed: int) -> pd.DataFrame:
    """The decisions the generation stages share, one row per training protein (by protein id): its real positives
    and negatives, its ``quota`` of synthetic positives at ``ratio``, its ``shard`` and that shard's sampling ``seed``.
    Written once by rule plan_generation; generate, filter_shard and balance_variant read it."""
    plan = synthetic_quota(train_residues, ratio)
    plan["shard"] = assign_shards(plan, shards).to_numpy()
    plan["seed"] = np.array([shard_seed(seed, int(s)) for s in plan["shard"]], dtype=np.int64)
    return plan


def balance_training(train_residues: pd.DataFrame, synthetic: pd.DataFrame, ratio: float, seed: int, feature_cols: list[str]):
    """Real training rows + synthetic positives at ``ratio`` positives; returns (table, summary).

    Surplus synthetic rows are dropped lowest score first. When they fall short, negatives are dropped at random
    (seeded) until the ratio holds, and that is logged and recorded in the summary.
    """
    n_pos = int(train_residues["label"].sum())
    n_neg = len(train_residues) - n_pos
    needed = positives_needed(n_pos, n_neg, ratio)
    ranked = synthetic.sort_values(["quality_score", "protein_id", "candidate_id"], ascending=[False, True, True], kind="stable")
    used = ranked.head(needed)
    negatives_kept = n_neg
    if len(used) < needed:
        negatives_kept = min(n_neg, math.floor((n_pos + len(used)) * (1 - ratio) / ratio + 1e-9))
        log.warning(
            "only %d of %d synthetic positives passed the filter: keeping %d of %d real negatives (seeded) to reach ratio %.3f",
            len(used), needed, negatives_kept, n_neg, ratio,
        )
    negatives = train_residues[train_residues["label"] == 0]
    if negatives_kept < n_neg:
        keep = np.sort(np.random.default_rng(seed).choice(len(negatives), size=negatives_kept, replace=False))
        negatives = negatives.iloc[keep]
    real = pd.concat([train_residues[train_residues["label"] == 1], negatives]).sort_values(["protein_id", "position"])
    real = real.assign(origin="real", candidate_id=-1, quality_score=np.float32(np.nan))
    synthetic_rows = used.assign(position=-1, label=1, split="train", origin="synthetic")
    columns = ["protein_id", "position", "candidate_id", "label", "split", "origin", "quality_score", *feature_cols]
    table = pd.concat([real[columns], synthetic_rows[columns]], ignore_index=True)
    table["position"] = table["position"].astype(np.int32)
    table["candidate_id"] = table["candidate_id"].astype(np.int64)
    table["label"] = table["label"].astype(np.int8)
    achieved = float(table["label"].mean())
    summary = {
        "target_positive_ratio": ratio,
        "achieved_positive_ratio": achieved,
        "real_positives": n_pos,
        "real_negatives": n_neg,
        "real_negatives_kept": int(negatives_kept),
        "synthetic_needed": int(needed),
        "synthetic_available": int(len(synthetic)),
        "synthetic_used": int(len(used)),
        "rows": int(len(table)),
    }
    return table, summary
