"""siteaug.runtime.workflow: a rule script's fast exit keeps what a normal exit guarantees; its process start time."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "rule.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n" + textwrap.dedent(body))
    # Buffered stdio (Python's and libc's) as in a Snakemake job, so a missing flush would lose output.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    command = [sys.executable, str(script)]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_exit_now_flushes_output_and_runs_exit_handlers(tmp_path):
    done = run_script(tmp_path, """
        import atexit, ctypes, tempfile
        from pathlib import Path
        from siteaug.runtime.io import write_text
        from siteaug.runtime.workflow import exit_now
        write_text("complete", "out.txt")
        folder = tempfile.TemporaryDirectory(dir=".")  # removed by a weakref finalizer at exit
        Path("folder_name").write_text(folder.name)
        atexit.register(lambda: Path("handler_ran").write_text("yes"))
        print("python buffered", end="")
        ctypes.CDLL(None).printf(b" c-buffered")  # libc stdout is fully buffered into a pipe
        exit_now()
        Path("after_exit_now").write_text("must not run")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "python buffered c-buffered"
    assert (tmp_path / "out.txt").read_text() == "complete"
    assert (tmp_path / "handler_ran").exists()
    assert not Path(tmp_path / (tmp_path / "folder_name").read_text()).exists()
    assert not (tmp_path / "after_exit_now").exists()


def test_exit_now_waits_like_a_normal_exit_for_a_running_thread(tmp_path):
    done = run_script(tmp_path, """
        import threading, time
        from pathlib import Path
        from siteaug.runtime.workflow import exit_now
        threading.Thread(target=lambda: (time.sleep(0.5), Path("thread_done").write_text("yes"))).start()
        exit_now()
        Path("continued").write_text("yes")
    """)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread_done").exists() and (tmp_path / "continued").exists()


def test_a_failing_rule_never_reaches_exit_now(tmp_path):
    """An InputError inside rule_logging still gives the one-line error and exit status 1."""
    done = run_script(tmp_path, """
        from types import SimpleNamespace
        from siteaug.runtime.io import InputError
        from siteaug.runtime.workflow import exit_now, rule_logging
        snakemake = SimpleNamespace(log=["rule.log"], threads=1, rule="demo", wildcards={})
        with rule_logging(snakemake):
            raise InputError("bad.fa: record p1 (line 3): empty id")
        exit_now()
    """)
    assert done.returncode == 1
    assert done.stderr == "error: bad.fa: record p1 (line 3): empty id\n"
    assert "empty id" in (tmp_path / "rule.log").read_text()


def test_process_age_puts_the_start_between_launch_and_return(tmp_path):
    """The start must not be taken from the boot time rounded to a second (psutil's create_time)."""
    before = time.time()
    done = run_script(tmp_path, """
        import time
        from siteaug.runtime.workflow import process_age
        print(time.time() - process_age())
    """)
    after = time.time()
    started = float(done.stdout)
    tick = 0.02  # /proc/uptime and the start time count in 10 ms ticks
    assert before - tick <= started <= after
