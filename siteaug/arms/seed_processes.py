"""An arm's seeds trained side by side on one CUDA card, each in a Python process of its own.

Why processes: a seed's training loop is bound by the host (one Python thread launching many small kernels: the graph
arms batch a few protein graphs per step, the MLP steps are small), so one seed leaves the card mostly idle and the
seeds of an arm, run one after another, are the longest job of a GPU run. Threads would share one interpreter lock;
processes each have their own, and the card runs their kernels side by side.

How: the parent writes its :class:`~siteaug.arms.protocol.FitContext` (JSON) into a private temporary folder: the
paths of the rule job's input files, which each child reads as the job did (:func:`~siteaug.arms.protocol.read_arm_inputs`),
or, when the tables came from elsewhere, copies of them (Parquet). It then starts ``python -m
siteaug.arms.seed_processes FOLDER SEED THREADS PARENT_PID`` per seed, no more than ``processes`` at a time. Each child runs the arm's fit function for its seed exactly as the
sequential loop would and writes back the model (its own ``save``, read with its class's ``load``: no pickle), the
validation and test scores (``.npz``) and the summary or the error (JSON). A child's log records go to a file that the
parent then copies into its own log, seed by seed; an error the user can act on (``ValueError``, ``InputError``,
``FloatingPointError``) is raised again in the parent with the same type and message, as without processes. Results do
not depend on the number of processes: each seed's fit draws only from its own seed (``tests/test_seed_processes.py``
compares them with the sequential loop on the CPU).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(parent: int) -> None:
    """In the child, first thing: the kernel kills it when the parent dies (a SIGKILLed rule job must not leave seeds
    training on the card). Set here rather than in a ``preexec_fn``, which is unsafe in a parent with threads; a
    parent that died before it was set is caught by the pid check."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child then outlives a killed parent until its fit ends
        return
    if os.getppid() != parent:
        os._exit(1)


def _child_environment() -> dict:
    # The child imports the same siteaug as the parent (a rule job's checkout, not an installed copy).
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


_TABLES = ("train", "validation", "test", "balanced", "edges")


def _reraisable() -> dict:
    from siteaug.runtime.io import InputError

    return {e.__name__: e for e in (ValueError, InputError, FloatingPointError)}


def seed_model_path(folder, seed: int) -> Path:
    """Where :func:`save_seed_fit` puts the model of ``seed`` (read with its class's ``load``)."""
    return Path(folder) / f"seed_{seed}.model"


def save_seed_fit(folder, seed: int, model, val_scores, test_scores, info: dict) -> None:
    """One seed's fit as files in ``folder``: the model (its own ``save``: no pickle), the validation and test scores
    (``.npz``) and the training summary with the model's class (JSON, written last: its presence marks a whole fit).
    A seed process writes its fit so, and so does a rule job that fits one seed for other jobs (the workflow's ``embed_residues``)."""
    import numpy as np

    from siteaug.runtime.io import atomic_path, write_json

    folder = Path(folder)
    model.save(seed_model_path(folder, seed))
    with atomic_path(folder / f"seed_{seed}.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, validation=np.asarray(val_scores), test=np.asarray(test_scores))
    model_class = f"{type(model).__module__}:{type(model).__qualname__}"
    write_json({"model_class": model_class, "info": info}, folder / f"seed_{seed}.json")


def _checked_class_name(name: str, source) -> tuple[str, str]:
    """(module, class) of ``module:qualname``, one of this package's models only: the file ``source`` names the class
    to import."""
    module, _, cls = name.partition(":")
    if module.split(".")[0] != "siteaug":
        raise ValueError(f"{source}: model class {name!r} is not one of siteaug's")
    return module, cls


def _model_class(name: str, source):
    import importlib

    module, cls = _checked_class_name(name, source)
    return getattr(importlib.import_module(module), cls)


class SavedModel:
    """A seed's model as :func:`save_seed_fit` wrote it, kept as that file's bytes: ``save`` writes them to another
    file, ``load`` reads the model. The arm's job only saves the models its seed processes (or another job) fitted;
    loading them would import their class's libraries for nothing (torch-geometric for the graph arms: 5.7 s of the
    graph_transformer job on an H100, bench/RESULTS.md, 2026-12-06, seventh session)."""

    def __init__(self, model_class: str, content: bytes, source):
        self.model_class, self.content, self.source = model_class, content, source

    def save(self, path) -> None:
        from siteaug.runtime.io import atomic_path

        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(self.content)

    def load(self):
        cls = _model_class(self.model_class, self.source)
        with tempfile.TemporaryDirectory(prefix="siteaug-model-") as tmp:
            path = Path(tmp) / "model"
            path.write_bytes(self.content)
            return cls.load(path)


def load_seed_fit(folder, seed: int, as_file: bool = False) -> tuple:
    """(model, validation scores, test scores, summary) as :func:`save_seed_fit` wrote them; with ``as_file`` the model
    is a :class:`SavedModel`, not read."""
    import json

    import numpy as np

    folder = Path(folder)
    outcome = json.loads((folder / f"seed_{seed}.json").read_text())
    source = folder / f"seed_{seed}.json"
    if as_file:
        _checked_class_name(outcome["model_class"], source)
        model = SavedModel(outcome["model_class"], seed_model_path(folder, seed).read_bytes(), source)
    else:
        model = _model_class(outcome["model_class"], source).load(seed_model_path(folder, seed))
    with np.load(folder / f"seed_{seed}.npz", allow_pickle=False) as scores:
        return model, scores["validation"], scores["test"], outcome["info"]


class SeedProcesses:
    """Seeds of one arm being fitted, each by the arm's fit function in a child process; at most ``processes`` run at a
    time, each with ``threads`` CPU threads. Use it as a context manager: leaving the block by an error kills the
    children still running (they would otherwise train on until the job's process ends). :meth:`results` waits for
    them.

    Start it with :meth:`from_files` before the job reads its own tables (the workflow's train_classifier job does, before
    it even imports torch): the children's start (interpreter, imports, reading the tables: 5-8 s a job on DNA-573,
    bench/RESULTS.md, 2026-12-06, eighth session) then overlaps the job's own. :meth:`from_context` starts them from
    a fit context whose tables came from elsewhere, on copies of those tables."""

    def __init__(self, arm: str, device, job: dict, seeds: list[int], processes: int, threads: int, write_tables=None):
        from siteaug.arms.registry import lookup_arm
        from siteaug.runtime.io import write_json

        if not lookup_arm(arm).on_device:
            raise ValueError(f"arm {arm} trains its seeds in one process; seed_processes must be 1, not {processes}")
        self.arm, self.seeds, self.threads = arm, list(seeds), threads
        self._tmp = tempfile.TemporaryDirectory(prefix="siteaug-seeds-")  # mode 0700: this job's alone
        self.folder = Path(self._tmp.name)
        if write_tables is not None:
            write_tables(self.folder)
        write_json({"arm": arm, "device": str(device), **job}, self.folder / "context.json")
        self._children: list[subprocess.Popen] = []
        self._closing = False  # set, under the lock, when the block ends: no child starts after that
        self._lock = threading.Lock()
        workers = max(1, min(processes, len(self.seeds)))
        self._pool = ThreadPoolExecutor(max_workers=workers)
        # Each child is started, and waited for, by a pool thread: the thread that starts a child must live as long as
        # it, as the child's parent-death signal follows that thread (_die_with).
        self._outcomes = [self._pool.submit(self._run, seed) for seed in self.seeds]
        log.info("arm %s: %d seeds in %d processes on %s", arm, len(self.seeds), workers, device)

    @classmethod
    def from_files(cls, arm: str, settings: dict, ratio: float, device, inputs: dict, seeds: list[int], processes: int,
                   threads: int) -> SeedProcesses:
        """Children that read the job's input files themselves (``inputs``: the arguments of
        :func:`~siteaug.arms.protocol.read_arm_inputs`), as the job reads them."""
        inputs = {key: str(Path(path).resolve()) if path is not None else None for key, path in inputs.items()}
        return cls(arm, device, {"settings": settings, "ratio": ratio, "inputs": inputs, "feature_cols": None},
                   seeds, processes, threads)

    @classmethod
    def from_context(cls, context, seeds: list[int], processes: int, threads: int) -> SeedProcesses:
        """Children that read copies (Parquet) of ``context``'s tables."""
        from siteaug.runtime.io import write_parquet

        def write_tables(folder: Path) -> None:
            for name in _TABLES:
                if getattr(context, name) is not None:
                    write_parquet(getattr(context, name), folder / f"{name}.parquet")

        job = {"settings": context.settings, "ratio": context.ratio, "inputs": None, "feature_cols": context.feature_cols}
        return cls(context.arm.name, context.device, job, seeds, processes, threads, write_tables)

    def _run(self, seed: int) -> tuple[int, str]:
        child_log = self.folder / f"seed_{seed}.log"
        with open(child_log, "w") as output:
            with self._lock:
                if self._closing:
                    return -1, ""
                child = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(self.folder), str(seed), str(self.threads), str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=_child_environment(),
                )
                self._children.append(child)
            code = child.wait()
        return code, child_log.read_text(errors="replace").rstrip()

    def results(self) -> list[tuple]:
        """(model, validation scores, test scores, summary) of every seed, in seed order; a child's error the user can act
        on is raised again with its type and message."""
        import json

        finished = [outcome.result() for outcome in self._outcomes]
        results = []
        for seed, (code, text) in zip(self.seeds, finished):
            outcome = self.folder / f"seed_{seed}.json"
            if code != 0 or not outcome.exists():
                raise RuntimeError(f"seed {seed} of arm {self.arm}: its process exited with {code}"
                                   f"{'; its log: ' + text[-2000:] if text else ''}")
            if text:
                log.info("arm %s seed %d, its process's log:\n%s", self.arm, seed, text)
            summary = json.loads(outcome.read_text())
            if "error" in summary:
                kind, message = summary["error"]
                same = _reraisable().get(kind)
                raise same(message) if same else RuntimeError(f"{kind}: {message}")
            results.append(load_seed_fit(self.folder, seed, as_file=True))
        return results

    def __enter__(self) -> SeedProcesses:
        return self

    def __exit__(self, *error) -> None:
        with self._lock:
            self._closing = True
            for child in self._children:
                if child.poll() is None:
                    child.kill()
        self._pool.shutdown(wait=True)
        self._tmp.cleanup()


def fit_seeds_in_processes(context, seeds: list[int], processes: int, threads: int, inputs: dict | None = None) -> list[tuple]:
    """(model, validation scores, test scores, summary) of every seed, in the order of ``seeds``, each fitted by the
    arm's fit function in a child process (:class:`SeedProcesses`); ``inputs``: the files ``context``'s tables were
    read from (``read_arm_inputs``' arguments), for the children to read."""
    if inputs is None:
        running = SeedProcesses.from_context(context, seeds, processes, threads)
    else:
        running = SeedProcesses.from_files(context.arm.name, context.settings, context.ratio, context.device, inputs,
                                           seeds, processes, threads)
    with running:
        return running.results()


def _main(folder: str, seed: str, threads: str, parent: str) -> None:
    _die_with(int(parent))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import json

    import torch
    from threadpoolctl import threadpool_limits

    from siteaug.arms.protocol import FitContext, read_arm_inputs
    from siteaug.arms.registry import lookup_arm
    from siteaug.runtime.io import read_parquet, write_json
    from siteaug.runtime.tables import feature_columns, sorted_split

    folder, seed = Path(folder), int(seed)
    torch.set_num_threads(int(threads))
    job = json.loads((folder / "context.json").read_text())
    feature_cols = job["feature_cols"]
    if job["inputs"] is not None:  # the rule job's own input files, read and split as train_arm does
        residues, balanced, edges = read_arm_inputs(**job["inputs"])
        tables = dict(zip(_TABLES, (*(sorted_split(residues, s) for s in ("train", "validation", "test")), balanced, edges)))
        feature_cols = feature_columns(residues)  # as train_arm's context takes them
    else:
        tables = {name: read_parquet(folder / f"{name}.parquet") if (folder / f"{name}.parquet").exists() else None
                  for name in _TABLES}
    arm = lookup_arm(job["arm"])
    context = FitContext(arm, tables["train"], tables["validation"], tables["test"], tables["balanced"], tables["edges"],
                         feature_cols, job["settings"], job["ratio"], job["device"], threads=int(threads))
    log.info("arm %s seed %d: training in process %d with %s thread(s) on %s", arm.name, seed, os.getpid(), threads, job["device"])
    try:
        with threadpool_limits(int(threads)):
            model, val_scores, test_scores, info = arm.fit_function()(context, seed)
    except Exception as error:  # raised again in the parent
        log.exception("seed %d failed", seed)
        write_json({"error": [type(error).__name__, str(error)]}, folder / f"seed_{seed}.json")
        return
    save_seed_fit(folder, seed, model, val_scores, test_scores, info)


if __name__ == "__main__":
    _main(*sys.argv[1:])
