import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import time

from siteaug.generative.columns import ColumnCodec
from siteaug.generative.diffusion import load_model
from siteaug.generative.generation import generate_candidates
from siteaug.runtime.device import configured_gpu_slot, resolve_device
from siteaug.runtime.io import read_parquet, write_parquet
from siteaug.runtime.workflow import exit_now, process_age, rule_logging

with rule_logging(snakemake) as log, configured_gpu_slot(snakemake.params.gpu) as card:
    # Where a shard's wall time goes (process start and imports: rule_logging's first line; loading, sampling,
    # writing), for bench/RESULTS.md.
    if card is not None:
        log.info("process start to GPU held: %.1f s", process_age())
    phase = time.perf_counter()
    p = snakemake.params
    shard = int(snakemake.wildcards.shard)
    device = resolve_device(p.device)
    model, extra = load_model(snakemake.input.model, device, with_encoder=False)
    if "codec" not in extra:
        raise ValueError(f"{snakemake.input.model}: no column codec in the model file (written before siteaug.generative.columns); rerun train_diffusion")
    codec = ColumnCodec.from_state(extra["codec"])
    contexts = read_parquet(snakemake.input.contexts).set_index("protein_id")
    plan = read_parquet(snakemake.input.plan)  # rule plan_generation: each protein's quota, shard and seed
    rows = plan[plan["shard"] == shard]
    mine = rows.set_index("protein_id")["quota"]
    seeds = rows["seed"].unique()
    if len(seeds) > 1:
        raise ValueError(f"{snakemake.input.plan}: shard {shard} has {len(seeds)} seeds; rerun plan_generation")
    seed = int(seeds[0]) if len(seeds) else 0  # a shard without proteins draws nothing, whatever its seed
    log.info("load model and tables: %.1f s", time.perf_counter() - phase)
    phase = time.perf_counter()
    log.info("shard %d: %d proteins, %d candidates on %s", shard, len(mine), int(mine.sum()) * p.sample_multiplier, device)
    candidates = generate_candidates(
        model, contexts, extra["feature_columns"], mine * p.sample_multiplier,
        seed=seed, device=device, chunk_size=p.chunk_size, precision=p.precision,
        sampler=p.sampler, sampler_steps=p.sampler_steps, cuda_graph=p.cuda_graph, compile=p.compile, codec=codec,
    )
    log.info("sampling: %.1f s", time.perf_counter() - phase)
    phase = time.perf_counter()
    write_parquet(candidates, snakemake.output[0], compress_floats=False)  # LZ4 does not shrink samples
    log.info("write %d rows: %.1f s", len(candidates), time.perf_counter() - phase)
exit_now()  # output renamed into place, log closed: skip the ~0.4 s interpreter teardown (siteaug.runtime.workflow.exit_now)
