"""Rule logs read as lines: tqdm redraws and log records never share a line."""
from __future__ import annotations

import logging
import os
import re
import sys
from types import SimpleNamespace

from tqdm import tqdm

from siteaug.runtime.workflow import rule_logging


def test_progress_bars_and_records_each_get_their_own_line(tmp_path):
    log_path = tmp_path / "rule.log"
    with rule_logging(SimpleNamespace(log=[str(log_path)], threads=1, rule="demo", wildcards={})) as log:
        for step in tqdm(range(4), file=sys.stderr, mininterval=0, desc="steps"):
            if step == 2:
                log.info("validation loss %.4f", 0.123456789)
        print("a", "b", file=sys.stderr)  # ordinary writes, split by print, stay one line
        logging.getLogger("x").warning("after the bar")
    lines = log_path.read_text().splitlines()
    assert "\r" not in log_path.read_text()
    bars = [line for line in lines if line.startswith("steps:")]
    records = [line for line in lines if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|WARNING) ", line)]
    assert len(bars) >= 5 and all(line.rstrip() == line for line in bars)
    assert all("steps:" not in line for line in records)
    started = re.fullmatch(r".*: rule demo started (\d+\.\d) s after its process \(pid \d+\)", records[0])
    assert started and 0 < float(started.group(1)) < 3600  # this test's process: pytest's start and imports
    assert [r.split(": ", 1)[1] for r in records[1:]] == ["validation loss 0.1235", "after the bar", "rule demo done in " + records[-1].rsplit("in ", 1)[1]]
    assert "a b" in lines
    assert len(lines) == len(bars) + len(records) + 1


def test_rounded_rounds_floats_at_any_depth_and_leaves_the_rest():
    import numpy as np

    from siteaug.runtime.workflow import rounded

    value = {"loss": 0.5435059666633606, "n": 3, "per_seed": [np.float32(0.123456), 2], "pair": (1.0000001, "x"), "none": None}
    assert rounded(value) == {"loss": 0.5435, "n": 3, "per_seed": [0.1235, 2], "pair": (1.0, "x"), "none": None}


def _fake_job(log_path, **wildcards):
    return SimpleNamespace(log=[str(log_path)], threads=1, rule="train_classifier", wildcards=wildcards)


def test_a_long_job_shows_its_progress_on_the_console_and_a_short_one_stays_quiet(tmp_path, monkeypatch):
    import io
    import time

    console = io.StringIO()
    monkeypatch.setattr(sys, "stderr", console)
    monkeypatch.setenv("SITEAUG_PROGRESS_SECONDS", "0.25")
    with rule_logging(_fake_job(tmp_path / "long.log", arm="gbdt")) as log:
        log.info("searching the grid")
        time.sleep(0.4)
        for _ in tqdm(range(3), file=sys.stderr, mininterval=0, desc="epochs"):
            time.sleep(0.3)
    assert sys.stderr is console
    lines = console.getvalue().splitlines()
    pattern = r"^\[\d\d:\d\d:\d\d\] train_classifier \(arm=gbdt\): running \d+ s; "
    assert len(lines) >= 3 and all(re.match(pattern, line) for line in lines), lines
    assert "searching the grid" in lines[0]  # the last log line so far: a record, then the bar
    assert any(re.search(r"epochs: .*\d/3", line) for line in lines[1:]), lines
    assert "running" not in (tmp_path / "long.log").read_text()  # the console lines stay out of the log

    monkeypatch.delenv("SITEAUG_PROGRESS_SECONDS")  # default: a line a minute, so a job of seconds prints none
    with rule_logging(_fake_job(tmp_path / "short.log")) as log:
        log.info("quick")
    assert console.getvalue().splitlines() == lines


def test_a_bad_progress_interval_is_one_error_line(tmp_path, monkeypatch, capsys):
    import pytest

    for value in ("soon", "0", "-5", "inf", "nan"):
        monkeypatch.setenv("SITEAUG_PROGRESS_SECONDS", value)
        with pytest.raises(SystemExit) as exit_info:
            with rule_logging(_fake_job(tmp_path / "rule.log")):
                raise AssertionError("the job must not start")
        assert exit_info.value.code == 1
        assert capsys.readouterr().err == f"error: environment variable SITEAUG_PROGRESS_SECONDS: {value!r} is not a positive number of seconds\n"


def test_a_job_that_reads_compiled_steps_compiles_in_its_own_process(monkeypatch):
    """No pool of compiler workers (one per core) in each fit process that only reads torch's compile cache, whether
    or not torch's compiler is already imported; its child processes inherit the setting."""
    import torch._inductor.config as inductor_config

    from siteaug.runtime.workflow import compile_threads

    monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    monkeypatch.setattr(inductor_config, "compile_threads", 8)
    compile_threads(1)
    assert inductor_config.compile_threads == 1 and os.environ["TORCHINDUCTOR_COMPILE_THREADS"] == "1"
