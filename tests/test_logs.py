"""Rule logs read as lines: tqdm redraws and log records never share a line."""
from __future__ import annotations

import logging
import re
import sys
from types import SimpleNamespace

from tqdm import tqdm

from siteaug.runtime.workflow import rule_logging


def test_progress_bars_and_records_each_get_their_own_line(tmp_path):
    log_path = tmp_path / "rule.log"
    with rule_logging(SimpleNamespace(log=[str(log_path)], threads=1, rule="demo")) as log:
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
    assert [r.split(": ", 1)[1] for r in records] == ["validation loss 0.1235", "after the bar", "rule demo done in " + records[-1].rsplit("in ", 1)[1]]
    assert "a b" in lines
    assert len(lines) == len(bars) + len(records) + 1


def test_rounded_rounds_floats_at_any_depth_and_leaves_the_rest():
    import numpy as np

    from siteaug.runtime.workflow import rounded

    value = {"loss": 0.5435059666633606, "n": 3, "per_seed": [np.float32(0.123456), 2], "pair": (1.0000001, "x"), "none": None}
    assert rounded(value) == {"loss": 0.5435, "n": 3, "per_seed": [0.1235, 2], "pair": (1.0, "x"), "none": None}
