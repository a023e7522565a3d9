"""The strong base model: a graph transformer over the residue graph with edge features.

Each residue is a node with its feature row; each edge carries the Cα distance (radial basis), the sequence
separation and, where a structure exists, the direction to the neighbour in the residue's backbone frame and the
relative orientation of the two frames (``siteaug.features.residues.edge_geometry``). Layers are torch-geometric
``TransformerConv`` attention with those edge features (as AGAT-PPIS uses edge-aware attention), in pre-norm residual
blocks with a feed-forward part, plus GCNII's initial residual (a share ``alpha`` of the input representation is mixed
back in at every layer, which keeps deep stacks from over-smoothing). Whole protein graphs are trained together;
the epoch is chosen on the validation split's pooled AUPRC.

The node representation after the last block is the residue's *embedding*; the classification head reads only it,
so a head retrained on embeddings (the ``embedding_*`` arms) sees exactly what the trained head saw.
"""
from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import TransformerConv

from siteaug.features.graphs import GraphBatch, GraphStack, protein_graphs
from siteaug.features.residues import EDGE_GEOMETRY_COLUMNS
from siteaug.runtime.cuda_graphs import PaddedGraphSteps, capture_step, clipped_step, keep_learning_rate_tensor
from siteaug.runtime.early_stopping import EarlyStopping
from siteaug.runtime.io import save_torch
from siteaug.runtime.tables import FEATURE_PREFIX, is_feature_column

log = logging.getLogger(__name__)

# Radial basis of the Cα distance: centres every 4/3 Å from 2 to 22 Å (beyond every graph radius the schema allows
# in practice), Gaussian width of one spacing.
RBF_CENTRES = np.linspace(2.0, 22.0, 16)
RBF_WIDTH = float(RBF_CENTRES[1] - RBF_CENTRES[0])
# Sequence separation |dst - src| in bins: 1, 2, 3-4, 5-8, 9-16, 17-32, > 32.
SEPARATION_EDGES = np.array([1, 2, 4, 8, 16, 32])
EDGE_DIM = len(RBF_CENTRES) + 1 + 1 + (len(SEPARATION_EDGES) + 1) + 6
VALIDATION_BATCH = 32  # graphs per batch when predicting (no gradients, so larger than the training batch)


def edge_attributes(edges: pd.DataFrame) -> np.ndarray:
    """(E, EDGE_DIM) float32 edge features from the features stage's edges table (one protein or many): distance RBF
    (0 when unknown), a has-distance flag, the separation's sign and bin one-hot, and the six orientation columns."""
    missing = [c for c in ("src", "dst", *EDGE_GEOMETRY_COLUMNS) if c not in edges.columns]
    if missing:
        raise ValueError(f"the edges table lacks {', '.join(missing)}: rerun the features rule")
    distance = edges["distance"].to_numpy(np.float64)
    known = np.isfinite(distance)
    rbf = np.exp(-(((np.where(known, distance, 0.0)[:, None] - RBF_CENTRES[None]) / RBF_WIDTH) ** 2)) * known[:, None]
    separation = edges["dst"].to_numpy(np.int64) - edges["src"].to_numpy(np.int64)
    bins = np.zeros((len(edges), len(SEPARATION_EDGES) + 1))
    bins[np.arange(len(edges)), np.searchsorted(SEPARATION_EDGES, np.abs(separation), side="left")] = 1.0
    orientation = edges[list(EDGE_GEOMETRY_COLUMNS[1:])].to_numpy(np.float64)
    return np.hstack([rbf, known[:, None], np.sign(separation)[:, None], bins, orientation]).astype(np.float32)


def attributed_graphs(residues: pd.DataFrame, edges: pd.DataFrame, feature_cols: list[str], protein_ids) -> list[Data]:
    """One ``Data`` per protein, in ``protein_ids`` order, with node features, labels and ``edge_attr``."""
    return protein_graphs(residues, edges, feature_cols, protein_ids, edge_attributes=edge_attributes)


@dataclass
class GraphTransformerConfig:
    input_dim: int
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    dropout: float = 0.2
    alpha: float = 0.1  # GCNII initial residual: share of the input representation mixed in after every layer
    epochs: int = 60
    patience: int = 10  # epochs without a validation AUPRC gain before stopping
    batch_proteins: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    members: int = 1  # networks averaged per seed (a deep ensemble), each with its own epoch chosen on validation
    # Whether the node features end with the out-of-fold tree score (siteaug.arms.tree_scores); whoever embeds with a saved
    # model must append it too.
    tree_input: bool = False
    # On CUDA, each training step replays a captured CUDA graph (one per batch size bucket, batches padded to it): an
    # eager step launches about 600 small kernels from Python, which bounds the loop at a few times the GPU's time.
    # Checked on an H100 (bench/RESULTS.md, "graph_transformer captured steps"): the same held-out figures, half the time.
    cuda_graph: bool = True
    # On CUDA, the training step runs the network's attention blocks through torch.compile (dynamic shapes: one
    # compilation serves every batch size bucket), which fuses the attention's gathers, products and softmax around the
    # matrix products. With the whole network compiled, an epoch took 0.167 against 0.37 s on an H100, captured both,
    # and compiling 35 s in a fresh process (bench/RESULTS.md, "graph_transformer compiled"). Scoring stays eager. Off
    # by default: in the whole DNA-573 comparison a fit's first epoch still took 11-15 s with the compile cache read
    # (tracing, loading, capture), so the arm's job was no shorter ("graph_transformer compiled, measured in the
    # workflow"); it can pay only for fits with many more or larger epochs.
    compile: bool = False
    seed: int = 0


SETTING_KEYS = tuple(f.name for f in fields(GraphTransformerConfig) if f.name not in ("input_dim", "seed"))


def member_seed(seed: int, member: int) -> int:
    """Seed of ensemble member ``member`` of the arm seed ``seed``: the seed itself for the first member (so one member
    is exactly the single model), then draws of ``SeedSequence((seed, member))``, which never coincide with the arm's
    other seeds ``seed + 1, ...``."""
    if member == 0:
        return seed
    return int(np.random.SeedSequence((seed, member)).generate_state(1)[0] % 2**31)


def graph_transformer_config(settings: dict, input_dim: int, seed: int) -> GraphTransformerConfig:
    """A config from the config file's ``classifier.graph_transformer`` section."""
    return GraphTransformerConfig(input_dim=input_dim, seed=seed, **{k: settings[k] for k in SETTING_KEYS})


class ResidueGraphTransformer(nn.Module):
    def __init__(self, config: GraphTransformerConfig):
        super().__init__()
        if config.hidden % config.heads:
            raise ValueError(f"classifier.graph_transformer: hidden ({config.hidden}) must be a multiple of heads ({config.heads})")
        h, self.alpha = config.hidden, config.alpha
        self.input = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.input_dim, h), nn.LayerNorm(h), nn.GELU())
        self.attention_norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(config.layers))
        self.convs = nn.ModuleList(
            TransformerConv(h, h // config.heads, heads=config.heads, edge_dim=EDGE_DIM, dropout=config.dropout / 2)
            for _ in range(config.layers)
        )
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(config.layers))
        self.ffns = nn.ModuleList(
            nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(2 * h, h))
            for _ in range(config.layers)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.out_norm = nn.LayerNorm(h)
        self.head = nn.Sequential(nn.Linear(h, h // 2), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(h // 2, 1))

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor, blocks=None) -> torch.Tensor:
        """Each node's embedding. ``blocks``: what runs the attention blocks (``self.blocks``, or a compiled version of it:
        ``training_forward``)."""
        return (blocks or self.blocks)(self.input(x), edge_index, edge_attr)

    def blocks(self, h0: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """The attention blocks and the last norm, from the input representation ``h0``: all of the network that does not
        see the feature count, so that one compilation of it serves any dataset (``compile_training_step``)."""
        h = h0
        for norm, conv, ffn_norm, ffn in zip(self.attention_norms, self.convs, self.ffn_norms, self.ffns):
            h = h + self.dropout(conv(norm(h), edge_index, edge_attr))
            h = (1 - self.alpha) * h + self.alpha * h0
            h = h + self.dropout(ffn(ffn_norm(h)))
        return self.out_norm(h)

    def forward(self, x, edge_index, edge_attr, blocks=None) -> torch.Tensor:
        return self.head(self.embed(x, edge_index, edge_attr, blocks)).squeeze(-1)


def training_forward(network: ResidueGraphTransformer, compiled: bool):
    """The function a training step calls: the network itself, or the network with its blocks run through
    ``torch.compile`` (dynamic shapes: one compilation serves every batch size). The input layer and the head stay
    eager: a few small kernels, captured with the rest, and the compiled part then does not depend on the dataset."""
    if not compiled:
        return network
    blocks = torch.compile(network.blocks, dynamic=True, fullgraph=True)
    return functools.partial(network.forward, blocks=blocks)


class _CapturedSteps(PaddedGraphSteps):
    """Training steps of one network replayed from CUDA graphs: one graph per (node, edge) capacity of
    ``GraphStack.capacities``; each gathers its batch's rows itself. The loss is the mean over the real nodes, as the
    eager step's."""

    def __init__(self, network: ResidueGraphTransformer, stack: GraphStack, optimiser, total: torch.Tensor, forward=None):
        super().__init__(stack)
        self.network, self.optimiser, self.total = network, optimiser, total
        self.forward = forward or network  # training_forward's

    def key(self, chosen) -> tuple[int, int]:
        return self.stack.capacities(chosen)

    def capture(self, static: torch.Tensor, node_capacity: int, edge_capacity: int) -> torch.cuda.CUDAGraph:
        # Views of ``static``, which self.graphs keeps: a tensor that only this function held would be freed after the
        # capture, and the replays would read whatever then took its memory (a GPU test caught that once: see
        # bench/RESULTS.md). Tensors made inside step() live in the graph's own pool.
        node_ids, edge_ids, edge_shift, real = static.split(GraphStack.padded_layout(node_capacity, edge_capacity))
        forward, parameters = self.forward, list(self.network.parameters())

        def step():
            position = torch.arange(node_capacity, device=static.device)
            x, edge_index, edge_attr, y = self.stack.gather(node_ids, edge_ids, edge_shift)
            per_node = nn.functional.binary_cross_entropy_with_logits(forward(x, edge_index, edge_attr), y.float(), reduction="none")
            loss = (per_node * (position < real).float()).sum() / real.float()
            clipped_step(loss, parameters, self.optimiser, self.total)

        return capture_step(step, parameters, self.optimiser, static.device, keep=[self.total], pool=self.pool)


class GraphTransformerClassifier:
    """Trains ``ResidueGraphTransformer`` on whole protein graphs; keeps the epoch with the best validation AUPRC.

    With ``config.members`` > 1 it is a deep ensemble: that many networks from different seeds (``member_seed``), each
    trained and epoch-selected the same way, their probabilities averaged. Embeddings are the first member's."""

    def __init__(self, config: GraphTransformerConfig, device: str | torch.device = "cpu"):
        if config.members < 1:
            raise ValueError(f"classifier.graph_transformer.members must be at least 1, not {config.members}")
        self.config = config
        self.device = torch.device(device)
        self.networks = []
        for member in range(config.members):
            torch.manual_seed(member_seed(config.seed, member))
            self.networks.append(ResidueGraphTransformer(config).to(self.device))
        self.histories: list[list[dict]] = [[] for _ in self.networks]
        self.best_epochs: list[int | None] = [None for _ in self.networks]

    @property
    def network(self) -> ResidueGraphTransformer:
        """The first member: the one whose embeddings the embedding_* arms read."""
        return self.networks[0]

    @property
    def history(self) -> list[dict]:
        return self.histories[0]

    @property
    def best_epoch(self) -> int | None:
        return self.best_epochs[0]

    def fit(self, train: list[Data], validation: list[Data], progress=None) -> "GraphTransformerClassifier":
        if not any(int(g.y.sum()) > 0 for g in train):
            raise ValueError("training graphs hold no positive residue; a classifier cannot be fitted")
        # Graphs live on the device for the whole fit, so batching them is a few device-side gathers; the validation
        # batches are the same at every epoch and built once.
        train = GraphStack(train, self.device)
        validation = GraphStack(validation, self.device).in_order(VALIDATION_BATCH)
        # The validation labels, once for every member; None when they cannot rank epochs.
        val_labels = torch.cat([b.y for b in validation]).cpu().numpy() if validation else np.zeros(0)
        if not 0 < val_labels.sum() < len(val_labels):
            log.warning("graph_transformer: the validation split has one class only; keeping the last epoch")
            val_labels = None
        for member, network in enumerate(self.networks):
            self.histories[member], self.best_epochs[member] = self._fit_member(
                network, member_seed(self.config.seed, member), train, validation, val_labels, progress)
        return self

    def _fit_member(self, network: ResidueGraphTransformer, seed: int, train: GraphStack, validation: list[GraphBatch],
                    val_labels: np.ndarray | None, progress) -> tuple[list[dict], int]:
        cfg = self.config
        on_cuda = self.device.type == "cuda"
        captured = on_cuda and cfg.cuda_graph
        # The training step's forward (and, through it, backward) compiled; scoring calls the network itself.
        forward = training_forward(network, on_cuda and cfg.compile)
        # Fused: one kernel per step for all parameters on a GPU, as train_diffusion's optimiser. Captured steps need
        # the step count on the device (capturable) and a tensor learning rate, which the schedule changes in place.
        learning_rate = torch.tensor(cfg.lr, device=self.device) if captured else cfg.lr
        parameters = list(network.parameters())
        optimiser = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=cfg.weight_decay, fused=on_cuda,
                                      capturable=captured)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs, eta_min=cfg.lr * 0.05)
        loss_fn = nn.BCEWithLogitsLoss()
        rng = np.random.default_rng(seed)
        train_batches = max(1, math.ceil(len(train) / cfg.batch_proteins))
        history: list[dict] = []
        stopping = EarlyStopping(higher_is_better=True, patience=cfg.patience)
        began = time.monotonic()  # the log's seconds per epoch: what the card gave this fit, next to other work
        # The epoch's loss is summed on the device and read once per epoch: reading it (or testing it) every step would
        # make the host wait for the GPU at every step of a loop that the host bounds.
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        steps = _CapturedSteps(network, train, optimiser, total, forward) if captured else None
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)  # dropout draws from the global generator
            epochs = range(1, cfg.epochs + 1)
            for epoch in epochs if progress is None else progress(epochs):
                network.train()
                order = rng.permutation(len(train))
                total.zero_()
                for b in range(train_batches):
                    chosen = order[b * cfg.batch_proteins : (b + 1) * cfg.batch_proteins]
                    if steps is not None:
                        steps.run(chosen)
                        continue
                    batch = train.batch(chosen)
                    # Full precision: under bf16 autocast a seed of DNA-573 diverged (H200); the step is bound by batching
                    # many small graphs, not by arithmetic.
                    loss = loss_fn(forward(batch.x, batch.edge_index, batch.edge_attr), batch.y.float())
                    optimiser.zero_grad(set_to_none=True)
                    clipped_step(loss, parameters, optimiser, total)
                scheduler.step()
                if captured:
                    keep_learning_rate_tensor(optimiser, learning_rate)
                mean_loss = total.item() / train_batches
                if not math.isfinite(mean_loss):  # a non-finite step loss makes the sum, and the weights, non-finite
                    raise FloatingPointError(
                        f"graph_transformer seed {seed} diverged at epoch {epoch} (non-finite loss); lower "
                        "classifier.graph_transformer.lr")
                record = {"epoch": epoch, "train_loss": round(mean_loss, 5)}
                if val_labels is not None:
                    scores = self._per_batch(validation, lambda b, n=network: torch.sigmoid(n(b.x, b.edge_index, b.edge_attr)), network)
                    record["validation_auprc"] = round(float(average_precision_score(val_labels, scores.numpy())), 5)
                history.append(record)
                if epoch == 1:  # it also captured (and compiled) the steps
                    first_epoch = time.monotonic() - began
                # Without validation rows the epoch itself is the score: every epoch gains and the last is kept.
                if stopping.update(epoch, record.get("validation_auprc", epoch), network):
                    break
        best_epoch = stopping.best_step
        network.load_state_dict(stopping.best_state)
        network.eval()
        seconds = time.monotonic() - began
        later = (seconds - first_epoch) / (len(history) - 1) if len(history) > 1 else float("nan")
        setup = [name for name, done in (("compilation", forward is not network), ("capture", captured)) if done]
        log.info("graph_transformer seed %d: kept epoch %d of %d (validation AUPRC %s); %.1f s: the first epoch %.1f s%s, "
                 "then %.2f s an epoch", seed, best_epoch, len(history), history[best_epoch - 1].get("validation_auprc"),
                 seconds, first_epoch, f" (with {' and '.join(setup)})" if setup else "", later)
        return history, best_epoch

    @torch.inference_mode()
    def _per_batch(self, batches: list[GraphBatch], fn, network: ResidueGraphTransformer | None = None) -> torch.Tensor:
        for member in [network] if network is not None else self.networks:
            member.eval()
        out = [fn(batch).float() for batch in batches]
        return torch.cat(out).cpu() if out else torch.zeros(0)

    def _in_batches(self, graphs: list[Data]) -> list[GraphBatch]:
        return GraphStack(graphs, self.device).in_order(VALIDATION_BATCH)

    def predict_graphs(self, graphs: list[Data]) -> np.ndarray:
        """Probabilities of every residue of ``graphs``, concatenated in graph order."""
        def mean_probability(b):
            return torch.stack([torch.sigmoid(n(b.x, b.edge_index, b.edge_attr)) for n in self.networks]).mean(0)

        return self._per_batch(self._in_batches(graphs), mean_probability).numpy()

    def embed_graphs(self, graphs: list[Data]) -> np.ndarray:
        """(residues, hidden) embeddings of every residue of ``graphs``, in graph order: what the head reads."""
        return self._per_batch(self._in_batches(graphs), lambda b: self.network.embed(b.x, b.edge_index, b.edge_attr)).numpy()

    def save(self, path) -> None:
        save_torch({"config": asdict(self.config), "state_dicts": [n.state_dict() for n in self.networks],
                    "best_epochs": self.best_epochs}, path)

    @classmethod
    def load(cls, path, device: str | torch.device = "cpu") -> "GraphTransformerClassifier":
        payload = torch.load(path, map_location=device, weights_only=True)
        model = cls(GraphTransformerConfig(**payload["config"]), device)
        for network, state in zip(model.networks, payload["state_dicts"], strict=True):
            network.load_state_dict(state)
            network.eval()
        model.best_epochs = list(payload["best_epochs"])
        return model


def compile_training_step(config: GraphTransformerConfig, device) -> float:
    """Compile ``config``'s training step on ``device`` (a CUDA card) ahead of its fits, so that each of them reads the
    compilation from torch's compile cache instead of compiling it again (35 s in a fresh process on an H100; reading
    the cache took 5.9 s against 39.0 s of compiling on a 2-core CPU, bench/RESULTS.md). It runs one epoch of the
    fit's own code on a few random graphs: the compiled part
    (``ResidueGraphTransformer.blocks``) sees no feature count, so the graphs need not be the dataset's. Returns the
    seconds it took."""
    began = time.monotonic()
    generator = torch.Generator().manual_seed(config.seed)
    graphs = []
    for nodes in (40, 70, 110, 90):  # both classes in each, so that the validation pass scores the epoch as in a fit
        edge_index = torch.randint(0, nodes, (2, 8 * nodes), generator=generator)
        graphs.append(Data(x=torch.randn(nodes, 1, generator=generator), edge_index=edge_index,
                           edge_attr=torch.randn(edge_index.shape[1], EDGE_DIM, generator=generator),
                           y=(torch.arange(nodes) % 5 == 0).long()))
    settings = {**asdict(config), "input_dim": 1, "epochs": 1, "members": 1}
    GraphTransformerClassifier(GraphTransformerConfig(**settings), device).fit(graphs[:3], graphs[3:])
    return time.monotonic() - began


def embedding_table(model: GraphTransformerClassifier, residues: pd.DataFrame, edges: pd.DataFrame,
                    feature_cols: list[str]) -> pd.DataFrame:
    """Every residue's embedding as a residue table: the identifying columns of ``residues`` (protein_id, position,
    residue, label, split) in (protein_id, position) order, then ``f_emb_<k>``. Not yet standardised."""
    ordered = residues.sort_values(["protein_id", "position"], kind="stable").reset_index(drop=True)
    proteins = list(dict.fromkeys(ordered["protein_id"]))
    embeddings = model.embed_graphs(attributed_graphs(ordered, edges, feature_cols, proteins))
    keep = [c for c in ordered.columns if not is_feature_column(c)]
    columns = pd.DataFrame(embeddings, columns=[f"{FEATURE_PREFIX}emb_{k}" for k in range(embeddings.shape[1])])
    return pd.concat([ordered[keep], columns], axis=1)
