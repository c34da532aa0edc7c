"""The embedding two-sample test and prediction drift (components/drift/embedding_drift.py), on samples
whose answer is known."""
import numpy as np
import pytest

from components.drift import embedding_drift


def _cloud(rng, count, shift=0.0, dims=24):
  """Embeddings like a backbone's: positive, around a common direction; ``shift`` moves dim 3."""
  x = np.abs(rng.normal(1.0, 0.3, (count, dims)))
  x[:, 3] += shift
  return x


def test_same_distribution_is_flagged_at_most_at_the_stated_rate():
  rng = np.random.default_rng(0)
  p_values = [embedding_drift.embedding_drift(_cloud(rng, 120), _cloud(rng, 80), alpha=0.05,
                                              min_auc=0.6, permutations=200, seed=i).p_value
              for i in range(30)]
  # A valid permutation test: p-values spread over (0, 1], about 5 % of them below 0.05.
  assert np.mean(np.array(p_values) < 0.05) <= 0.15, p_values
  assert 0.3 < np.median(p_values) < 0.7, p_values


def test_a_moved_dimension_is_drift_and_is_named():
  rng = np.random.default_rng(1)
  result = embedding_drift.embedding_drift(_cloud(rng, 200), _cloud(rng, 100, shift=0.6),
                                           alpha=0.01, min_auc=0.6)
  assert result.drifted
  assert result.p_value < 0.01 and result.auc > 0.8
  assert result.moved_dimensions[0][0] == 3 and result.moved_dimensions[0][1] > 1.5
  finding = result.finding()
  assert finding.flagged and finding.score == result.auc and '#3 +' in finding.detail


def test_a_significant_but_tiny_shift_is_not_drift():
  rng = np.random.default_rng(2)
  result = embedding_drift.embedding_drift(_cloud(rng, 3000), _cloud(rng, 3000, shift=0.04),
                                           alpha=0.01, min_auc=0.6, permutations=100)
  assert result.p_value < 0.01  # the MMD test sees it ...
  assert result.auc < 0.6 and not result.drifted  # ... but it is too small to matter


def test_too_few_images_is_a_clear_error():
  with pytest.raises(ValueError, match='at least 2 images'):
    embedding_drift.embedding_drift(np.ones((5, 3)), np.ones((1, 3)), 0.01, 0.6)


def test_jensen_shannon():
  assert embedding_drift.jensen_shannon(np.array([1., 2, 3]), np.array([2., 4, 6])) == 0
  assert embedding_drift.jensen_shannon(np.array([1., 0]), np.array([0., 5])) == pytest.approx(1)


def test_prediction_drift_of_class_shares_and_confidence():
  baseline = np.array([[0.95, 0.05]] * 5 + [[0.1, 0.9]] * 5)
  confident_cats = np.array([[0.96, 0.04]] * 8 + [[0.08, 0.92]] * 2)
  class_row, confidence_row = embedding_drift.prediction_drift(
      baseline, confident_cats, ['cats', 'dogs'], class_linf=0.1, confidence_js=0.1)
  assert class_row.score == pytest.approx(0.3) and class_row.flagged
  assert class_row.detail == 'cats: 50% -> 80%'
  assert confidence_row.score < 0.1 and not confidence_row.flagged  # the same two bins
  unsure = np.array([[0.55, 0.45]] * 5 + [[0.45, 0.55]] * 5)
  class_row, confidence_row = embedding_drift.prediction_drift(
      baseline, unsure, ['cats', 'dogs'], class_linf=0.1, confidence_js=0.1)
  assert not class_row.flagged and confidence_row.flagged
  assert confidence_row.score == pytest.approx(1.0)  # disjoint histograms
