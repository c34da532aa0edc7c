"""benchmarks/imbalance_study.py, what the own-images benchmark's study of imbalance rests on, on
synthetic features (no images)."""
import numpy as np

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
  lines = '\n'.join(imbalance_study.markdown(result))
  assert lines.count('\n| a | 0 | 20 of 160 |') == 1 and '| mean |' in lines
