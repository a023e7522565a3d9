import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.features.graphs import protein_contexts
from siteaug.generative.columns import fit_codec
from siteaug.generative.diffusion import diffusion_config, save_model
from siteaug.generative.training import best_step, train_diffusion
from siteaug.runtime.device import configured_gpu_slot, resolve_device
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.tables import feature_columns, read_json, train_rows
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log, configured_gpu_slot(snakemake.params.gpu):
    d = snakemake.params.diffusion
    residues = read_parquet(snakemake.input.residues)
    feature_cols = feature_columns(residues)
    edges = read_parquet(snakemake.input.edges)
    device = resolve_device(d["device"])
    log.info("training on %s", device)
    # Column kinds and the quantile transform, from the training rows (siteaug.generative.columns); saved with the model.
    # The standardisation statistics let the codec see raw values (circle pairs: sine and cosine of a dihedral).
    standardisation = read_json(snakemake.input.standardisation) if d["circular_columns"] else None
    codec = fit_codec(residues, snakemake.params.seed, quantile=d["quantile_transform"], discrete=d["discrete_columns"],
                      standardisation=standardisation)
    config = diffusion_config(d, codec.model_dim)
    model, history = train_diffusion(
        residues, edges, config, d["steps"], d["batch_proteins"], d["lr"], snakemake.params.seed, device,
        eval_every=d["eval_every"], ema_decay=d["ema_decay"], patience=d["patience"], codec=codec,
        mixed_precision=d["mixed_precision"], cuda_graph=d["cuda_graph"],
    )
    # The saved weights are the EMA weights of the best validation loss; the sampler loads them as they are.
    extra = {"feature_columns": feature_cols, "codec": codec.state(), "best_step": best_step(history), "last_step": history[-1]["step"]}
    save_model(model, snakemake.output.model, extra)
    # Generation jobs look contexts up instead of running the GNN (and importing torch-geometric) again.
    train_ids = train_rows(residues)["protein_id"].unique().tolist()
    contexts = protein_contexts(model, codec.encode_table(residues), edges, codec.model_columns, train_ids, device)
    write_parquet(contexts.reset_index(), snakemake.output.contexts)
    write_json(history, snakemake.output.history)
