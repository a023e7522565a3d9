"""Feature-group ablation (report.feature_ablation): config check, per-setting feature tables, metrics, and the workflow."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from helpers import ABLATION_SETTINGS, LEAN, new_workdir, run_snakemake, write_config
from siteaug.arms.protocol import train_arm
from siteaug.evaluation.ablation import SPLITS, ablation_settings, display_table, summarise, write_outputs
from siteaug.features.residues import BASE_FEATURES, build_feature_tables, feature_columns, feature_names, standardise
from siteaug.inputs.demo import make_demo
from siteaug.inputs.prepare import prepare_proteins
from siteaug.runtime.io import InputError

SETTINGS = ABLATION_SETTINGS
CLASSIFIER = {"hidden": [16], "dropout": 0.1, "epochs": 3, "batch_size": 256, "lr": 1e-2, "mixed_precision": True, "cuda_graph": True,
              "early_stopping_patience": 2, "threshold_metric": "mcc"}


# ---------------------------------------------------------------- config check

def test_settings_are_named_by_their_groups_in_features_order():
    settings = ablation_settings([["sequence"], ["structure", "sequence"], ["pssm"]], ["sequence", "structure", "pssm"])
    assert settings == {"sequence": ("sequence",), "sequence+structure": ("sequence", "structure"), "pssm": ("pssm",)}
    assert ablation_settings([], ["sequence"]) == {}


@pytest.mark.parametrize(
    "settings, groups, message",
    [
        ([["sequence"], ["sequence", "pssm"]], ["sequence", "structure"], r"feature_ablation\[1\]: group 'pssm' is not in features.groups"),
        ([["structure"]], ["sequence"], r"feature_ablation\[0\]: group 'structure' is not in features.groups \(sequence\)"),
        ([[]], ["sequence"], "at least one feature group"),
        ([["sequence", "sequence"]], ["sequence"], "listed twice"),
        ([["sequence", "structure"], ["structure", "sequence"]], ["sequence", "structure"], r"same groups .*sequence\+structure"),
    ],
)
def test_config_check_rejects_bad_settings_in_one_line(settings, groups, message):
    with pytest.raises(InputError, match=message) as err:
        ablation_settings(settings, groups)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- feature tables and training

@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Standardised feature tables of a small demo set (with structures) for each setting, as the workflow builds them."""
    folder = tmp_path_factory.mktemp("demo")
    make_demo(folder, n_proteins=16, min_length=40, max_length=60, seed=2)
    proteins = prepare_proteins(str(folder / "labels.fa"), str(folder / "pdb"), 0.25, 0.25, seed=2)
    out = {}
    for name, groups in ablation_settings(SETTINGS, ["sequence", "structure"]).items():
        residues, _ = build_feature_tables(proteins, (8.0, 12.0), 10.0, groups=groups)
        out[name] = standardise(residues, feature_columns(residues))[0]
    return out


def test_sequence_only_table_is_rebuilt_not_selected(tables):
    sequence, full = tables["sequence"], tables["sequence+structure"]
    assert feature_columns(sequence) == [f"f_{n}" for n in feature_names(groups=["sequence"])]
    structure_only = set(feature_columns(full)) - set(feature_columns(sequence))
    assert {"f_has_structure", "f_rsa", "f_nbr_rsa", "f_ctx_r8_rsa"} <= structure_only
    assert not any(c in feature_columns(sequence) for c in structure_only)
    # The per-residue sequence columns are the same; their neighbour means are not: with structure on they are taken
    # over the Cα graph, sequence-only over sequence neighbours, so selecting columns of the full table would be wrong.
    base = [f"f_{n}" for n in BASE_FEATURES if f"f_{n}" in feature_columns(sequence)]
    np.testing.assert_allclose(sequence[base].to_numpy(), full[base].to_numpy(), rtol=1e-5, atol=1e-5)
    neighbours = [c for c in feature_columns(sequence) if c.startswith("f_nbr_")]
    assert neighbours and len(neighbours) == len(base) - 1  # every column but rel_position
    differs = [c for c in neighbours if not np.allclose(sequence[c], full[c], atol=1e-3)]
    assert len(differs) == len(neighbours)


@pytest.fixture(scope="module")
def trained(tables):
    """Each setting's `none` arm, two seeds, with validation and test predictions (as rule ablation_classifier)."""
    predictions, training = {}, {}
    for name, residues in tables.items():
        predictions[name], _, summary = train_arm("none", residues, CLASSIFIER, 0.5, [0, 1], splits=SPLITS)
        training[name] = {"features": len(feature_columns(residues)), "seeds": summary}
    return predictions, training


def test_train_arm_scores_validation_too_with_the_frozen_threshold(tables, trained):
    predictions = trained[0]["sequence"]
    residues = tables["sequence"]
    for split in SPLITS:
        assert (predictions["split"] == split).sum() == 2 * (residues["split"] == split).sum()
    assert predictions.groupby("seed")["threshold"].nunique().eq(1).all()
    only_test, _, _ = train_arm("none", residues, CLASSIFIER, 0.5, [0, 1])
    pd.testing.assert_frame_equal(only_test, predictions[predictions["split"] == "test"].reset_index(drop=True))


def test_metrics_have_one_row_per_setting_with_values_in_range(trained, tmp_path):
    predictions, training = trained
    rows = summarise(predictions, training, n_resamples=200, confidence=0.9, seed=0)
    assert [r["setting"] for r in rows] == ["sequence", "sequence+structure"]
    assert rows[0]["features"] < rows[1]["features"]
    for row in rows:
        for split in SPLITS:
            for metric, low_bound in (("auroc", 0), ("auprc", 0), ("f1", 0), ("mcc", -1)):
                value, low, high = (row[f"{split}_{metric}{s}"] for s in ("", "_low", "_high"))
                assert low_bound <= low <= value <= high <= 1, (row["setting"], split, metric)
            assert row[f"{split}_proteins"] == predictions[row["setting"]].query("split == @split")["protein_id"].nunique()
    assert rows[0]["test_auprc_diff"] == 0 and rows[0]["test_auprc_diff_low"] == 0
    # The point value is scikit-learn's on all residues of the split, averaged over seeds.
    test = predictions["sequence+structure"].query("split == 'test'")
    for metric, fn in (("auprc", average_precision_score), ("auroc", roc_auc_score)):
        expected = np.mean([fn(part["label"], part["score"]) for _, part in test.groupby("seed")])
        assert rows[1][f"test_{metric}"] == pytest.approx(expected, abs=1e-9)
        assert rows[1][f"test_{metric}_diff"] == pytest.approx(rows[1][f"test_{metric}"] - rows[0][f"test_{metric}"])

    paths = [tmp_path / name for name in ("metrics.json", "metrics.tsv", "table.tsv", "metrics.png")]
    write_outputs(rows, {"arm": "none"}, 0.9, *paths)
    assert [r["setting"] for r in json.loads(paths[0].read_text())["settings"]] == ["sequence", "sequence+structure"]
    assert pd.read_csv(paths[1], sep="\t")["setting"].tolist() == ["sequence", "sequence+structure"]
    table = display_table(rows, 0.9)
    assert len(table) == 2 and "test AUPRC [90 % CI]" in table.columns and table.iloc[0, -1] == "—"
    assert paths[3].read_bytes()[:4] == b"\x89PNG"


def test_summarise_rejects_predictions_without_validation_rows(trained):
    predictions, training = trained
    test_only = {name: df[df["split"] == "test"] for name, df in predictions.items()}
    with pytest.raises(InputError, match="no validation rows"):
        summarise(test_only, training, n_resamples=100, confidence=0.9, seed=0)


# ---------------------------------------------------------------- workflow

def run(workdir, *args, overrides: dict):
    """The tiny demo with the lean overlay (three arms, one seed) and ``overrides``; fails the test if it fails."""
    config = write_config(workdir, overrides, name="ablation.yaml")
    return run_snakemake(workdir, *args, configfiles=(config, LEAN))


@pytest.mark.workflow
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"report.feature_ablation": [["sequence"], ["sequence", "pssm"]]}, "group 'pssm' is not in features.groups"),
        ({"report.feature_ablation": [["sequence", "structure"]], "features.groups": ["sequence"]}, "group 'structure'"),
        ({"report.feature_ablaton": [["sequence"]]}, "feature_ablaton"),
    ],
    ids=["unknown-group", "group-not-selected", "misspelled-key"],
)
def test_bad_ablation_config_fails_before_any_job(tmp_path_factory, overrides, message):
    workdir = new_workdir(tmp_path_factory, "badablation")
    result = run(workdir, "-n", overrides=overrides)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (workdir / "results").exists()


@pytest.mark.workflow
def test_workflow_with_the_ablation_reports_every_setting(lean_ablation_run):
    # The shared lean run with report.feature_ablation: SETTINGS (conftest.py), finished without an error.
    workdir, configfiles = lean_ablation_run
    results = workdir / "results"
    metrics = json.loads((results / "ablation/metrics.json").read_text())
    assert [s["setting"] for s in metrics["settings"]] == ["sequence", "sequence+structure"]
    assert all(0 <= s[f"{split}_auprc"] <= 1 for s in metrics["settings"] for split in SPLITS)
    page = (results / "report/report.html").read_text()
    assert "<h2>Feature-group ablation</h2>" in page and "sequence+structure" in page
    sequence = pd.read_parquet(results / "ablation/sequence/residues.parquet")
    full = pd.read_parquet(results / "features/residues.parquet")
    assert "f_has_structure" not in sequence.columns and "f_has_structure" in full.columns
    assert (sequence[["protein_id", "position", "split"]] == full[["protein_id", "position", "split"]]).all().all()
    assert (results / "benchmarks/ablation_classifier_sequence.tsv").is_file()
    # A second run has nothing to do.
    rerun = run_snakemake(workdir, "-n", configfiles=configfiles)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    # Snakemake's own report carries the ablation outputs under their category, with their captions.
    smk_report = run_snakemake(workdir, "--report", "smk_report.html", configfiles=configfiles)
    assert "Report created" in smk_report.stdout + smk_report.stderr
    page = (workdir / "smk_report.html").read_text()
    assert "Feature-group ablation" in page and "rebuilt with only that setting" in page
