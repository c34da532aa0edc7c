"""benchmarks/imbalance_study.py, what the own-images benchmark's study of imbalance rests on, on
synthetic features (no images)."""
import numpy as np
import pytest

import bootstrap  # pylint: disable=unused-import  # the Keras switch, before TensorFlow
from benchmarks import imbalance_study


def test_a_cut_keeps_its_share_of_one_class_and_all_of_the_others():
  labels = np.repeat([0, 1, 2], [80, 40, 16])
  kept = imbalance_study.cut(labels, 1, 1 / 8, seed=3)
  assert np.bincount(labels[kept]).tolist() == [80, 5, 16]
  assert len(set(kept)) == len(kept)
  assert not np.array_equal(kept, imbalance_study.cut(labels, 1, 1 / 8, seed=4))
  np.testing.assert_array_equal(kept, imbalance_study.cut(labels, 1, 1 / 8, seed=3))


def test_oversampling_repeats_every_class_up_to_the_largest():
  labels = np.repeat([0, 1, 2], [10, 3, 7])
  repeated = imbalance_study.oversampled(labels)
  assert np.bincount(labels[repeated]).tolist() == [10, 10, 10]
  # the small class's images are all used, each about as often
  assert np.bincount(repeated[labels[repeated] == 1]).max() == 4


def test_logit_adjustment_subtracts_the_log_of_each_class_share():
  logits = np.zeros((1, 3))
  adjusted = imbalance_study.adjusted(logits, np.array([0, 0, 0, 1]), 3)
  np.testing.assert_allclose(adjusted[0, :2], -np.log([0.75, 0.25]))
  assert adjusted[0, 2] > 20  # a class absent from training is not -inf: it is never the argmax


def test_calibration_on_held_out_logits_removes_a_bias_towards_one_class():
  """Logits that favour class 0 by 3 (as a head trained on a split where class 1 was cut): the
  offsets fitted on held-out logits with the same bias take it out, and carry to new logits."""
  rng = np.random.default_rng(0)
  def biased(n):
    labels = rng.integers(0, 2, n)
    logits = 3.0 * np.eye(2)[labels] + rng.normal(0, 1.0, (n, 2))
    return logits + np.array([3.0, 0.0]), labels
  (eval_logits, eval_labels), (logits, labels) = biased(400), biased(400)
  fixed = imbalance_study.calibrated(logits, eval_logits, eval_labels, 2)
  offsets = fixed - logits
  np.testing.assert_allclose(offsets, offsets[:1].repeat(len(offsets), 0))  # one per class
  assert abs((offsets[0, 0] - offsets[0, 1]) + 3.0) < 0.4  # the bias of 3, taken out
  before = imbalance_study.balanced_accuracy(logits.argmax(1), labels)
  after = imbalance_study.balanced_accuracy(fixed.argmax(1), labels)
  assert before < 0.8 and after > before + 0.05


def test_a_gain_is_paired_by_cut_with_its_standard_error():
  cuts = [{'none': 0.60, 'balanced': 0.63}, {'none': 0.70, 'balanced': 0.71},
          {'none': 0.65, 'balanced': 0.67}]
  gain, error = imbalance_study.mean_gain(cuts, 'balanced')
  assert gain == pytest.approx(0.02)
  assert error == pytest.approx(0.01 / np.sqrt(3))
  assert imbalance_study.mean_gain(cuts[:1], 'balanced') == pytest.approx((0.03, 0.0))


def test_the_default_against_the_uncut_head_reads_under_or_over():
  assert imbalance_study.under_or_over(0.005) == '0.5 points under'
  assert imbalance_study.under_or_over(-0.0003) == '0.0 points over'  # not '-0.0 points under'
  assert imbalance_study.under_or_over(-0.012) == '1.2 points over'


def test_balanced_accuracy_is_the_mean_recall_of_the_classes():
  labels = np.array([0, 0, 0, 1])
  assert imbalance_study.balanced_accuracy(np.array([0, 0, 0, 0]), labels) == 0.5
  assert imbalance_study.balanced_accuracy(np.array([0, 0, 1, 1]), labels) == (2 / 3 + 1) / 2


def overlapping(per_class: int, rng: np.random.Generator):
  """Three overlapping classes of 2-view features: a cut class is outvoted unless handled."""
  centres = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
  labels = np.repeat(np.arange(3), per_class)
  view = centres[labels] + rng.normal(0, 0.6, (len(labels), 4))
  features = np.stack([view, view + rng.normal(0, 0.05, view.shape)], axis=1).astype(np.float32)
  return features, labels


def test_the_study_shows_weights_winning_back_what_a_cut_costs():
  rng = np.random.default_rng(0)
  splits = {name: overlapping(n, rng) for name, n in (('train', 160), ('eval', 60), ('test', 80))}
  result = imbalance_study.study(splits, ['a', 'b', 'c'], share=1 / 8, seeds=[0], trials=2,
                                  epochs=60)
  assert len(result['cuts']) == 3 and len(result['ceiling']) == 1
  assert [cut['kept'] for cut in result['cuts']] == [20, 20, 20]
  mean = result['mean']
  assert mean['balanced'] > mean['none'] + 0.03
  for cut in result['cuts']:
    assert cut['recall']['balanced'] > cut['recall']['none']
    assert set(cut['recall']) == set(imbalance_study.MODES)
  assert mean['calibrated'] > mean['none']  # the eval split is whole: it shows the bias
  lines = '\n'.join(imbalance_study.markdown(result))
  assert lines.count('\n| a | 0 | 20 of 160 |') == 1 and '| mean |' in lines
