"""Every arm of the comparison, described once: what it reads, how its training rows are built, how it is fitted.

This module imports nothing beyond the standard library, so the Snakefile (rules/common.smk), the config checks and
the rule scripts can ask about arms without importing torch. Adding an arm is one :data:`ARMS` entry (plus its fit
function, when it needs a new one); the schema's ``classifier.arms`` enum must list the same names
(tests/test_arm_registry.py checks it).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

# Which table an arm's rows come from: the feature table (results/features/) or the graph_transformer embeddings
# (results/embedding/features/).
FEATURE_TABLE, EMBEDDING_TABLE = "features", "embedding"
# Balanced training tables. SHARED: the balance rule's filtered table of the arm's feature table; the others are built
# per arm by the balance_variant rule (results/balanced/{arm}/), each kind from its own inputs.
SHARED = "shared"
UNFILTERED, SMOTE_FILTERED, RATIO_SWEEP = "unfiltered", "smote_filtered", "ratio_sweep"
VARIANT_KINDS = (UNFILTERED, SMOTE_FILTERED, RATIO_SWEEP)
# How an arm's training rows are made from the real training split (siteaug.arms.protocol.arm_training_rows builds each).
REAL_ROWS, BALANCED_ROWS, GRAPHS = "real", "balanced", "graphs"
RESAMPLERS = ("random_oversampling", "smote", "borderline_smote")
ROW_KINDS = (REAL_ROWS, BALANCED_ROWS, GRAPHS, *RESAMPLERS)
# Resamplers that interpolate between training positives, so need at least two of them.
INTERPOLATING = ("smote", "borderline_smote")
# Keys of the config's ``classifier`` section. Every arm's training reads COMMON_SETTINGS (seeds, the threshold choice,
# the device); each arm reads its fit's keys besides (Arm.settings): the MLP's hyper-parameters, or the section of its
# reference model. A rule gets only these (arm_settings), so a change to another arm's keys, or to the arm list, does
# not rerun it.
COMMON_SETTINGS = ("seeds", "threshold_metric", "device")
# The MLP's keys, in the classifier section (the MLP arms) and in filter.critic (the critic) alike.
MLP_SETTINGS = ("hidden", "dropout", "epochs", "batch_size", "lr", "mixed_precision", "cuda_graph")
# The MLP arms' keys: early stopping is theirs alone, as the critic has no validation rows to stop on.
MLP_ARM_SETTINGS = (*MLP_SETTINGS, "early_stopping_patience")


@dataclass(frozen=True)
class Arm:
    """One arm. Fields say what the workflow must give it and what the training code does with it."""

    name: str
    rows: str = REAL_ROWS  # one of ROW_KINDS
    balanced: str | None = None  # None, SHARED or one of VARIANT_KINDS
    table: str = FEATURE_TABLE  # FEATURE_TABLE or EMBEDDING_TABLE
    edges: bool = False  # needs the residue graph edges (results/features/edges.parquet)
    # "module:function" of its fit function, imported only when the arm is trained (the MLP and graph fits import torch).
    fit: str = "siteaug.arms.protocol:_fit_mlp"
    settings: tuple[str, ...] = MLP_ARM_SETTINGS  # the classifier keys its fit reads, besides COMMON_SETTINGS
    model_suffix: str = ".pt"  # suffix of each seed's model file, results/classifier/{arm}/models/seed_<s><suffix>
    reference: bool = False  # a reference model without augmentation (README, "Arms and the report")
    positive_weight: bool = False  # positives weighted in the loss to carry the target ratio (class_weight)
    # Trains on classifier.device (torch); False for an arm that always trains on the CPU (gbdt's trees).
    on_device: bool = True
    # For an embedding_<base> arm, the arm whose protocol it repeats on the embedding table.
    base: str | None = None

    def __post_init__(self):
        if self.rows not in ROW_KINDS:
            raise ValueError(f"arm {self.name}: rows {self.rows!r} is not one of {', '.join(ROW_KINDS)}")
        if (self.rows == BALANCED_ROWS) != (self.balanced is not None):
            raise ValueError(f"arm {self.name}: rows {BALANCED_ROWS!r} and a balanced table go together")
        if self.balanced not in (None, SHARED, *VARIANT_KINDS):
            raise ValueError(f"arm {self.name}: balanced {self.balanced!r} is not one of {SHARED}, {', '.join(VARIANT_KINDS)}")

    @property
    def variant(self) -> str | None:
        """The kind of balanced table the balance_variant rule builds for this arm alone, None when it builds none."""
        return self.balanced if self.balanced in VARIANT_KINDS else None

    @property
    def interpolates_positives(self) -> bool:
        """SMOTE-style rows: new positives interpolated between training positives (at least two are needed)."""
        return self.rows in INTERPOLATING or self.balanced == SMOTE_FILTERED

    def fit_function(self) -> Callable:
        module, _, function = self.fit.partition(":")
        return getattr(importlib.import_module(module), function)


def _embedding(base: Arm) -> Arm:
    """``embedding_<base>``: ``base``'s rows and fit on the embedding table (its own shared balanced table)."""
    return replace(base, name=f"{EMBEDDING_PREFIX}{base.name}", table=EMBEDDING_TABLE, base=base.name)


EMBEDDING_PREFIX = "embedding_"
SWEEP_PREFIX = "diffusion_ratio"
# The input files of a job that trains an arm (siteaug.arms.protocol.read_arm_inputs' arguments), by their names in the
# rule's input.
ARM_INPUTS = ("residues", "tree_scores", "balanced", "edges")
# The embedding_* arms embed residues with the first seed's model of this arm, so it runs whenever one of them does.
EMBEDDING_MODEL_ARM = "graph_transformer"
# The arm whose grid the tree_scores job fits (siteaug.arms.tree_scores): its job then reads the grid point chosen there.
TREE_GRID_ARM = "gbdt"

_NONE = Arm("none")
_SMOTE = Arm("smote", rows="smote")
_DIFFUSION = Arm("diffusion", rows=BALANCED_ROWS, balanced=SHARED)
# In the schema's order (config/schema.yaml classifier.arms), which is the order of the default arm list.
ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    _NONE,
    Arm("class_weight", positive_weight=True),
    Arm("random_oversampling", rows="random_oversampling"),
    _SMOTE,
    Arm("borderline_smote", rows="borderline_smote"),
    Arm("diffusion_unfiltered", rows=BALANCED_ROWS, balanced=UNFILTERED),
    _DIFFUSION,
    Arm("smote_filtered", rows=BALANCED_ROWS, balanced=SMOTE_FILTERED),
    Arm("gbdt", fit="siteaug.arms.protocol:_fit_gbdt", settings=("gbdt",), model_suffix=".skops", reference=True, on_device=False),
    Arm("gnn", rows=GRAPHS, edges=True, fit="siteaug.arms.protocol:_fit_gnn", settings=("gnn",), reference=True),
    Arm(EMBEDDING_MODEL_ARM, rows=GRAPHS, edges=True, fit="siteaug.arms.protocol:_fit_graph_transformer", settings=("graph_transformer",)),
    _embedding(_NONE),
    _embedding(_SMOTE),
    _embedding(_DIFFUSION),
)}
ARM_NAMES = tuple(ARMS)


def sweep_arm(ratio: float) -> str:
    """Name of the diffusion arm balanced to ``ratio`` in the ratio sweep, e.g. ``diffusion_ratio0.5``."""
    return f"{SWEEP_PREFIX}{ratio:g}"


def sweep_ratio(name: str) -> float | None:
    """The target ratio of a sweep arm, None for any other arm."""
    return float(name[len(SWEEP_PREFIX):]) if name.startswith(SWEEP_PREFIX) else None


def lookup_arm(name: str) -> Arm:
    """The arm called ``name`` (a sweep arm ``diffusion_ratio<r>`` too); ValueError listing the choices otherwise."""
    if name in ARMS:
        return ARMS[name]
    if name.startswith(SWEEP_PREFIX):
        try:
            sweep_ratio(name)
        except ValueError:
            pass
        else:
            return Arm(name, rows=BALANCED_ROWS, balanced=RATIO_SWEEP)
    raise ValueError(f"unknown arm {name!r}; choose from {', '.join(ARM_NAMES)} or {SWEEP_PREFIX}<ratio>")


def arm_settings(name: str, classifier: dict) -> dict:
    """The keys of the ``classifier`` config section that arm ``name``'s training reads, and only those."""
    return {key: classifier[key] for key in (*COMMON_SETTINGS, *lookup_arm(name).settings)}


# Read by an arm's job alone (train_arm: how many seeds, how each seed's threshold is chosen), not by a seed's fit.
JOB_ONLY_SETTINGS = ("seeds", "threshold_metric")


def seed_fit_settings(name: str, classifier: dict) -> dict:
    """The keys of arm ``name``'s settings that one seed's fit reads: :func:`arm_settings` but ``JOB_ONLY_SETTINGS``. A
    rule that fits one seed for the arm's job (``embed_residues``) takes these, so that a change to the seed count or
    to the threshold choice reruns the arm's job, not that rule and the embedding-space pipeline after it."""
    return {key: value for key, value in arm_settings(name, classifier).items() if key not in JOB_ONLY_SETTINGS}


def seed_process_count(name: str, classifier: dict) -> int:
    """How many processes train arm ``name``'s seeds side by side (siteaug.arms.seed_processes): the config's
    ``classifier.seed_processes``, at most one per seed, for an arm that trains on a CUDA ``classifier.device``; else 1,
    the seeds one after another in the job's own process (on a CPU they would only share its cores)."""
    if not (lookup_arm(name).on_device and str(classifier["device"]).startswith("cuda")):
        return 1
    return max(1, min(classifier["seed_processes"], classifier["seeds"]))


def workflow_arms(configured: list[str], ratio_sweep: list[float]) -> list[str]:
    """The arms a run trains: the configured ones, one sweep arm per ratio, and the embedding model arm when an
    embedding arm needs its model."""
    arms = list(configured) + [a for a in map(sweep_arm, ratio_sweep) if a not in configured]
    if any(lookup_arm(a).table == EMBEDDING_TABLE for a in arms) and EMBEDDING_MODEL_ARM not in arms:
        arms.append(EMBEDDING_MODEL_ARM)
    return arms
