"""What every rule script shares: logging into the rule's log file and one-line errors for bad input."""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import logging
import os
import sys
import threading
import time

import numpy as np

from siteaug.runtime.io import InputError


def numbered_bars(label: str, total: int):
    """A fit's ``progress`` callable when it trains ``total`` networks (seeds, ensemble members): each network's epochs
    get a bar of their own, numbered ("<label>, model 2 of 3"), so that a bar starting again at 0 % reads as the next
    model, not as progress lost."""
    from tqdm import tqdm  # here: most rule jobs show no bar of epochs

    count = itertools.count(1)
    return lambda epochs: tqdm(epochs, file=sys.stderr, mininterval=10, desc=f"{label}, model {next(count)} of {total}")


class LogFileStream:
    """A rule's log file as ``sys.stderr``: tqdm's carriage-return redraws become one line each.

    tqdm redraws a bar by writing ``"\r" + bar``; in a file that piles every redraw onto one line, and the next log
    record would be glued to the last one. Here each redraw starts a new line (trailing padding dropped) and a log
    record written after a bar starts on a line of its own, so a log reads as lines of bars and records.
    """

    def __init__(self, handle):
        self._handle = handle
        self._in_bar = False  # the last thing written is a bar redraw without its newline
        self.last_line = ""  # the last non-blank line written (a bar redraw or a log record), for the console

    def write(self, text: str) -> int:
        if not text:
            return 0
        if text.startswith("\r"):
            parts = [p.rstrip(" ") for p in text.split("\r")[1:]]
            out = ("\n" if self._in_bar else "") + "\n".join(p for p in parts if p)
            self._in_bar = not out.endswith("\n") and bool(out)
        else:
            out = ("\n" if self._in_bar and not text.startswith("\n") else "") + text
            self._in_bar = False
        lines = [line for line in out.split("\n") if line.strip()]
        if lines:
            self.last_line = lines[-1].strip()
        self._handle.write(out)
        return len(text)

    def flush(self) -> None:
        self._handle.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._handle.fileno()

    def close(self) -> None:
        if self._in_bar:
            self._handle.write("\n")
        self._handle.close()

    @property
    def encoding(self) -> str:
        return self._handle.encoding


def compile_threads(count: int) -> None:
    """torch.compile's compiler workers in this process and its children: ``count`` (a job's cores) rather than one per
    core of the machine. 1 compiles in the process itself: for a job whose compilations are in torch's compile cache
    already (rule compile_graph_transformer made them), which then starts no worker pool in every process that reads
    the cache."""
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = str(count)
    inductor_config = sys.modules.get("torch._inductor.config")  # read once, when torch's compiler was imported
    if inductor_config is not None:
        inductor_config.compile_threads = count


def rounded(value, digits: int = 4):
    """``value`` with every float (also inside dicts, lists and tuples) rounded, for log lines people read."""
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(rounded(v, digits) for v in value)
    return value


PROGRESS_SECONDS = "SITEAUG_PROGRESS_SECONDS"  # environment variable: seconds between a job's console progress lines


def progress_interval(environ=os.environ) -> float:
    """Seconds between a long job's progress lines on the console: $SITEAUG_PROGRESS_SECONDS, default 60."""
    value = environ.get(PROGRESS_SECONDS, "60")
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise InputError(f"environment variable {PROGRESS_SECONDS}: {value!r} is not a positive number of seconds")
    return seconds


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _console_progress(label: str, stream: LogFileStream, console, interval: float, stop: threading.Event) -> None:
    """Every ``interval`` seconds until ``stop``: one console line with the job, its running time and its last log line.

    A job shorter than ``interval`` prints nothing; the bars and records themselves stay in the log.
    """
    start = time.perf_counter()
    while not stop.wait(interval):
        last = stream.last_line[:200]
        console.write(f"[{time.strftime('%H:%M:%S')}] {label}: running {_duration(time.perf_counter() - start)}"
                      + (f"; {last}" if last else "") + "\n")
        console.flush()


def job_label(snakemake) -> str:
    """``rule`` or ``rule (name=value, ...)`` with the job's wildcards, as the console names a job."""
    wildcards = ", ".join(f"{k}={v}" for k, v in snakemake.wildcards.items())
    return f"{snakemake.rule} ({wildcards})" if wildcards else snakemake.rule


@contextlib.contextmanager
def rule_logging(snakemake):
    """Send logging and stderr (tqdm) to the rule's log; turn an InputError into a one-line error and exit 1.

    While the job runs, a line on the console (the job's real stderr) every ``progress_interval()`` seconds names the
    job, its running time and the last line of its log (a progress bar or a record), so a job of minutes shows that it
    is alive and how far it has come.
    """
    try:
        interval = progress_interval()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    log_path = snakemake.log[0] if len(snakemake.log) else None
    stream = LogFileStream(open(log_path, "w", buffering=1)) if log_path else sys.stderr
    real_stderr = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    sys.stderr = stream
    # torch's threads, in the jobs that use it: their rule scripts import it (through siteaug) before this block. The
    # jobs that do not (make_demo, prepare, evaluate, report, ...) start without it, about 1.5 s of CPU sooner.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, int(snakemake.threads)))
    stop = threading.Event()
    ticker = None
    if stream is not real_stderr:
        ticker = threading.Thread(target=_console_progress, args=(job_label(snakemake), stream, real_stderr, interval, stop),
                                  daemon=True, name="console-progress")
        ticker.start()
    start = time.perf_counter()
    # A job's fixed cost before its first line of work (interpreter start, Snakemake's script preamble, imports): on
    # the workflow's critical path it adds up over a dozen jobs (issue 14).
    logging.info("rule %s started %.1f s after its process (pid %d)", snakemake.rule, process_age(), os.getpid())
    try:
        yield logging.getLogger(f"siteaug.rule.{snakemake.rule}")
        logging.info("rule %s done in %.1f s", snakemake.rule, time.perf_counter() - start)
    except InputError as err:
        logging.error("%s", err)
        print(f"error: {err}", file=real_stderr)
        sys.stderr = real_stderr
        raise SystemExit(1) from None
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
        sys.stderr = real_stderr
        if stream is not real_stderr:
            stream.close()


def process_age() -> float:
    """Seconds since this process started, from the kernel's clock since boot.

    psutil's create_time adds the boot time, which /proc/stat rounds down to a whole second, so it puts the start up
    to 1 s early: 0.41 s on the 2-core CPU machine, all of it counted as import time in the generate log.
    """
    try:
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22, starttime (the name may hold spaces)
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except OSError:  # not Linux
        import psutil

        return time.time() - psutil.Process().create_time()


def exit_now() -> None:
    """End a rule script that has succeeded without tearing the interpreter down; call it as the last statement.

    A normal exit frees every module and object one by one: 0.40 s for a process that has imported CPU torch, 0.45 s
    at the end of a demo generate job (2-core CPU); on a GPU the CUDA runtime's teardown is skipped as well. The
    kernel frees the memory and releases the devices and the GPU lock anyway. Only safe once every output is
    complete: call it after the ``rule_logging`` block, which has then renamed the outputs into place and closed the
    log. An error never reaches it, so failures exit as before (message, traceback, non-zero status).
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others:
        return  # a normal exit would wait for these threads: keep that
    atexit._run_exitfuncs()  # logging.shutdown, weakref finalizers (temporary folders), multiprocessing children, ...
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)  # what C libraries left in libc's stdio buffers; _exit would drop it
    os._exit(0)
