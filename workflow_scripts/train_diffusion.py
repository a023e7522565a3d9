import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.device import pin_single_gpu, resolve_device

pin_single_gpu()

from siteaug.diffusion import DiffusionConfig, save_model  # noqa: E402
from siteaug.features import feature_columns  # noqa: E402
from siteaug.io import read_parquet, write_json  # noqa: E402
from siteaug.training import train_diffusion  # noqa: E402
from siteaug.workflow import rule_logging  # noqa: E402

with rule_logging(snakemake) as log:
    d = snakemake.params.diffusion
    residues = read_parquet(snakemake.input.residues)
    edges = read_parquet(snakemake.input.edges)
    device = resolve_device(d["device"])
    log.info("training on %s", device)
    config = DiffusionConfig(
        feature_dim=len(feature_columns(residues)),
        **{k: d[k] for k in ("hidden", "blocks", "context", "gnn_hidden", "gnn_layers", "gnn_heads", "timesteps", "schedule", "clip_denoised")},
    )
    model, history = train_diffusion(
        residues, edges, config, d["steps"], d["batch_proteins"], d["lr"], snakemake.params.seed, device
    )
    save_model(model, snakemake.output.model, {"feature_columns": feature_columns(residues)})
    write_json(history, snakemake.output.history)
