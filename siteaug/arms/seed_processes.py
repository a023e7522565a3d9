"""An arm's seeds trained side by side on one CUDA card, each in a Python process of its own.

Why processes: a seed's training loop is bound by the host (one Python thread launching many small kernels: the graph
arms batch a few protein graphs per step, the MLP steps are small), so one seed leaves the card mostly idle and the
seeds of an arm, run one after another, are the longest job of a GPU run. Threads would share one interpreter lock;
processes each have their own, and the card runs their kernels side by side.

How: the parent pickles the arm's :class:`~siteaug.arms.protocol.FitContext` once into a temporary folder and starts
``python -m siteaug.arms.seed_processes CONTEXT SEED OUT THREADS`` per seed (no more than ``processes`` at a time). Each
child runs the arm's fit function for its seed exactly as the sequential loop would, moves the model to the CPU and
pickles (model, validation scores, test scores, summary) back. A child's log records go to a file the parent then
copies into its own log, seed by seed; an exception in a child is pickled and raised again in the parent, so a user
sees the same one-line error as without processes. Results do not depend on the number of processes: each seed's fit
draws only from its own seed (``tests/test_seed_processes.py`` compares them with the sequential loop on the CPU).
"""
from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel kills it when the parent dies (a SIGKILLed rule job must not leave
    seeds training on the card)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child then outlives a killed parent until its fit ends
        pass


def _child_environment() -> dict:
    # The child imports the same siteaug as the parent (a rule job's checkout, not an installed copy).
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def fit_seeds_in_processes(fit_name: str, context, seeds: list[int], processes: int, threads: int) -> list[tuple]:
    """(model, validation scores, test scores, summary) of every seed, in the order of ``seeds``, each fitted by the arm
    fit function ``fit_name`` ("module:function") in a child process; at most ``processes`` run at a time, each with
    ``threads`` CPU threads."""
    with tempfile.TemporaryDirectory(prefix="siteaug-seeds-") as tmp:
        folder = Path(tmp)
        job = folder / "context.pkl"
        with open(job, "wb") as handle:
            # The progress callback (a tqdm bar of the parent's log) does not cross processes; the cache is per process.
            pickle.dump((fit_name, replace(context, progress=None, cache={})), handle, protocol=pickle.HIGHEST_PROTOCOL)

        def run(seed: int) -> tuple:
            out, child_log = folder / f"seed_{seed}.pkl", folder / f"seed_{seed}.log"
            with open(child_log, "w") as stderr:
                done = subprocess.run(
                    [sys.executable, "-m", __name__, str(job), str(seed), str(out), str(threads)],
                    stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=_child_environment(),
                    preexec_fn=_die_with_parent, check=False,
                )
            text = child_log.read_text(errors="replace").rstrip()
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(f"seed {seed} of arm {context.arm.name}: its process exited with {done.returncode}"
                                   f"{'; its log: ' + text[-2000:] if text else ''}")
            with open(out, "rb") as handle:
                outcome = pickle.load(handle)
            return outcome, text

        log.info("arm %s: %d seeds in %d processes on %s", context.arm.name, len(seeds), min(processes, len(seeds)), context.device)
        with ThreadPoolExecutor(max_workers=max(1, min(processes, len(seeds)))) as pool:
            finished = list(pool.map(run, seeds))
    results = []
    for seed, (outcome, text) in zip(seeds, finished):
        if text:
            log.info("arm %s seed %d, its process's log:\n%s", context.arm.name, seed, text)
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


def _to_cpu(model):
    """The model with its networks on the CPU, so that it unpickles in a parent that never touched the card."""
    import torch

    for value in vars(model).values():
        for module in value if isinstance(value, list) else [value]:
            if isinstance(module, torch.nn.Module):
                module.to("cpu")
    if hasattr(model, "device"):
        model.device = torch.device("cpu")
    return model


def _main(job: str, seed: str, out: str, threads: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import importlib

    import torch
    from threadpoolctl import threadpool_limits

    from siteaug.runtime.io import atomic_path

    torch.set_num_threads(int(threads))
    with open(job, "rb") as handle:
        fit_name, context = pickle.load(handle)
    module, _, function = fit_name.partition(":")
    try:
        with threadpool_limits(int(threads)):
            model, val_scores, test_scores, info = getattr(importlib.import_module(module), function)(context, int(seed))
        outcome = (_to_cpu(model), val_scores, test_scores, info)
    except Exception as error:  # raised again, the same, in the parent
        log.exception("seed %s failed", seed)
        outcome = error
    with atomic_path(out) as tmp, open(tmp, "wb") as handle:
        pickle.dump(outcome, handle, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _main(*sys.argv[1:])
