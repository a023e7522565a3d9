"""Several datasets in one run: the datasets sheet, each dataset's config, the cross-dataset summary, end to end."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from helpers import LEAN, REPO, TINY, run_snakemake, write_report
from siteaug.inputs.datasets import dataset_configs, read_sheet, summarise_datasets, summary_html
from siteaug.runtime.io import InputError
from test_report import _arm


def _sheet(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "datasets.tsv"
    path.write_text(text)
    return path


def _config() -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    validate(config, str(REPO / "config/schema.yaml"))
    return config


@pytest.mark.parametrize(
    "text, message",
    [
        ("name\tstructures\nx\tpdb\n", "line 1: column 'labels' is missing"),
        ("name\tlabels\tcolour\nx\ta.fa\tred\n", "line 1: unknown column 'colour'"),
        ("name\tlabels\n", "no dataset below the header"),
        ("name\tlabels\n1st\ta.fa\n", "line 2: dataset name '1st' must start with a letter"),
        ("name\tlabels\nx\ta.fa\nx\tb.fa\n", "line 3: dataset 'x' is named twice"),
        ("name\tlabels\nsummary\ta.fa\n", "taken by the cross-dataset summary folder"),
        ("name\tlabels\nx\ta.fa\textra\n", "line 2: 3 cells for 2 columns"),
        ("name\tlabels\tstructures\nx\t\tpdb\n", "line 2: dataset 'x' has no labels file"),
        ("name\tlabels\tprecomputed\nx\ta.fa\tpssm\n", "precomputed 'pssm' is not group=folder"),
    ],
)
def test_bad_sheet_is_one_line_naming_file_and_line(tmp_path, text, message):
    path = _sheet(tmp_path, text)
    with pytest.raises(InputError) as err:
        dataset_configs(_config(), path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_sheet_names_the_key(tmp_path):
    with pytest.raises(InputError, match=r"^config datasets: .*absent.tsv: no such file$"):
        read_sheet(tmp_path / "absent.tsv")


def test_each_dataset_gets_its_row_its_overlay_and_its_folder(tmp_path):
    (tmp_path / "seq.yaml").write_text("features:\n  groups: [sequence, pssm]\nclassifier:\n  seeds: 1\n")
    path = _sheet(tmp_path, "name\tlabels\tstructures\tprecomputed\texternal_test_labels\tconfig\n"
                            "a\ta.fa\ta_pdb\t\t\t\n"
                            f"b\tb.fa\t\tpssm=feat/pssm; hmm = feat/hmm\tt.fa\t{tmp_path / 'seq.yaml'}\n")
    base = _config()
    base["output"]["directory"] = "runs"
    configs = dataset_configs(base, path)
    assert list(configs) == ["a", "b"]
    a, b = configs["a"], configs["b"]
    assert a["input"] | {} == {**base["input"], "source": "files", "labels": "a.fa", "structures": "a_pdb"}
    assert a["output"]["directory"] == "runs/a" and b["output"]["directory"] == "runs/b"
    assert a["datasets"] is None and a["classifier"] == base["classifier"]
    assert b["input"]["structures"] is None and b["input"]["external_test_labels"] == "t.fa"  # empty cell: as the config has it
    assert b["features"]["precomputed"] == {"pssm": "feat/pssm", "hmm": "feat/hmm"}
    assert b["features"]["groups"] == ["sequence", "pssm"] and b["classifier"]["seeds"] == 1
    assert b["classifier"]["epochs"] == base["classifier"]["epochs"]  # the overlay merges key by key
    assert base["input"]["source"] == "demo" and base["datasets"] is None  # the run's config is left alone


def test_dataset_overlay_may_not_move_its_folder(tmp_path):
    (tmp_path / "o.yaml").write_text("output:\n  directory: elsewhere\n")
    path = _sheet(tmp_path, f"name\tlabels\tconfig\na\ta.fa\t{tmp_path / 'o.yaml'}\n")
    with pytest.raises(InputError, match="key 'output' is set by the sheet"):
        dataset_configs(_config(), path)


def test_summary_lists_every_dataset_and_arm_with_the_paired_verdicts(tmp_path):
    metrics, differences = {}, {}
    for name, strong in (("alpha", 2.0), ("beta", 0.2)):
        out = tmp_path / name
        write_report({"none": _arm(0.3, 1), "smote": _arm(0.35, 2), "diffusion": _arm(strong, 3)}, out, n_resamples=1000)
        metrics[name] = pd.read_csv(out / "metrics.tsv", sep="\t")
        differences[name] = pd.read_csv(out / "differences.tsv", sep="\t")
    summary = summarise_datasets(metrics, differences)
    assert list(zip(summary["dataset"], summary["arm"])) == [(d, a) for d in ("alpha", "beta") for a in ("none", "smote", "diffusion")]
    row = summary.set_index(["dataset", "arm"]).loc[("alpha", "diffusion")]
    expected = differences["alpha"].set_index(["aggregation", "metric", "arm", "reference"]).loc[("pooled", "auprc", "diffusion", "none")]
    assert row["auprc_vs_none"] == pytest.approx(expected["difference"]) and row["verdict_vs_none"] == "better"
    assert row["auprc"] == pytest.approx(metrics["alpha"].set_index(["aggregation", "arm"]).loc[("pooled", "diffusion"), "auprc"])
    assert summary.set_index(["dataset", "arm"]).loc[("beta", "none"), "verdict_vs_none"] == ""  # not compared with itself
    assert not any("gbdt" in c for c in summary.columns)  # no dataset ran it
    page = summary_html(summary, "datasets.tsv")
    assert "<th>alpha</th><th>beta</th>" in page and "Δ AUPRC vs SMOTE" in page
    assert re.search(r'<td class="better">\+[0-9.]+ \[[^]]+\] better</td>', page)


@pytest.mark.workflow
def test_two_datasets_run_in_one_dag_with_a_summary(tmp_path):
    from siteaug.inputs.demo import make_demo

    for name, seed in (("alpha", 0), ("beta", 1)):
        make_demo(tmp_path / name, n_proteins=24, min_length=40, max_length=70, seed=seed)
    # beta's overlay: no structure columns, and no arm that trains on generated rows, so none of its generation jobs
    # run (its report says so); the summary then lists each dataset's own arms.
    (tmp_path / "beta.yaml").write_text("features:\n  groups: [sequence]\nclassifier:\n  arms: [none, smote]\n")
    sheet = _sheet(tmp_path, "name\tlabels\tstructures\tconfig\nalpha\talpha/labels.fa\talpha/pdb\t\n"
                             "beta\tbeta/labels.fa\tbeta/pdb\tbeta.yaml\n")
    overlay = tmp_path / "sheet.yaml"
    # One generation shard per dataset: nothing here looks at shards (tests/test_workflow.py runs two), and each more
    # shard is two more jobs per dataset.
    overlay.write_text(f"datasets: {sheet.name}\noutput:\n  directory: runs\ngeneration:\n  shards: 1\n")
    result = run_snakemake(tmp_path, configfiles=(TINY, LEAN, overlay), timeout=1500)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    runs = tmp_path / "runs"
    for name in ("alpha", "beta"):
        assert (runs / name / "report/report.html").stat().st_size > 0
        assert (runs / name / "logs/prepare.log").exists()
    # beta ran with its own overlay: no structure columns, no diffusion arm
    alpha = pq.read_schema(runs / "alpha/features/residues.parquet").names
    beta = pq.read_schema(runs / "beta/features/residues.parquet").names
    assert "f_rsa" in alpha and not any(c.startswith("f_rsa") for c in beta)
    assert (runs / "alpha/classifier/diffusion").is_dir() and not (runs / "beta/classifier/diffusion").exists()
    # Only alpha generated: beta's DAG asked for no diffusion model, candidate, filter, balanced table or sample quality,
    # and its report says that generation was not run instead of showing its figures and counts.
    generation = ["diffusion", "generated", "filtered", "balanced", "sample_quality", "report/quality_scores.png"]
    assert [p for p in generation if not (runs / "alpha" / p).exists()] == []
    assert [p for p in generation if (runs / "beta" / p).exists()] == []
    alpha_page, beta_page = ((runs / name / "report/report.html").read_text() for name in ("alpha", "beta"))
    assert "candidates generated" in alpha_page and "Not run: no arm of this run" not in alpha_page
    assert "Not run: no arm of this run (none, smote) trains on generated rows" in beta_page
    assert "candidates generated" not in beta_page and "Quality of generated candidates" not in beta_page
    beta_train = pd.read_parquet(runs / "beta/data/proteins.parquet").query("split == 'train'")
    assert f"<td>real training positives</td><td>{beta_train['n_positives'].sum():,}</td>" in beta_page
    summary = pd.read_csv(runs / "summary/summary.tsv", sep="\t", keep_default_na=False)
    arms = {"alpha": ["none", "smote", "diffusion"], "beta": ["none", "smote"]}
    assert list(zip(summary["dataset"], summary["arm"])) == [(d, a) for d in arms for a in arms[d]]
    for name in arms:
        own = pd.read_csv(runs / name / "report/metrics.tsv", sep="\t")
        own = own[own["aggregation"] == "pooled"].set_index("arm")["auprc"]
        rows = summary[summary["dataset"] == name].set_index("arm")
        assert rows["auprc"].astype(float).round(4).equals(own.round(4))
        # Each arm's verdicts are its own report's paired differences (empty for a reference that is the arm itself).
        differences = pd.read_csv(runs / name / "report/differences.tsv", sep="\t")
        differences = differences[(differences["aggregation"] == "pooled") & (differences["metric"] == "auprc")]
        for reference in ("none", "smote"):
            verdicts = differences[differences["reference"] == reference].set_index("arm")["verdict"]
            assert rows[f"verdict_vs_{reference}"].to_dict() == {a: verdicts.get(a, "") for a in arms[name]}
    assert "<th>alpha</th><th>beta</th>" in (runs / "summary/summary.html").read_text()
    assert not (tmp_path / "results").exists()
    again = run_snakemake(tmp_path, "-n", configfiles=(TINY, LEAN, overlay), timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.workflow
def test_a_bad_sheet_stops_the_run_in_one_line(tmp_path):
    sheet = _sheet(tmp_path, "name\tlabels\nx y\ta.fa\n")
    overlay = tmp_path / "sheet.yaml"
    overlay.write_text(f"datasets: {sheet.name}\n")
    result = run_snakemake(tmp_path, "-n", configfiles=(TINY, overlay), timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(errors) == 1 and "line 2: dataset name 'x y'" in errors[0], result.stderr[-2000:]


def test_shipped_sheet_parses_and_its_overlays_exist(monkeypatch):
    monkeypatch.chdir(REPO)  # its paths are relative to the checkout, where snakemake runs
    rows = read_sheet(REPO / "config/datasets.tsv")
    assert [r["name"] for r in rows] == ["dna573", "ppi335"]
    assert all((REPO / r["config"]).is_file() for r in rows)
    configs = dataset_configs(_config(), REPO / "config/datasets.tsv")
    assert configs["ppi335"]["features"]["groups"] == ["sequence", "pssm", "hmm", "dssp"]
    assert configs["dna573"]["input"]["structures"].endswith("graphsite_dna/pdb")
