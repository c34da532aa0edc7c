"""What bounds the label-error ranking on a data set: read by data_quality_benchmark.py.

Planted label errors are found by the probe's out-of-fold probabilities (components/data_quality/
probe.py): a photo moved to another class can stand out only when the probe, which never saw its
label, recognises its real class. So the share of planted errors whose out-of-fold argmax is their
real class ("recognised") is what any ranking built on this probe can find, and the probe's
accuracy on the data set bounds it. Measured here, over several plantings (the same share of
training photos moved, in memory, by other seeds), next to other rankings of the same images:

* ``self_confidence``: the given label's probability, lowest first (the checks' default);
* ``normalized_margin``: that probability less the largest other one (Northcutt et al.'s
  alternative);
* ``knn``: the leave-one-out vote of the K_NEIGHBOURS nearest images (cosine, on the probe's
  whitened features), weighted by exp(similarity / KNN_TEMPERATURE);
* ``probe_and_knn``: the mean of the probe's and the k-NN's probabilities.
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from components.data_quality import checks, probe
from components.data_quality.image_set import unit

K_NEIGHBOURS, KNN_COMPONENTS, KNN_TEMPERATURE = 20, 64, 0.1
TOP_SHARE = 0.05
RANKINGS = ('self_confidence', 'normalized_margin', 'knn', 'probe_and_knn')


def replant(images: checks.ImageSet, true_label: Dict[int, int], candidates: Sequence[int],
            seed: int) -> Tuple[checks.ImageSet, Dict[int, int]]:
  """``images`` with the planted errors (``true_label``) put back and as many of ``candidates``
  (training photos) moved to a random other class by ``seed``; and the new errors' real classes."""
  labels = images.labels.copy()
  for i, real in true_label.items():
    labels[i] = real
  rng = np.random.default_rng(seed)
  classes = len(images.class_names)
  moved = {}
  for i in rng.permutation(np.asarray(candidates))[:len(true_label)]:
    moved[int(i)] = int(labels[i])
    labels[i] = rng.choice([c for c in range(classes) if c != labels[i]])
  return dataclasses.replace(images, labels=labels), moved


def knn_probabilities(images: checks.ImageSet) -> np.ndarray:
  """[N, C] leave-one-out k-NN class probabilities of every labelled image."""
  features = unit(probe.whitened_components(images.embeddings, images.spectrum,
                                            KNN_COMPONENTS)[:, 0])
  labels, classes = images.labels, len(images.class_names)
  probabilities = np.zeros((len(labels), classes))
  for start in range(0, len(labels), 512):
    similarity = features[start:start + 512] @ features.T
    similarity[np.arange(len(similarity)), np.arange(start, start + len(similarity))] = -np.inf
    similarity[:, labels < 0] = -np.inf
    nearest = np.argpartition(-similarity, K_NEIGHBOURS, axis=1)[:, :K_NEIGHBOURS]
    for row, neighbours in enumerate(nearest):
      np.add.at(probabilities[start + row], labels[neighbours],
                np.exp(similarity[row, neighbours] / KNN_TEMPERATURE))
  return probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-12)


def _top_recall(scores: np.ndarray, errors: Sequence[int]) -> float:
  """Share of ``errors`` among the TOP_SHARE lowest ``scores``."""
  top = set(np.argsort(scores, kind='stable')[:int(round(TOP_SHARE * len(scores)))].tolist())
  return len(top & set(errors)) / len(errors)


def one_planting(images: checks.ImageSet, true_label: Dict[int, int]) -> Dict[str, float]:
  """Top-5 % recall of every ranking, the probe's accuracy and the recognised share."""
  ranking = checks.label_issue_ranking(images)
  n = len(images.labels)
  probe_probabilities = np.zeros((n, len(images.class_names)))
  probe_probabilities[ranking.indices] = ranking.probabilities
  ranked = np.zeros(n, bool)
  ranked[ranking.indices] = True
  knn = knn_probabilities(images)
  given = np.where(images.labels >= 0, images.labels, 0)
  errors = [i for i in true_label if ranked[i]]
  positions = {i: k for k, i in enumerate(np.flatnonzero(ranked))}

  def recall(probabilities: np.ndarray, margin: bool = False) -> float:
    own = probabilities[np.arange(n), given]
    if margin:
      others = probabilities.copy()
      others[np.arange(n), given] = -np.inf
      own = own - others.max(axis=1)
    return _top_recall(own[ranked], [positions[i] for i in errors])

  recognised = [i for i in errors if probe_probabilities[i].argmax() == true_label[i]]
  return {'self_confidence': recall(probe_probabilities),
          'normalized_margin': recall(probe_probabilities, margin=True),
          'knn': recall(knn), 'probe_and_knn': recall((probe_probabilities + knn) / 2),
          'out_of_fold_accuracy': float(np.mean(
              probe_probabilities[ranked].argmax(axis=1) == images.labels[ranked])),
          'recognised': len(recognised) / len(errors)}


def study(images: checks.ImageSet, true_label: Dict[int, int], candidates: Sequence[int],
          seeds: Sequence[int] = (1, 2, 3)) -> Dict[str, object]:
  """``one_planting`` of the benchmark's planting and of one replanting per seed, and the mean."""
  plantings: List[Dict[str, float]] = [one_planting(images, true_label)]
  for seed in seeds:
    plantings.append(one_planting(*replant(images, true_label, candidates, seed)))
  keys = plantings[0].keys()
  return {'plantings': [{k: round(v, 4) for k, v in p.items()} for p in plantings],
          'mean': {k: round(float(np.mean([p[k] for p in plantings])), 4) for k in keys},
          'seeds': ['benchmark'] + list(seeds)}
