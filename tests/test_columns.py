"""Column kinds and the feature-space <-> model-space codec (siteaug.generative.columns), and generation through it."""
import io

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import QuantileTransformer

from conftest import tiny_config
from siteaug.features.residues import SCALES, base_feature_names, protein_features, standardise
from siteaug.generative.columns import ColumnCodec, fit_codec
from siteaug.generative.diffusion import SiteDiffusion
from siteaug.generative.generation import generate_candidates
from siteaug.runtime.io import AMINO_ACIDS


def sequence_table(n_proteins=40, length=50, seed=0) -> pd.DataFrame:
    """Real sequence-group features (one-hot, BLOSUM, scales, position, neighbour means), standardised like the workflow."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(n_proteins):
        sequence = "".join(rng.choice(list(AMINO_ACIDS + "X"), size=length, p=[0.049] * 20 + [0.02]))
        x, names, _ = protein_features(sequence, groups=["sequence"])
        frame = pd.DataFrame(x, columns=[f"f_{n}" for n in names])
        frame.insert(0, "split", "train" if p < 30 else "validation")
        frame.insert(0, "label", (rng.random(length) < 0.4).astype(np.int8))
        frame.insert(0, "position", np.arange(length))
        frame.insert(0, "protein_id", f"p{p}")
        frames.append(frame)
    residues = pd.concat(frames, ignore_index=True)
    residues, _ = standardise(residues, [c for c in residues.columns if c.startswith("f_")])
    return residues


def numeric_table(n=3000, seed=0) -> pd.DataFrame:
    """Skewed continuous, zero-inflated and integer-count columns."""
    rng = np.random.default_rng(seed)
    columns = {
        "f_emb_0": rng.lognormal(0, 1.5, n),
        "f_emb_1": np.where(rng.random(n) < 0.3, 0.0, rng.exponential(2.0, n)),
        "f_emb_2": rng.standard_t(2, n),
        "f_count": rng.poisson(3, n).astype(float),
    }
    frame = pd.DataFrame(columns).astype(np.float32)
    frame.insert(0, "split", np.where(np.arange(n) < 2500, "train", "validation"))
    frame.insert(0, "label", (rng.random(n) < 0.5).astype(np.int8))
    frame.insert(0, "position", np.arange(n) % 100)
    frame.insert(0, "protein_id", [f"p{i // 100}" for i in range(n)])
    return frame


def train_positives(residues, names):
    return residues[(residues["split"] == "train") & (residues["label"] == 1)][names].to_numpy(np.float64)


def test_quantile_transform_round_trips_and_matches_scikit_learn():
    residues = numeric_table()
    codec = fit_codec(residues, seed=0)
    assert not codec.groups and not codec.constants and len(codec.numeric) == 4
    assert [codec.names[codec.numeric[k]] for k in codec.snap] == ["f_count"]  # integer counts: discrete-valued
    rows = train_positives(residues, codec.names)
    z = codec.encode(rows)
    np.testing.assert_allclose(codec.decode(z), rows, rtol=1e-4, atol=1e-5)  # float32 model space: ~1e-5 in the tails
    # Inside the fitted range the forward map is scikit-learn's; spikes at the range ends go to the middle of their
    # CDF step instead of to +-5.2 (zero-inflated columns would otherwise put a spike at the prior's edge).
    reference = QuantileTransformer(n_quantiles=1000, output_distribution="normal", random_state=0).fit(rows)
    inside = (rows > reference.quantiles_[0]) & (rows < reference.quantiles_[-1])
    np.testing.assert_allclose(z[inside], reference.transform(rows)[inside], atol=1e-4)
    np.testing.assert_allclose(codec.decode(reference.transform(rows)[None, 0])[0, :3], rows[0, :3], rtol=1e-4)
    assert abs(z[:, 0].mean()) < 0.1 and abs(z[:, 0].std() - 1) < 0.1  # the lognormal column is now standard normal


def test_codec_survives_the_model_file():
    codec = fit_codec(sequence_table(n_proteins=35), seed=0)
    buffer = io.BytesIO()
    torch.save({"codec": codec.state()}, buffer)
    buffer.seek(0)
    loaded = ColumnCodec.from_state(torch.load(buffer, weights_only=True)["codec"])
    z = np.random.default_rng(0).normal(size=(50, codec.model_dim)).astype(np.float32)
    np.testing.assert_array_equal(loaded.decode(z), codec.decode(z))
    assert loaded.model_columns == codec.model_columns


def test_sequence_kinds_and_decoded_rows_are_consistent_with_their_amino_acid():
    residues = sequence_table()
    codec = fit_codec(residues, seed=0)
    [group] = codec.groups
    derived = [codec.names[j] for j in group.derived]
    assert group.name == "f_aa" and group.none  # X residues: all-zero one-hot
    assert group.categories == list(AMINO_ACIDS) + ["none"]
    assert sorted(derived) == sorted([f"f_blosum_{a}" for a in AMINO_ACIDS] + [f"f_{s}" for s in SCALES])
    assert "f_rel_position" in [codec.names[j] for j in codec.numeric]
    # Any model-space rows decode to rows that exist in the real table's (one-hot, BLOSUM, scales) combinations.
    z = np.random.default_rng(1).normal(size=(500, codec.model_dim)).astype(np.float32) * 2
    decoded = pd.DataFrame(codec.decode(z), columns=codec.names)
    static = [c for c in codec.names if not c.startswith("f_nbr_") and c != "f_rel_position"]
    assert static == [f"f_{n}" for n in base_feature_names(groups=["sequence"]) if n != "rel_position"]
    real_rows = {tuple(r) for r in residues[static].to_numpy()}
    assert all(tuple(r) in real_rows for r in decoded[static].to_numpy())
    one_hot = decoded[[f"f_aa_{a}" for a in AMINO_ACIDS]].to_numpy()
    high = one_hot == residues[[f"f_aa_{a}" for a in AMINO_ACIDS]].to_numpy().max(axis=0)
    assert (high.sum(axis=1) <= 1).all() and len(np.unique(high.argmax(axis=1))) > 10
    # Snapped (few-valued) neighbour means take only values seen in training rows.
    for k in codec.snap:
        name = codec.names[codec.numeric[k]]
        assert set(decoded[name]) <= set(residues.loc[residues["split"] == "train", name])


def test_discrete_off_diffuses_every_column():
    residues = sequence_table(n_proteins=35)
    codec = fit_codec(residues, seed=0, quantile=False, discrete=False)
    assert codec.model_dim == len(codec.names) and not codec.groups and not codec.snap and codec.quantiles is None
    rows = residues[codec.names].to_numpy()
    np.testing.assert_array_equal(codec.encode(rows), rows.astype(np.float32))
    np.testing.assert_array_equal(codec.decode(rows), rows.astype(np.float32))


def test_non_finite_model_rows_decode_to_nan_rows():
    codec = fit_codec(numeric_table(), seed=0)
    z = np.zeros((3, codec.model_dim), np.float32)
    z[1, 2] = np.nan
    decoded = codec.decode(z)
    assert np.isnan(decoded[1]).all() and np.isfinite(decoded[[0, 2]]).all()


@pytest.mark.parametrize("table", ["embeddings", "sequence"])
def test_generation_through_the_codec(table):
    residues = numeric_table() if table == "embeddings" else sequence_table()
    codec = fit_codec(residues, seed=0)
    torch.manual_seed(0)
    model = SiteDiffusion(tiny_config(feature_dim=codec.model_dim), with_encoder=False).eval()
    torch.nn.init.normal_(model.denoiser.output.weight, std=0.5)
    contexts = pd.DataFrame(np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32), index=pd.Index(["p0", "p1"], name="protein_id"))
    counts = pd.Series({"p0": 40, "p1": 25})
    # the ancestral sampler over all T = 10 steps of the tiny model (the default 20 sampler steps exceed T)
    out = generate_candidates(model, contexts, codec.names, counts, seed=0, device=torch.device("cpu"), progress=False, codec=codec, chunk_size=16,
                              sampler="ddpm", sampler_steps=None)
    assert list(out.columns) == ["protein_id", "candidate_id", *codec.names] and len(out) == 65
    assert np.isfinite(out[codec.names].to_numpy()).all()
    again = generate_candidates(model, contexts, codec.names, counts, seed=0, device=torch.device("cpu"), progress=False, codec=codec, chunk_size=16,
                              sampler="ddpm", sampler_steps=None)
    pd.testing.assert_frame_equal(out, again)
    if table == "sequence":
        static = [f"f_aa_{a}" for a in AMINO_ACIDS] + [f"f_blosum_{a}" for a in AMINO_ACIDS] + [f"f_{s}" for s in SCALES]
        real_rows = {tuple(r) for r in residues[static].to_numpy()}
        assert all(tuple(r) in real_rows for r in out[static].to_numpy())
        with pytest.raises(ValueError, match="pass the codec"):
            generate_candidates(model, contexts, codec.names, counts, seed=0, device=torch.device("cpu"), progress=False)


def angle_table(n=3000, undefined_share=0.05, seed=0):
    """A dihedral's sine and cosine (0/0 where undefined), two bounded columns that are no circle, and a normal one;
    standardised like the workflow. Returns the table and its standardisation statistics."""
    rng = np.random.default_rng(seed)
    phi = rng.vonmises(-1.2, 2.0, n)
    undefined = rng.random(n) < undefined_share
    x = 0.8 * rng.random(n)
    columns = {
        "f_rsa": rng.random(n), "f_phi_sin": np.where(undefined, 0, np.sin(phi)),
        "f_inside_a": x, "f_inside_b": np.sqrt(1 - x**2) * rng.random(n),  # inside the unit disk, never on the circle
        "f_phi_cos": np.where(undefined, 0, np.cos(phi)), "f_other": rng.normal(size=n),
    }
    frame = pd.DataFrame(columns).astype(np.float32)
    frame.insert(0, "split", np.where(np.arange(n) < 2500, "train", "validation"))
    frame.insert(0, "label", (rng.random(n) < 0.5).astype(np.int8))
    frame.insert(0, "position", np.arange(n) % 100)
    frame.insert(0, "protein_id", [f"p{i // 100}" for i in range(n)])
    return standardise(frame, [c for c in frame.columns if c.startswith("f_")])


def raw_pair(decoded, codec, stats):
    names = [codec.names[j] for j in codec.circles[0].columns]
    return decoded[:, codec.circles[0].columns] * [stats[n]["std"] for n in names] + [stats[n]["mean"] for n in names]


@pytest.mark.parametrize("undefined_share", [0.05, 0.0])
def test_circle_pairs_are_found_from_raw_values_and_decoded_onto_their_support(undefined_share):
    residues, stats = angle_table(undefined_share=undefined_share)
    codec = fit_codec(residues, seed=0, standardisation=stats)
    [pair] = codec.circles
    assert [codec.names[j] for j in pair.columns] == ["f_phi_sin", "f_phi_cos"]  # not adjacent, found by their values
    assert pair.origin == (undefined_share > 0)
    assert "circle pairs: f_phi_sin/f_phi_cos" in codec.describe()
    # Real rows survive the round trip; noisy model rows land on the circle, or on 0/0 only where the data has it.
    rows = train_positives(residues, codec.names)
    np.testing.assert_allclose(codec.decode(codec.encode(rows)), rows, rtol=1e-4, atol=1e-4)
    z = codec.encode(rows) + np.random.default_rng(1).normal(scale=0.5, size=(len(rows), codec.model_dim)).astype(np.float32)
    radius = np.hypot(*raw_pair(codec.decode(z), codec, stats).T)
    at_origin = radius < 1e-5
    assert np.allclose(radius[~at_origin], 1, atol=1e-5)
    assert at_origin.any() == pair.origin and at_origin.mean() < 0.2
    # Without the noise the pair would be off the circle: the decoder moved it.
    loose = fit_codec(residues, seed=0)
    assert not loose.circles
    assert np.abs(np.hypot(*raw_pair(loose.decode(z), codec, stats).T) - 1).max() > 0.05


def test_circle_pairs_survive_the_model_file_and_need_the_tables_own_statistics():
    residues, stats = angle_table()
    codec = fit_codec(residues, seed=0, standardisation=stats)
    buffer = io.BytesIO()
    torch.save({"codec": codec.state()}, buffer)
    buffer.seek(0)
    loaded = ColumnCodec.from_state(torch.load(buffer, weights_only=True)["codec"])
    assert loaded.circles == codec.circles
    z = np.random.default_rng(0).normal(size=(50, codec.model_dim)).astype(np.float32)
    np.testing.assert_array_equal(loaded.decode(z), codec.decode(z))
    with pytest.raises(ValueError, match="lack column f_rsa"):
        fit_codec(residues, seed=0, standardisation={k: v for k, v in stats.items() if k != "f_rsa"})
