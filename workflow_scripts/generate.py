import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.device import pin_single_gpu, resolve_device

pin_single_gpu()

from siteaug.balance import assign_shards, synthetic_quota  # noqa: E402
from siteaug.diffusion import load_model  # noqa: E402
from siteaug.generation import generate_candidates  # noqa: E402
from siteaug.io import read_parquet, write_parquet  # noqa: E402
from siteaug.workflow import rule_logging  # noqa: E402

with rule_logging(snakemake) as log:
    p = snakemake.params
    shard = int(snakemake.wildcards.shard)
    device = resolve_device(p.device)
    model, extra = load_model(snakemake.input.model, device)
    residues = read_parquet(snakemake.input.residues)
    edges = read_parquet(snakemake.input.edges)
    quota = synthetic_quota(residues[residues["split"] == "train"], p.ratio)
    mine = quota[assign_shards(quota, p.shards).to_numpy() == shard].set_index("protein_id")["quota"]
    log.info("shard %d: %d proteins, %d candidates on %s", shard, len(mine), int(mine.sum()) * p.sample_multiplier, device)
    candidates = generate_candidates(
        model, residues, edges, extra["feature_columns"], mine * p.sample_multiplier,
        seed=p.seed * 1_000_003 + shard, device=device, chunk_size=p.chunk_size, precision=p.precision,
    )
    write_parquet(candidates, snakemake.output[0])
