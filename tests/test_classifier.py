import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as skops_io
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from skops.io.exceptions import UntrustedTypesFoundException

from siteaug.arms import reference_models
from siteaug.arms.classifier import MLPClassifier, MLPConfig, mlp_config
from siteaug.arms.protocol import arm_training_rows, class_weight, sweep_arm, sweep_ratio, train_arm, uses_balanced_table
from siteaug.arms.reference_models import GBDT_TRUSTED_TYPES, GBDTClassifier, fit_gbdt

FEATURES = ["f_a", "f_b", "f_c", "f_d"]


def toy(n=400, positive_fraction=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    score = X[:, 0] + X[:, 1]
    threshold = 0.0 if positive_fraction is None else np.quantile(score, 1 - positive_fraction)
    return X, (score > threshold).astype(np.int64)


def config(**overrides):
    settings = dict(input_dim=4, hidden=(16,), dropout=0.1, epochs=15, batch_size=64, lr=1e-2, seed=0)
    settings.update(overrides)
    return MLPConfig(**settings)


def test_fits_a_separable_problem():
    X, y = toy()
    X_test, y_test = toy(seed=1)
    proba = MLPClassifier(config()).fit(X, y).predict_proba(X_test)
    assert proba.shape == (len(y_test),) and ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(y_test, proba) > 0.95


def test_deterministic_for_a_seed():
    X, y = toy()
    a = MLPClassifier(config()).fit(X, y).predict_proba(X)
    b = MLPClassifier(config()).fit(X, y).predict_proba(X)
    c = MLPClassifier(config(seed=1)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_deterministic_when_built_before_fitting():
    X, y = toy()
    first, second = MLPClassifier(config(dropout=0.5)), MLPClassifier(config(dropout=0.5))
    np.testing.assert_array_equal(first.fit(X, y).predict_proba(X), second.fit(X, y).predict_proba(X))


def test_save_load_roundtrip(tmp_path):
    X, y = toy()
    model = MLPClassifier(config(hidden=(8, 4))).fit(X, y)
    model.save(tmp_path / "mlp.pt")
    loaded = MLPClassifier.load(tmp_path / "mlp.pt")
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def noisy_labels(n, flip, seed):
    """toy rows with a share ``flip`` of the labels flipped: a network that goes on fitting them loses validation AUPRC."""
    X, y = toy(n, seed=seed)
    flipped = np.random.default_rng(seed + 100).random(n) < flip
    return X, np.where(flipped, 1 - y, y)


def counted(epochs_run):
    """A progress callback that counts the epochs a fit runs."""
    def progress(epochs):
        for epoch in epochs:
            epochs_run.append(epoch)
            yield epoch
    return progress


STOPPING = dict(hidden=(32, 32), epochs=40, batch_size=32, lr=3e-3, early_stopping_patience=4)


def test_early_stopping_keeps_the_best_validation_epoch_and_stops_after_patience():
    X, y = noisy_labels(200, 0.4, 0)
    validation = noisy_labels(400, 0.0, 1)  # clean labels: the epochs that fit the flipped ones score worse
    epochs_run = []
    model = MLPClassifier(config(**STOPPING)).fit(X, y, validation, progress=counted(epochs_run))
    auprc = [r["validation_auprc"] for r in model.history]
    assert [r["epoch"] for r in model.history] == epochs_run == list(range(1, len(auprc) + 1))
    assert model.best_epoch == 1 + int(np.argmax(auprc)) > 1
    assert len(auprc) == model.best_epoch + 4 < 40  # stopped 4 epochs after the best one, far below the maximum
    # The weights kept are the best epoch's: the same seed trained exactly that many epochs predicts the same.
    exactly = MLPClassifier(config(**{**STOPPING, "epochs": model.best_epoch, "early_stopping_patience": 0})).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), exactly.predict_proba(X))
    last = MLPClassifier(config(**{**STOPPING, "epochs": len(auprc), "early_stopping_patience": 0})).fit(X, y)
    assert not np.allclose(model.predict_proba(X), last.predict_proba(X))  # not the last epoch's weights


@pytest.mark.parametrize("patience", [0, None])
def test_no_patience_trains_every_epoch_as_without_validation_rows(patience):
    X, y = noisy_labels(200, 0.4, 0)
    epochs_run = []
    model = MLPClassifier(config(**{**STOPPING, "epochs": 12, "early_stopping_patience": patience})).fit(
        X, y, noisy_labels(400, 0.0, 1), progress=counted(epochs_run))
    assert epochs_run == list(range(1, 13)) and model.best_epoch is None and model.history == []
    plain = MLPClassifier(config(**{**STOPPING, "epochs": 12})).fit(X, y)  # no validation rows: never stops
    np.testing.assert_array_equal(model.predict_proba(X), plain.predict_proba(X))


def test_validation_rows_of_one_class_train_every_epoch(caplog):
    X, y = noisy_labels(200, 0.4, 0)
    epochs_run = []
    model = MLPClassifier(config(**{**STOPPING, "epochs": 6})).fit(X, y, (X[:50], np.zeros(50)), progress=counted(epochs_run))
    assert len(epochs_run) == 6 and model.best_epoch is None and "one class only" in caplog.text


def test_mixed_precision_is_float32_on_cpu():
    X, y = toy()
    on = MLPClassifier(config(mixed_precision=True)).fit(X, y).predict_proba(X)
    off = MLPClassifier(config(mixed_precision=False)).fit(X, y).predict_proba(X)
    assert on.dtype == np.float32
    np.testing.assert_array_equal(on, off)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the captured step is CUDA-only)")


@needs_cuda
def test_the_captured_cuda_step_trains_as_the_eager_step():
    X, y = toy(n=1000)  # 15 full batches of 64 and a short one, which takes the eager step
    weights = {}
    for graph in (True, False):
        model = MLPClassifier(config(dropout=0.0, mixed_precision=False, cuda_graph=graph, epochs=3), "cuda").fit(X, y)
        weights[graph] = [p.detach().cpu() for p in model.network.parameters()]
    for captured, eager in zip(weights[True], weights[False]):
        torch.testing.assert_close(captured, eager, rtol=1e-4, atol=1e-5)


@needs_cuda
def test_the_captured_cuda_step_is_deterministic_with_dropout_and_bf16():
    X, y = toy(n=1000)
    runs = [MLPClassifier(config(dropout=0.3, seed=seed), "cuda").fit(X, y, validation=toy(seed=5)).predict_proba(X)
            for seed in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    assert roc_auc_score(y, runs[0]) > 0.95


GBDT_SETTINGS = {"learning_rates": [0.1], "max_leaf_nodes": [7], "max_iter": 20, "max_features": 0.8, "cv_folds": 3,
                 "early_stopping_rounds": 5}


def fitted_gbdt():
    X, y = toy()
    return GBDTClassifier(GBDT_SETTINGS, seed=3, params={"learning_rate": 0.1, "max_leaf_nodes": 7}).fit(X, y), X


def test_gbdt_save_load_roundtrip_without_pickle(tmp_path):
    model, X = fitted_gbdt()
    path = tmp_path / "seed_3.skops"
    model.save(path)
    loaded = GBDTClassifier.load(path)
    assert (loaded.settings, loaded.seed, loaded.params) == (model.settings, model.seed, model.params)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # Not a pickle: a zip of JSON and plain .npy arrays, each of which numpy reads with pickling off.
    data = path.read_bytes()
    assert data[:4] == b"PK\x03\x04" and not data.startswith(b"\x80")
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "schema.json" in names and all(name.endswith((".json", ".npy")) for name in names)
        for name in names:
            if name.endswith(".npy"):
                with archive.open(name) as member:
                    np.load(member, allow_pickle=False)


def test_gbdt_load_refuses_a_type_outside_its_trusted_list(tmp_path):
    model, _ = fitted_gbdt()
    skops_io.dump({"params": {}, "settings": GBDT_SETTINGS, "seed": 3, "model": model.model, "hook": os.system},
                  tmp_path / "bad.skops")
    with pytest.raises(UntrustedTypesFoundException, match="system"):
        GBDTClassifier.load(tmp_path / "bad.skops")


def test_gbdt_load_refuses_a_tree_pointing_outside_itself(tmp_path):
    model, _ = fitted_gbdt()
    model.save(tmp_path / "good.skops")
    payload = skops_io.load(tmp_path / "good.skops", trusted=list(GBDT_TRUSTED_TYPES))
    nodes = payload["model"]._predictors[0][0].nodes
    assert nodes["is_leaf"][0] == 0  # the root splits
    nodes["right"][0] = len(nodes) + 100
    skops_io.dump(payload, tmp_path / "bad.skops")
    with pytest.raises(ValueError, match="outside its tree"):
        GBDTClassifier.load(tmp_path / "bad.skops")


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_rejected(label):
    X, _ = toy(n=20)
    with pytest.raises(ValueError, match="single class"):
        MLPClassifier(config()).fit(X, np.full(20, label))


def test_balanced_raises_positive_probability():
    X, y = toy(n=600, positive_fraction=0.05)
    plain = MLPClassifier(config(balanced=False)).fit(X, y).predict_proba(X).mean()
    balanced = MLPClassifier(config(balanced=True)).fit(X, y).predict_proba(X).mean()
    assert balanced > 1.5 * plain


def train_frame(n=200, positives=20):
    X, _ = toy(n=n)
    frame = pd.DataFrame(X, columns=FEATURES)
    frame.insert(0, "label", (np.arange(n) < positives).astype(np.int64))
    return frame


def test_arm_none_returns_the_train_rows():
    train = train_frame()
    X, y = arm_training_rows("none", train, None, 0.5, 0, FEATURES)
    assert X.dtype == np.float32 and np.array_equal(X, train[FEATURES].to_numpy(np.float32))
    assert np.array_equal(y, train["label"].to_numpy())


def test_arm_smote_reaches_ratio_and_keeps_rows():
    train = train_frame()
    X, y = arm_training_rows("smote", train, None, 0.4, 0, FEATURES)
    assert abs(y.mean() - 0.4) < 0.01 and y.mean() >= 0.4
    assert np.array_equal(X[: len(train)], train[FEATURES].to_numpy(np.float32))
    assert np.array_equal(y[: len(train)], train["label"].to_numpy()) and (y[len(train):] == 1).all()
    X2, _ = arm_training_rows("smote", train, None, 0.4, 0, FEATURES)
    np.testing.assert_array_equal(X, X2)


def test_arm_diffusion_uses_the_balanced_table():
    balanced = train_frame(n=50, positives=25)
    X, y = arm_training_rows("diffusion", train_frame(), balanced, 0.5, 0, FEATURES)
    assert np.array_equal(X, balanced[FEATURES].to_numpy(np.float32)) and y.tolist() == balanced["label"].tolist()
    with pytest.raises(ValueError, match="balanced"):
        arm_training_rows("diffusion", train_frame(), None, 0.5, 0, FEATURES)


@pytest.mark.parametrize("arm", ["random_oversampling", "borderline_smote"])
def test_oversampling_arms_reach_the_ratio_with_the_real_rows_first(arm):
    train = train_frame(n=300, positives=40)
    X, y = arm_training_rows(arm, train, None, 0.4, 0, FEATURES)
    assert np.array_equal(X[: len(train)], train[FEATURES].to_numpy(np.float32)) and (y[len(train):] == 1).all()
    if arm == "random_oversampling":  # BorderlineSMOTE may add fewer when few positives are "in danger" (logged)
        assert abs(y.mean() - 0.4) < 0.01
        # random oversampling only repeats real positives
        real = {tuple(r) for r in train.loc[train["label"] == 1, FEATURES].to_numpy(np.float32)}
        assert all(tuple(r) in real for r in X[len(train):])


def test_class_weight_gives_positives_the_target_share():
    y = np.array([1] * 10 + [0] * 90)
    w = class_weight(y, 0.5)
    assert w == pytest.approx(9.0) and w * 10 / (w * 10 + 90) == pytest.approx(0.5)


def test_sweep_arm_names_round_trip():
    assert sweep_arm(0.5) == "diffusion_ratio0.5" and sweep_ratio("diffusion_ratio0.5") == 0.5
    assert sweep_ratio("diffusion") is None and uses_balanced_table("diffusion_ratio0.7")
    assert uses_balanced_table("smote_filtered") and not uses_balanced_table("smote")


def residue_table(n_proteins=12, length=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_proteins):
        split = "train" if p < 6 else "validation" if p < 9 else "test"
        X = rng.normal(size=(length, 4)).astype(np.float32)
        label = (X[:, 0] + X[:, 1] + rng.normal(0, 0.3, length) > 1.2).astype(np.int8)
        label[0] = 1  # every protein holds a positive
        rows.append(pd.DataFrame(X, columns=FEATURES).assign(protein_id=f"p{p:02d}", position=np.arange(length), label=label, split=split))
    residues = pd.concat(rows, ignore_index=True)
    edges = pd.DataFrame([{"protein_id": f"p{p:02d}", "src": a, "dst": b}
                          for p in range(n_proteins) for i in range(length - 1) for a, b in ((i, i + 1), (i + 1, i))])
    return residues, edges


SETTINGS = {"hidden": [16], "dropout": 0.1, "epochs": 10, "batch_size": 64, "lr": 1e-2, "mixed_precision": True, "cuda_graph": True,
            "early_stopping_patience": 3, "threshold_metric": "mcc",
            "gbdt": {"learning_rates": [0.1], "max_leaf_nodes": [7, 15], "max_iter": 30, "max_features": 0.8, "cv_folds": 3,
                     "early_stopping_rounds": 5},
            "gnn": {"hidden": 16, "layers": 2, "dropout": 0.0, "epochs": 20, "batch_proteins": 4, "lr": 1e-2}}


def test_the_config_turns_the_captured_mlp_steps_off():
    # A torch or driver that cannot capture CUDA graphs needs a way back to eager steps (classifier.cuda_graph and
    # filter.critic.cuda_graph); every other MLP setting comes from the same keys.
    assert mlp_config(SETTINGS, 4, seed=0).cuda_graph
    off = mlp_config({**SETTINGS, "cuda_graph": False}, 4, seed=0)
    assert not off.cuda_graph and off.hidden == (16,) and off.batch_size == 64 and off.early_stopping_patience == 3


@pytest.mark.parametrize("arm", ["none", "class_weight", "smote", "gbdt", "gnn"])
def test_train_arm_scores_the_test_split_once_per_seed(arm, caplog):
    residues, edges = residue_table()
    caplog.set_level("INFO")
    predictions, models, summary = train_arm(arm, residues, SETTINGS, 0.5, [3, 4], edges=edges)
    test = residues[residues["split"] == "test"]
    assert len(predictions) == 2 * len(test) and predictions["seed"].tolist() == [3] * len(test) + [4] * len(test)
    assert set(predictions["split"]) == {"test"} and len(models) == 2 and [s["seed"] for s in summary] == [3, 4]
    for _, part in predictions.groupby("seed"):
        assert part["threshold"].nunique() == 1  # frozen on validation, one per seed
        assert part["protein_id"].tolist() == sorted(test["protein_id"]) and part["score"].between(0, 1).all()
        assert roc_auc_score(part["label"], part["score"]) > 0.75  # the signal is learnable by every arm
    if arm == "gbdt":
        assert summary[0]["params"] == summary[1]["params"] and summary[0]["params"]["max_leaf_nodes"] in (7, 15)
        # Records before the silent parts, so the console's progress line says what a long gbdt job is doing.
        messages = [r.getMessage() for r in caplog.records]
        rows = int((residues["split"] == "train").sum())
        assert f"gbdt: grouped 3-fold CV of 2 grid points (6 fits, up to 1 at a time) on {rows} rows" in messages
        assert [m.split(":")[0] for m in messages if m.startswith("gbdt seed")] == ["gbdt seed 3", "gbdt seed 4"]
    if arm == "class_weight":
        assert summary[0]["positive_weight"] > 1


def test_unknown_arm():
    with pytest.raises(ValueError, match="unknown arm"):
        arm_training_rows("adasyn", train_frame(), None, 0.5, 0, FEATURES)


def noise_labels(n, seed):
    """Rows whose labels are coin flips: every iteration after the first few fits noise, so validation loss rises."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 2, n).astype(np.int64)


NOISE_SETTINGS = {**GBDT_SETTINGS, "max_iter": 150, "early_stopping_rounds": 5}
NOISE_PARAMS = {"learning_rate": 0.3, "max_leaf_nodes": 31}


def test_gbdt_stops_early_on_the_validation_rows_when_their_loss_rises():
    X, y = noise_labels(2000, 0)
    validation = noise_labels(500, 1)
    stopped = fit_gbdt(NOISE_SETTINGS, 3, X, y, validation, **NOISE_PARAMS)
    assert stopped.n_iter_ < 30  # far below max_iter 150: no iteration lowered the validation loss for 5 in a row
    assert len(stopped.validation_score_) == stopped.n_iter_ + 1  # scored on the rows passed, one score per iteration
    np.testing.assert_array_equal(stopped.predict_proba(X), fit_gbdt(NOISE_SETTINGS, 3, X, y, validation, **NOISE_PARAMS).predict_proba(X))
    off = fit_gbdt({**NOISE_SETTINGS, "early_stopping_rounds": None}, 3, X, y, validation, **NOISE_PARAMS)
    assert off.n_iter_ == 150


def test_gbdt_without_validation_rows_never_holds_out_random_residues():
    # More than 10,000 rows is where scikit-learn's early_stopping="auto" would split off a random 10 %.
    X, y = noise_labels(12000, 0)
    model = fit_gbdt({**NOISE_SETTINGS, "max_iter": 40}, 3, X, y, **NOISE_PARAMS)
    assert model.n_iter_ == 40 and not model.do_early_stopping_ and len(model.validation_score_) == 0


def recorded_gbdt_fits(monkeypatch, module):
    """Every fit_gbdt call that ``module`` makes, as (X, X_val or None)."""
    calls, real = [], reference_models.fit_gbdt

    def record(settings, seed, X, y, validation=None, monitor=None, **params):
        scored = validation if validation is not None else monitor  # rows stopped on, or monitored (grid fits)
        calls.append((X, None if scored is None else scored[0]))
        return real(settings, seed, X, y, validation, monitor, **params)

    monkeypatch.setattr(module, "fit_gbdt", record)
    return calls


def test_gbdt_arm_stops_on_validation_proteins_and_tunes_on_held_out_folds_never_on_test(monkeypatch):
    residues, _ = residue_table()
    residues.loc[residues["split"] == "test", "f_d"] = 1000.0  # marks every test row
    residues.loc[residues["split"] == "validation", "f_d"] = -1000.0  # and every validation row
    calls = recorded_gbdt_fits(monkeypatch, reference_models)
    _, _, summary = train_arm("gbdt", residues, SETTINGS, 0.5, [3, 4])
    on_validation = [X_val is not None and (X_val[:, 3] == -1000).all() for _, X_val in calls]
    final = [c for c, v in zip(calls, on_validation) if v]
    cross_validation = [c for c, v in zip(calls, on_validation) if not v]
    assert len(final) == 2  # one fit per seed, stopped on the validation rows
    assert len(cross_validation) == 2 * 3  # two grid points, three folds, each stopped on its held-out rows
    for X, X_val in calls:
        assert not (X[:, 3] == 1000).any() and not (X_val[:, 3] == 1000).any()  # the test split is never passed
        assert not (X[:, 3] == -1000).any()  # nor is validation ever fitted on
    for X, X_val in cross_validation:
        assert len(X_val) and not (X_val[:, 3] == -1000).any() and set(map(tuple, X)).isdisjoint(map(tuple, X_val))
    assert all(1 <= s["iterations"] <= 30 for s in summary)


@pytest.mark.parametrize("arm", ["none", "smote", "diffusion"])
def test_mlp_arms_stop_early_on_the_validation_rows_only(arm, monkeypatch):
    residues, _ = residue_table()
    residues.loc[residues["split"] == "test", "f_d"] = 1000.0  # marks every test row
    residues.loc[residues["split"] == "validation", "f_d"] = -1000.0  # and every validation row
    train = residues[residues["split"] == "train"]
    synthetic = train[train["label"] == 1].assign(f_d=500.0)  # marks every synthetic row
    balanced = pd.concat([train, synthetic], ignore_index=True)
    calls, real = [], MLPClassifier.fit

    def record(self, X, y, validation=None, progress=None):
        calls.append((X, validation))
        return real(self, X, y, validation, progress)

    monkeypatch.setattr(MLPClassifier, "fit", record)
    _, _, summary = train_arm(arm, residues, SETTINGS, 0.5, [3, 4], balanced=balanced)
    n_validation = int((residues["split"] == "validation").sum())
    assert len(calls) == 2
    for X, (X_val, y_val) in calls:
        assert len(X_val) == len(y_val) == n_validation and (X_val[:, 3] == -1000).all()  # the validation split, whole
        assert not np.isin(X[:, 3], [1000, -1000]).any()  # neither split is ever trained on
        assert (X[:, 3] == 500).any() == (arm == "diffusion")  # the synthetic rows reach training only
    for info in summary:
        assert 1 <= info["best_epoch"] <= len(info["history"]) <= SETTINGS["epochs"]
        assert [r["epoch"] for r in info["history"]] == list(range(1, len(info["history"]) + 1))


def test_gbdt_tuning_holds_out_whole_proteins(monkeypatch):
    X, y = toy(600)
    groups = np.repeat(np.arange(12), 50)
    calls = recorded_gbdt_fits(monkeypatch, reference_models)
    GBDTClassifier({**GBDT_SETTINGS, "max_leaf_nodes": [7, 15]}, seed=0).tune(X, y, groups)
    row_of = {row.tobytes(): i for i, row in enumerate(X)}
    for fitted, held in calls:
        fit_proteins = {groups[row_of[r.tobytes()]] for r in fitted}
        held_proteins = {groups[row_of[r.tobytes()]] for r in held}
        assert fit_proteins.isdisjoint(held_proteins) and len(fit_proteins | held_proteins) == 12


def test_gbdt_tuning_chooses_the_same_grid_point_with_its_fits_side_by_side(caplog):
    X, y = toy(600)
    groups = np.repeat(np.arange(12), 50)
    settings = {**GBDT_SETTINGS, "max_leaf_nodes": [3, 7, 15]}
    caplog.set_level("INFO")

    def tuned(threads):
        caplog.clear()
        params = GBDTClassifier(settings, seed=0).tune(X, y, groups, threads=threads)
        return params, [r.getMessage() for r in caplog.records if "CV AUPRC" in r.getMessage()]

    one_at_a_time, side_by_side = tuned(1), tuned(2)
    assert one_at_a_time == side_by_side  # the grid point, and every grid point's score and iterations per fold
    assert len(side_by_side[1]) == 3 + 1


@pytest.mark.parametrize("rounds", [3, None])
def test_a_grid_fit_scores_the_trees_that_early_stopping_would_keep(rounds):
    """grid_fold_fit fits every iteration once and reads off what a fit stopping on the held-out rows would keep: the
    tree_scores job's fits then serve as the gbdt arm's tuning fits. A learning rate whose fit never stops and one whose
    fit stops within a few iterations; the figures must equal those of real fits that stop."""
    X, y = noise_labels(800, 0)
    X[:, 0] += 1.5 * y  # some signal, so the loss first falls, then rises
    X_held, y_held = noise_labels(400, 1)
    X_held[:, 0] += 1.5 * y_held
    settings = {**NOISE_SETTINGS, "max_iter": 40, "early_stopping_rounds": rounds}
    stopped_somewhere = False
    for learning_rate in (0.02, 1.0):
        params = {"learning_rate": learning_rate, "max_leaf_nodes": 15}
        grid_fit = reference_models.grid_fold_fit(settings, 5, params, X, y, X_held, y_held, X_held[:7])
        stopped = fit_gbdt(settings, 5, X, y, (X_held, y_held), **params)
        assert grid_fit.iterations == stopped.n_iter_
        assert grid_fit.auprc == average_precision_score(y_held, stopped.predict_proba(X_held)[:, 1])
        every_iteration = fit_gbdt(settings, 5, X, y, **params)  # the out-of-fold scores: never stopped early
        np.testing.assert_array_equal(grid_fit.held, every_iteration.predict_proba(X_held)[:, 1])
        np.testing.assert_array_equal(grid_fit.other, every_iteration.predict_proba(X_held[:7])[:, 1])
        stopped_somewhere |= stopped.n_iter_ < settings["max_iter"]
    assert stopped_somewhere == (rounds is not None)


def test_monitored_rows_never_stop_or_change_the_trees():
    X, y = noise_labels(2000, 0)
    monitored = noise_labels(500, 1)
    watched = fit_gbdt(NOISE_SETTINGS, 3, X, y, monitor=monitored, **NOISE_PARAMS)
    assert watched.n_iter_ == NOISE_SETTINGS["max_iter"] and len(watched.validation_score_) == watched.n_iter_ + 1
    np.testing.assert_array_equal(watched.predict_proba(X), fit_gbdt(NOISE_SETTINGS, 3, X, y, **NOISE_PARAMS).predict_proba(X))
    with pytest.raises(ValueError, match="not both"):
        fit_gbdt(NOISE_SETTINGS, 3, X, y, monitored, monitored, **NOISE_PARAMS)


def test_gbdt_arm_given_its_grid_point_fits_only_its_seeds_with_the_same_result(monkeypatch):
    residues, _ = residue_table()
    tuned_here, models, summary = train_arm("gbdt", residues, SETTINGS, 0.5, [3, 4])
    calls = recorded_gbdt_fits(monkeypatch, reference_models)
    given, _, given_summary = train_arm("gbdt", residues, SETTINGS, 0.5, [3, 4], tuned={"params": summary[0]["params"]})
    assert len(calls) == 2  # the seeds' fits only: no grid fit
    pd.testing.assert_frame_equal(given, tuned_here)
    assert given_summary == summary
