"""What every rule script shares: logging into the rule's log file and one-line errors for bad input."""
from __future__ import annotations

import contextlib
import logging
import sys
import time

import torch

from .io import InputError


@contextlib.contextmanager
def rule_logging(snakemake):
    """Send logging and stderr (tqdm) to the rule's log; turn an InputError into a one-line error and exit 1."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    stream = open(log_path, "w", buffering=1) if log_path else sys.stderr
    real_stderr = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    sys.stderr = stream
    torch.set_num_threads(max(1, int(snakemake.threads)))
    start = time.perf_counter()
    try:
        yield logging.getLogger(f"siteaug.rule.{snakemake.rule}")
        logging.info("rule %s done in %.1f s", snakemake.rule, time.perf_counter() - start)
    except InputError as err:
        logging.error("%s", err)
        print(f"error: {err}", file=real_stderr)
        sys.stderr = real_stderr
        raise SystemExit(1) from None
    finally:
        sys.stderr = real_stderr
        if stream is not real_stderr:
            stream.close()
