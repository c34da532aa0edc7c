"""The data-quality checks (components/data_quality) on synthetic embeddings: no TensorFlow, no
images. Clusters of points stand for classes of photos; view 1, the mirror image, is view 0 with
its dimensions reversed (a fixed transform that makes it unlike view 0)."""
import json
import os

import numpy as np
import pytest

from components.data_quality import checks

DIMS = 128
CLASS_NAMES = ('cats', 'dogs', 'birds')


def with_mirror(view0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """[N, 2, D]: each vector and its 'mirror image'."""
  return np.stack([view0, view0[:, ::-1] + 0.01 * rng.normal(size=view0.shape)], axis=1).astype(
      np.float32)


def image_set(embeddings, labels=None, splits=None, hashes=None) -> checks.ImageSet:
  n = len(embeddings)
  return checks.ImageSet(
      paths=[f'img{i}.jpg' for i in range(n)],
      splits=list(splits) if splits is not None else ['train'] * n,
      labels=np.asarray(labels if labels is not None else [0] * n),
      class_names=CLASS_NAMES,
      hashes=list(hashes) if hashes is not None else [f'hash{i}' for i in range(n)],
      embeddings=np.asarray(embeddings, np.float32))


def clusters(per_class: int = 30, seed: int = 0):
  """(view 0 [N, D], labels [N]): three well-separated classes of distinct 'photos'."""
  rng = np.random.default_rng(seed)
  centres = 3.0 * rng.normal(size=(len(CLASS_NAMES), DIMS))
  labels = np.repeat(np.arange(len(CLASS_NAMES)), per_class)
  return centres[labels] + rng.normal(size=(len(labels), DIMS)), labels


def pair_at(similarity: float, rng: np.random.Generator) -> np.ndarray:
  """Two unit vectors [2, D] at exactly ``similarity``, in a random plane."""
  basis, _ = np.linalg.qr(rng.normal(size=(DIMS, 2)))
  a, b = basis.T
  return np.stack([a, similarity * a + np.sqrt(1 - similarity ** 2) * b])


def test_exact_duplicates_are_found_within_and_across_splits():
  rng = np.random.default_rng(0)
  embeddings = with_mirror(rng.normal(size=(6, DIMS)), rng)
  images = image_set(embeddings, splits=['train', 'train', 'eval', 'test', 'train', 'eval'],
                     hashes=['a', 'b', 'c', 'a', 'b', 'd'], labels=[0, 1, 0, 2, 1, 0])
  assert checks.exact_duplicates(images) == [(0, 3), (1, 4)]
  report = checks.analyse(images)
  exact = [(p['paths'], p['splits']) for p in report['near_duplicates'] if p['exact']]
  assert sorted(exact) == [(['img0.jpg', 'img3.jpg'], ['train', 'test']),
                           (['img1.jpg', 'img4.jpg'], ['train', 'train'])]
  assert report['counts']['exact_duplicate_pairs'] == 2
  assert report['counts']['cross_split_pairs'] == 1  # train/test, not train/train
  # The same bytes as 'cats' and as 'birds': one of the two labels is wrong.
  assert report['counts']['conflicting_label_pairs'] == 1
  assert [p['labels'] for p in report['near_duplicates'] if p['paths'][0] == 'img0.jpg'] == [
      ['cats', 'birds']]
  json.dumps(report)  # JSON-ready


def test_near_duplicate_just_above_the_threshold_is_found_and_just_below_is_not():
  rng = np.random.default_rng(1)
  threshold = checks.NEAR_DUPLICATE_SIMILARITY
  view0 = np.concatenate([pair_at(threshold + 0.005, rng), pair_at(threshold - 0.005, rng)])
  images = image_set(with_mirror(view0, rng))
  pairs = checks.near_duplicates(images, components=None)  # plain cosine: the geometry as built
  assert [(p.first, p.second) for p in pairs] == [(0, 1)]
  assert pairs[0].similarity == pytest.approx(threshold + 0.005, abs=1e-4)
  assert not pairs[0].exact


def test_mirrored_copy_is_found_through_view_1():
  rng = np.random.default_rng(2)
  view0, labels = clusters()
  embeddings = with_mirror(view0, rng)
  source = 7
  mirrored = np.stack([embeddings[source, 1], embeddings[source, 0]])  # its views swapped
  mirrored += 0.05 * rng.normal(size=mirrored.shape)
  images = image_set(np.concatenate([embeddings, mirrored[None]]),
                     labels=np.append(labels, labels[source]))
  copy = len(view0)
  # As is, the copy is unlike its source: only view 1 can match it.
  units = checks.descriptors(images)
  assert units[source, 0] @ units[copy, 0] < 0.5
  pairs = checks.near_duplicates(images)  # the default descriptors and threshold
  assert [(p.first, p.second) for p in pairs] == [(source, copy)]
  assert pairs[0].similarity > 0.9


def test_cross_split_pairs_count_as_leaks():
  rng = np.random.default_rng(3)
  view0 = np.concatenate([pair_at(0.95, rng) for _ in range(4)])
  splits = ['train', 'eval', 'test', 'train', 'eval', 'test', 'train', 'train']
  images = image_set(with_mirror(view0, rng), splits=splits)
  report = checks.analyse(images, components=None)
  assert [p['splits'] for p in report['near_duplicates']] != []
  assert sorted(tuple(p['splits']) for p in report['near_duplicates']) == [
      ('eval', 'test'), ('test', 'train'), ('train', 'eval'), ('train', 'train')]
  # train/eval and train/test leak; eval/test and train/train do not.
  assert report['counts']['cross_split_pairs'] == 2
  assert report['counts']['near_duplicate_pairs'] == 4


def test_flipped_label_is_ranked_first_with_the_right_suggestion():
  rng = np.random.default_rng(4)
  view0, labels = clusters()
  given = labels.copy()
  flipped = 45  # a 'dogs' photo labelled 'birds'
  given[flipped] = 2
  splits = ['train'] * len(given)
  images = image_set(with_mirror(view0, rng), labels=given, splits=splits)
  ranking = checks.label_issue_ranking(images)
  assert ranking.indices[0] == flipped
  assert ranking.suggested[0] == labels[flipped] == 1
  assert ranking.flagged[0] and ranking.flagged.sum() == 1
  assert sorted(ranking.indices.tolist()) == list(range(len(given)))  # every image ranked
  issues = checks.analyse(images)['label_issues']
  assert [(i['path'], i['given_label'], i['suggested_label']) for i in issues] == [
      (f'img{flipped}.jpg', 'birds', 'dogs')]
  assert checks.label_issues(images) == [flipped]


def test_the_report_says_how_often_the_label_probe_recognises_an_image():
  """Six of 90 labels moved: the probe (never seeing an image's own label) calls each of them
  by its real class, so it agrees with 84 of the 90 given labels; the run's line says so."""
  from run_results import run_summary  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  view0, labels = clusters()
  given = labels.copy()
  moved = [0, 31, 62, 5, 36, 67]
  given[moved] = (given[moved] + 1) % 3
  report = checks.analyse(image_set(with_mirror(view0, rng), labels=given))
  assert report['label_probe'] == {'out_of_fold_accuracy': round(84 / 90, 4), 'images': 90}
  assert '6 likely label errors (the probe judging them recognises 93% of the labelled images)' \
      in run_summary.data_quality_line({**report, 'path': 'data_quality.json', 'leak': {
          'images': 0, 'held_out_images': 0, 'share': 0.0, 'max_leak_fraction': 0.02}})


def test_labels_of_every_split_are_checked_unless_told_otherwise():
  rng = np.random.default_rng(5)
  view0, labels = clusters()
  given = labels.copy()
  given[9], given[70] = 1, 0  # a 'cats' photo in train, a 'birds' photo in test
  splits = ['test' if i % 3 == 1 else 'train' for i in range(len(given))]
  images = image_set(with_mirror(view0, rng), labels=given, splits=splits)
  assert sorted(checks.label_issues(images)) == [9, 70]
  assert checks.label_issues(images, splits=['train']) == [9]
  report = checks.analyse(images)
  assert sorted((i['path'], i['split']) for i in report['label_issues']) == [
      ('img70.jpg', 'test'), ('img9.jpg', 'train')]


def test_outlier_far_from_every_cluster_is_flagged():
  rng = np.random.default_rng(6)
  view0, labels = clusters()
  stranger = 3.0 * rng.normal(size=(1, DIMS))  # a fourth kind of photo, alone
  images = image_set(with_mirror(np.concatenate([view0, stranger]), rng),
                     labels=np.append(labels, 0))
  flagged, scores, threshold = checks.outliers(images)
  assert flagged.tolist() == [len(view0)]
  assert scores[len(view0)] > threshold > scores[:len(view0)].max() - 1e-6
  assert checks.analyse(images)['outliers'][0]['path'] == f'img{len(view0)}.jpg'


def test_a_pair_of_strangers_does_not_hide_the_other():
  """Strangers come in batches: each other's nearest neighbour, far from the rest. The k-th
  neighbour (k = 20) sees through a pair that the nearest would not."""
  rng = np.random.default_rng(8)
  view0, labels = clusters()
  stranger = 3.0 * rng.normal(size=(1, DIMS))
  pair = stranger + 0.1 * rng.normal(size=(2, DIMS))
  images = image_set(with_mirror(np.concatenate([view0, pair]), rng),
                     labels=np.append(labels, [0, 1]))
  flagged, _, _ = checks.outliers(images, quantile=0.97)  # ~3 of 92
  assert sorted(flagged[:2].tolist()) == [len(view0), len(view0) + 1]


def test_chunked_scan_gives_what_one_block_gives(monkeypatch):
  rng = np.random.default_rng(7)
  view0, labels = clusters(per_class=20)
  view0[5] = view0[40] + 0.05 * rng.normal(size=DIMS)
  images = image_set(with_mirror(view0, rng), labels=labels)
  whole = checks.near_duplicates(images), checks.neighbour_distances(images)
  monkeypatch.setattr(checks, 'CHUNK_ELEMENTS', 7 * len(view0))  # blocks of 7 rows
  chunked = checks.near_duplicates(images), checks.neighbour_distances(images)
  assert [(p.first, p.second) for p in chunked[0]] == [(p.first, p.second) for p in whole[0]] == [
      (5, 40)]
  np.testing.assert_allclose(chunked[1], whole[1], atol=1e-6)


def test_new_images_against_the_training_set():
  """validate.py's check (components/data_quality/new_data.py): a new image that copies a
  training image, and a new image filed under the wrong class, among new images like the training
  ones."""
  from components.data_quality import new_data  # pylint: disable=g-import-not-at-top
  view0, labels = clusters(per_class=40, seed=1)
  rng = np.random.default_rng(1)
  known = np.arange(len(labels)) % 40 < 30  # 30 training images of each class, 10 new ones
  training = image_set(with_mirror(view0[known], rng), labels=labels[known])
  fresh, fresh_labels = view0[~known].copy(), labels[~known].copy()
  fresh[0] = view0[known][5]  # a copy of training image 5
  fresh_labels[1] = (fresh_labels[1] + 1) % len(CLASS_NAMES)  # filed under another class
  new = checks.ImageSet(paths=[f'new{i}.jpg' for i in range(len(fresh))],
                        splits=[new_data.NEW] * len(fresh), labels=fresh_labels,
                        class_names=CLASS_NAMES, hashes=[f'new{i}' for i in range(len(fresh))],
                        embeddings=with_mirror(fresh, rng))
  found = new_data.check(training, new)
  assert [pair['paths'] for pair in found.duplicates_of_training] == [
      ['training: img5.jpg', 'new: new0.jpg']]
  assert found.duplicates_within_new == []
  assert [(i['path'], i['suggested_label']) for i in found.label_issues] == [
      ('new: new1.jpg', CLASS_NAMES[labels[~known][1]])]
  assert found.lines()[0].startswith('data quality: 1 of 30 new images duplicate training images')


@pytest.mark.parametrize('data_set', ['cats_and_dogs_filtered', 'flowers'])
def test_the_near_duplicate_threshold_stands_where_the_benchmark_measured_it(data_set):
  """The threshold finds >= 95 % of the planted copies (below their 5 % quantile of similarity)
  and pairs <= 1 % of distinct photos (above the 99 % quantile of a photo's nearest distinct
  neighbour), on both real data sets of benchmarks/data_quality_benchmark.py: a threshold moved
  without measuring again fails here."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks',
                      'results', 'data_quality_benchmark.json')
  with open(path) as f:
    measured = json.load(f)['datasets'][data_set]['near_duplicates']['distributions']['descriptors']
  assert (measured['distinct_nearest_neighbour']['0.99'] < checks.NEAR_DUPLICATE_SIMILARITY
          <= measured['planted_copies_all']['0.05'])
