import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import os

from siteaug.runtime.device import configured_gpu_slot
from siteaug.runtime.workflow import compile_threads, rule_logging

with rule_logging(snakemake) as log, configured_gpu_slot(snakemake.params.gpu):
    p = snakemake.params
    compile_threads(snakemake.threads)
    from siteaug.arms.graph_transformer import compile_training_step, graph_transformer_config
    from siteaug.runtime.io import write_json

    # The compiled part sees no feature count (ResidueGraphTransformer.blocks): any input width compiles the fits' step.
    config = graph_transformer_config(p.settings, input_dim=1, seed=p.seed)
    seconds = compile_training_step(config, "cuda")
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "torch's default")
    log.info("graph_transformer's training step compiled in %.1f s; compile cache: %s", seconds, cache)
    write_json({"settings": p.settings, "seconds": round(seconds, 1), "compile_cache": cache}, snakemake.output[0])
