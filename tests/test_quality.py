import numpy as np
import pandas as pd
import pytest
import torch

from siteaug.generative.quality import RealismModel, nearest_neighbours, passed_filter, quality_scores, select_candidates, top_per_protein


@pytest.fixture
def positives():
    return np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_neighbours_matches_brute_force(positives, exclude_self):
    queries = positives if exclude_self else np.random.default_rng(1).normal(size=(23, 4)).astype(np.float32)
    dist, index = nearest_neighbours(torch.from_numpy(queries), torch.from_numpy(positives), k=3, chunk=7,
                                     exclude_self=exclude_self)
    brute = np.linalg.norm(queries[:, None] - positives[None], axis=2)
    if exclude_self:
        np.fill_diagonal(brute, np.inf)
    expected = np.argsort(brute, axis=1)[:, :3]
    np.testing.assert_array_equal(index.numpy(), expected)
    np.testing.assert_allclose(dist.numpy(), np.take_along_axis(brute, expected, axis=1), rtol=1e-4, atol=1e-5)


def test_fit_needs_more_than_k(positives):
    with pytest.raises(ValueError):
        RealismModel.fit(positives[:5], k=5)


def test_realism_of_a_real_positive_and_a_far_point(positives):
    model = RealismModel.fit(positives, k=5)
    brute = np.sort(np.linalg.norm(positives[:, None] - positives[None], axis=2), axis=1)[:, 5]
    np.testing.assert_allclose(model.radii.numpy(), brute, rtol=1e-4)
    realism, near_copy = model.score(np.vstack([positives[:3], np.full((1, 4), 50.0)]), near_copy_fraction=0.1)
    np.testing.assert_array_equal(realism[:3], 1.0)
    assert near_copy.tolist() == [True, True, True, False]
    assert realism[3] < 0.1


def test_near_copy_fraction(positives):
    model = RealismModel.fit(positives, k=5)
    radius = float(model.radii[0])
    direction = np.eye(4, dtype=np.float32)[0]
    close = positives[0] + 0.01 * radius * direction  # nearer than 10 % of the radius
    realism, near_copy = model.score(close[None], near_copy_fraction=0.1)
    assert realism[0] == 1.0 and near_copy[0]
    assert not model.score(close[None], near_copy_fraction=0.001)[1][0]


def test_realism_is_one_inside_any_positive_ball():
    rng = np.random.default_rng(0)
    cluster = rng.normal(scale=0.01, size=(6, 2))
    outlier = np.array([[10.0, 0.0]])  # its 5th nearest other positive is ~10 away: a ball of radius ~10
    model = RealismModel.fit(np.vstack([cluster, outlier]).astype(np.float32), k=5)
    candidate = np.array([[2.0, 0.0]], np.float32)  # 8 from the outlier: inside its ball
    realism, _ = model.score(candidate, near_copy_fraction=0.1)
    assert realism[0] == 1.0


def test_quality_scores_zero_near_copies():
    scores = quality_scores(np.array([0.8, 0.9, 0.5]), np.array([1.0, 1.0, 0.4]), np.array([False, True, False]))
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, [0.8, 0.0, 0.2])


def test_select_candidates():
    scored = pd.DataFrame({
        "protein_id": ["p0"] * 5 + ["p1"] * 2 + ["p2"],
        "candidate_id": [0, 1, 2, 3, 4, 0, 1, 0],
        "quality_score": [0.9, 0.2, 0.7, 0.8, 0.8, 0.6, 0.95, 0.99],
    })
    assert passed_filter(scored["quality_score"].to_numpy(), 0.5).tolist() == [True, False, True, True, True, True, True, True]
    kept = select_candidates(scored, pd.Series({"p0": 2, "p1": 5, "p2": 0}), threshold=0.5)
    assert list(zip(kept["protein_id"], kept["candidate_id"])) == [("p0", 0), ("p0", 3), ("p1", 1), ("p1", 0)]
    assert (kept["quality_score"] >= 0.5).all()
    # top_per_protein (filter_shard, on the rows its `passed` column marks) ranks what it is given, whatever the score.
    ranked = top_per_protein(scored[scored["protein_id"] == "p0"], pd.Series({"p0": 3}))
    assert list(ranked["candidate_id"]) == [0, 3, 4]
    no_quota = select_candidates(scored, pd.Series({"p1": 1}), threshold=0.0)
    assert list(zip(no_quota["protein_id"], no_quota["candidate_id"])) == [("p1", 1)]
