"""benchmarks/label_error_study.py, what the data-quality benchmark's label-error table rests on,
on synthetic clusters (no TensorFlow, no images)."""
import numpy as np

from benchmarks import label_error_study
from tests.test_data_quality_checks import clusters, image_set, with_mirror


def planted(per_class: int = 60, errors: int = 6):
  """Three separated classes with ``errors`` images moved to the next class."""
  rng = np.random.default_rng(1)
  view0, labels = clusters(per_class)
  given = labels.copy()
  moved = {int(i): int(labels[i]) for i in rng.permutation(len(labels))[:errors]}
  for i in moved:
    given[i] = (labels[i] + 1) % 3
  return image_set(with_mirror(view0, rng), labels=given), moved


def test_replant_restores_the_planted_errors_and_moves_as_many_others():
  images, moved = planted()
  replanted, new = label_error_study.replant(images, moved, range(len(images.labels)), seed=5)
  assert len(new) == len(moved)
  differs = np.flatnonzero(replanted.labels != images.labels)
  # the old errors put back (unless moved again) and the new ones moved, nothing else
  assert set(differs) <= set(moved) | set(new)
  assert all(replanted.labels[i] != real for i, real in new.items())
  assert all(replanted.labels[i] == real for i, real in moved.items() if i not in new)


def test_errors_the_probe_recognises_rank_at_the_top():
  """Well-separated classes: every moved image is recognised and in the top 5 % of the probe's
  ranking (6 errors in 180 images: the top 9)."""
  images, moved = planted()
  result = label_error_study.one_planting(images, moved)
  assert result['recognised'] == 1.0
  assert result['self_confidence'] == 1.0
  assert set(result) == {*label_error_study.RANKINGS, 'out_of_fold_accuracy', 'recognised'}
  assert result['out_of_fold_accuracy'] > 0.95
