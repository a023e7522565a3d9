"""Shared fixtures: a tiny diffusion model, fake residue/edge tables, and finished runs of the tiny workflow."""
import os

# The shared workflow runs go on in the background beside the other tests (LocalRuns, the SLURM run), so the cores are
# oversubscribed: OpenMP threads (torch, scikit-learn's gradient boosting) that spin while they wait for each other then
# burn the time slices the others need (a gbdt test took 25 s instead of 1 s). They sleep instead. Before torch and
# scikit-learn load OpenMP, for this process and the workflow runs it starts; it changes no result.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from siteaug.generative.diffusion import DiffusionConfig, SiteDiffusion  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))

FEATURES = ["f_a", "f_b", "f_c"]


def tiny_config(**overrides) -> DiffusionConfig:
    settings = dict(feature_dim=len(FEATURES), hidden=16, blocks=2, context=8, gnn_hidden=8, gnn_layers=1,
                    gnn_heads=2, timesteps=10)
    settings.update(overrides)
    return DiffusionConfig(**settings)


def tiny_model(seed: int = 0, **overrides) -> SiteDiffusion:
    """A tiny model whose (normally zero-initialised) output layer is random, so that eps and contexts matter."""
    torch.manual_seed(seed)
    model = SiteDiffusion(tiny_config(**overrides))
    torch.nn.init.normal_(model.denoiser.output.weight, std=0.5)
    return model.eval()


@pytest.fixture
def model() -> SiteDiffusion:
    return tiny_model()


@pytest.fixture
def fake_tables():
    """Three proteins of 6 residues (features f_a..f_c) and chain edges in both directions."""
    rng = np.random.default_rng(0)
    rows, edges = [], []
    for pid in ("p0", "p1", "p2"):
        for pos in range(6):
            rows.append({"protein_id": pid, "position": pos, "label": int(pos % 3 == 0), "split": "train",
                         **dict(zip(FEATURES, rng.normal(size=3).astype(np.float32)))})
        for i in range(5):
            edges += [{"protein_id": pid, "src": i, "dst": i + 1}, {"protein_id": pid, "src": i + 1, "dst": i}]
    return pd.DataFrame(rows), pd.DataFrame(edges)


# What the lean ablation run takes over from tiny_run's work directory: the outputs (and their logs, benchmarks and
# Snakemake's metadata) of the stages before the classifiers, whose config the lean overlay leaves as tiny.yaml has it.
# Not what only tiny.yaml's other arms make (balanced/<arm>/, embedding/, classifier/, graph_transformer's
# features/tree_scores.parquet) nor the report, so that its tables are those a run of its own would make, no more.
SHARED_STAGES = ["demo", "data", "features", "diffusion", "generated", "filtered", "balanced/train.parquet",
                 "balanced/summary.json", "sample_quality", "logs", "benchmarks"]
OTHER_ARMS_ONLY = shutil.ignore_patterns("tree_scores.parquet")
TINY_RUN, LEAN_RUN, TRIALS_RUN = "tiny_run", "lean_ablation_run", "sigkill_trials_run"
# A hard limit on each shared local run: a workflow that hangs must fail the tests that read it, not hang CI.
RUN_TIMEOUT_S = 1800


def _reads(item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


class LocalRuns:
    """The shared local runs, made in a background thread from the start of the session, so that they overlap the
    tests that read none (tests/conftest.py orders those first): ``tiny_run``, then, when a selected test reads it,
    ``lean_ablation_run``, which starts from a copy of tiny_run's first stages, then, when a selected test reads them,
    the SIGKILL trials (tests/sigkill_trials.py), which run the lean run's config files from nothing in a work
    directory of their own. The trials wait for the lean run although they read none of it: beside the tiny and lean
    runs they took four times as long and slowed the tests beside them (bench/RESULTS.md, test suite, sixth pass).

    ``wait_tiny()`` returns once the tiny run has finished and the lean run's copy of its stages is made, so that a
    test which reruns jobs in tiny_run's work directory cannot change what the lean run copies.
    """

    def __init__(self, tmp_path_factory, lean: bool, trials: bool = False):
        from helpers import ABLATION_SETTINGS, LEAN, copy_config, new_workdir, write_config

        self.tiny = new_workdir(tmp_path_factory, TINY_RUN)
        self.lean = new_workdir(tmp_path_factory, LEAN_RUN) if lean else None
        self.lean_configfiles = ((write_config(self.lean, {"report.feature_ablation": ABLATION_SETTINGS}, name="ablation.yaml"), LEAN)
                                 if lean else None)
        self.trials = copy_config(tmp_path_factory.mktemp("sigkill_trials") / "trials") if lean and trials else None
        self.tiny_done, self.lean_done, self.trials_done = threading.Event(), threading.Event(), threading.Event()
        self.tiny_error: str | None = None
        self.lean_error: str | None = None
        self.trials_error: str | None = None
        self.trials_report: list[str] = []
        self.process: subprocess.Popen | None = None
        self.stopping = False
        self.lock = threading.Lock()  # stop() and the start of a run: no run starts once stop() has begun
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="local tiny runs", daemon=True)
            self.thread.start()

    def _run(self, workdir: Path, what: str, **options) -> str | None:
        """Run the workflow in ``workdir`` (its own process group, so that stop() ends its jobs too); None if it
        succeeded, else why not."""
        from helpers import snakemake_command

        log = workdir.with_name(f"{workdir.name}.log")  # beside the work directory: nothing of its own in it
        with self.lock, open(log, "w") as out:
            if self.stopping:
                return f"{what}: the session ended first"
            self.process = subprocess.Popen(snakemake_command(workdir, **options), cwd=workdir, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            returncode = self.process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            returncode = f"killed after {RUN_TIMEOUT_S} s"
        if returncode == 0:
            return None
        return f"{what} failed ({returncode}):\n{log.read_text()[-8000:]}"

    def _work(self) -> None:
        self._stage("tiny_error", self.tiny_done, "the tiny workflow", None, self._tiny)
        if self.lean is not None:
            self._stage("lean_error", self.lean_done, "the lean ablation run", self.tiny_error,
                        lambda: self._run(self.lean, "the lean ablation run", configfiles=self.lean_configfiles))
        if self.trials is not None:
            self._stage("trials_error", self.trials_done, "the SIGKILL trials", self.lean_error, self._trials)

    def _stage(self, error: str, done: threading.Event, what: str, before: str | None, work) -> None:
        """One run of the background thread: ``work()`` (None if it succeeded, else why not) unless the run before it
        failed (``before``), its outcome in the attribute ``error`` (raised by the wait_* methods, in the tests that
        read the run), then ``done``. An exception of ``work`` (an AssertionError of the trials too) is its outcome."""
        outcome = f"{what}: interrupted"  # what a BaseException (the session ending) leaves; the waiters still wake
        try:
            outcome = f"{what} did not start: {before}" if before is not None else work()
        except Exception as err:
            outcome = f"{what}: {type(err).__name__}: {err}"
        finally:
            setattr(self, error, outcome)
            done.set()

    def _tiny(self) -> str | None:
        failed = self._run(self.tiny, "the tiny workflow")
        if failed is None and self.lean is not None:
            self._copy_shared_stages()
        return failed

    def _trials(self) -> None:
        from sigkill_trials import sigkill_trials

        self.trials_report = sigkill_trials(self.trials, self.lean_configfiles, track=self._track)

    def _track(self, process: subprocess.Popen) -> None:
        """The trials' process now running, for stop(); ended at once if stop() has begun."""
        with self.lock:
            self.process = process
            if self.stopping:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise RuntimeError("the session ended first")

    def _copy_shared_stages(self) -> None:
        for name in SHARED_STAGES:
            source, target = self.tiny / "results" / name, self.lean / "results" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=OTHER_ARMS_ONLY)
            else:
                shutil.copy2(source, target)
        shutil.copytree(self.tiny / ".snakemake" / "metadata", self.lean / ".snakemake" / "metadata")

    def _wait(self, done: threading.Event, error: str) -> None:
        """Wait for a run of the background thread (``done``); its ``error`` attribute, if set, as an AssertionError."""
        self.start()
        done.wait()
        if getattr(self, error):
            raise AssertionError(getattr(self, error))

    def wait_tiny(self) -> Path:
        self._wait(self.tiny_done, "tiny_error")
        return self.tiny

    def wait_lean(self) -> tuple[Path, tuple[Path, ...]]:
        if self.lean is None:
            raise AssertionError("lean_ablation_run: no test selected at collection reads it")
        self._wait(self.lean_done, "lean_error")
        return self.lean, self.lean_configfiles

    def wait_trials(self) -> tuple[Path, list[str]]:
        if self.trials is None:
            raise AssertionError("sigkill_trials_run: no test selected at collection reads it")
        self._wait(self.trials_done, "trials_error")
        return self.trials, self.trials_report

    def stop(self) -> None:
        """End a run still going (a session stopped early, -x), with its jobs."""
        with self.lock:
            self.stopping = True
            if self.process is not None and self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.thread is not None:
            self.thread.join(timeout=60)


@pytest.fixture(scope="session", autouse=True)
def local_runs(request, tmp_path_factory):
    """The shared local runs (LocalRuns), started in the background before the first test of a session that has a
    test reading ``tiny_run`` (or ``lean_ablation_run``, which reads it); else None."""
    items = request.session.items
    if not any(_reads(item, TINY_RUN) for item in items):
        yield None
        return
    runs = LocalRuns(tmp_path_factory, lean=any(_reads(item, LEAN_RUN) for item in items),
                     trials=any(_reads(item, TRIALS_RUN) for item in items))
    runs.start()
    yield runs
    runs.stop()


@pytest.fixture(scope="session")
def tiny_run(local_runs) -> Path:
    """A work directory holding one finished run of the tiny workflow (tests/data/tiny.yaml, every arm, --cores 2).

    Shared by every test that reads its outputs, or reruns jobs whose outputs come out byte-identical (the workflow is
    deterministic on CPU: tests/test_determinism.py), so the suite runs the whole tiny workflow once, not per module.
    It runs in the background from the start of the session (LocalRuns).
    """
    return local_runs.wait_tiny()


@pytest.fixture(scope="session")
def lean_ablation_run(local_runs, tiny_run) -> tuple[Path, tuple[Path, ...]]:
    """(work directory, config files) of one finished run of the tiny workflow with the lean overlay (three arms, one
    seed) and a feature-group ablation (``report.feature_ablation: ABLATION_SETTINGS``, in ``ablation.yaml`` there).

    It starts from a copy of ``tiny_run``'s stages before the classifiers (SHARED_STAGES, with the modification times
    and Snakemake's metadata, so Snakemake finds them up to date) and runs the rest: the three arms, the ablation and
    the report; in the background, right after the tiny run (LocalRuns). Shared by tests/test_ablation.py, which reads
    its outputs, and the SIGKILL trials of tests/test_resume.py, which run the same config files from nothing and must
    end with its tables and metrics (so a copied output that a run of its own would not make byte-identical fails there).
    """
    return local_runs.wait_lean()


@pytest.fixture(scope="session")
def sigkill_trials_run(local_runs, lean_ablation_run) -> tuple[Path, list[str]]:
    """(work directory, one line per trial) of the SIGKILL trials (tests/sigkill_trials.py), run in the background
    right after the lean run (LocalRuns) with its config files, in a work directory of their own."""
    return local_runs.wait_trials()


# ---- the second run of the tiny workflow: through SLURM in the background when a local cluster can start -----------

SECOND_RUN = "second_tiny_run"


def _reads_second_run(item) -> bool:
    return _reads(item, SECOND_RUN)


def _run_order(item) -> int:
    """0: reads no shared run; 1: reads ``tiny_run`` only; 2: reads ``lean_ablation_run``; 3: reads ``second_tiny_run``."""
    if _reads_second_run(item):
        return 3
    if _reads(item, LEAN_RUN):
        return 2
    return 1 if _reads(item, TINY_RUN) else 0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The tests that read a shared run go after those that read none, in their order: first the readers of
    ``tiny_run``, then of ``lean_ablation_run`` (made after it), last of ``second_tiny_run``. The runs start in the
    background when the session starts (LocalRuns, and the SLURM run of ``slurm_tiny_run``), so they run while every
    test that needs none of them runs. trylast: after -m and -k have deselected tests. (sorted is stable.)"""
    items[:] = sorted(items, key=_run_order)


@pytest.fixture(scope="session", autouse=True)
def slurm_tiny_run(request, tmp_path_factory):
    """The SLURM run of the tiny workflow (tests/slurm/background_run.py), started before the first test of a session
    that has a test reading ``second_tiny_run``, if a local SLURM cluster can start here; else None. The cluster is
    stopped when the session ends, and a daemon that survives that is an error."""
    from local_cluster import missing_requirements

    if not any(_reads_second_run(item) for item in request.session.items) or missing_requirements():
        yield None
        return
    from background_run import SlurmTinyRun

    run = SlurmTinyRun(tmp_path_factory.mktemp("slurm_tiny_run"))
    run.start()
    yield run
    survivors = run.stop()
    assert not survivors, f"SLURM daemons survived stop(): {survivors}"


@pytest.fixture(scope="session")
def second_tiny_run(slurm_tiny_run, tmp_path_factory) -> Path:
    """A work directory holding a second finished run of tests/data/tiny.yaml, made apart from ``tiny_run``: the SLURM
    run when a local cluster could start (a run through another executor, so tests/test_determinism.py compares a
    local and a SLURM run), else a local run made here. SITEAUG_REQUIRE_SLURM=1 without a cluster is an error."""
    if slurm_tiny_run is not None:
        return slurm_tiny_run.wait()
    from local_cluster import missing_requirements

    if os.environ.get("SITEAUG_REQUIRE_SLURM") == "1":
        pytest.fail(f"SITEAUG_REQUIRE_SLURM=1 but no local SLURM cluster: {missing_requirements()}", pytrace=False)
    from helpers import new_workdir, run_snakemake

    workdir = new_workdir(tmp_path_factory, SECOND_RUN)
    result = run_snakemake(workdir)
    if result.returncode != 0:
        raise AssertionError(f"the second tiny run failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return workdir
