"""Data quality that statistics cannot see, from what the pipeline computes once per image.

Every image brings the sha256 of its encoded bytes and the pooled features of the frozen
pretrained base in V augmented views ([N, V, D]; view 0 the image as is, view 1 its mirror image).
From those alone, with no second pass of the network and no TensorFlow:

* exact duplicates: equal content hashes, within and across splits;
* near duplicates (a re-encoded, resized, slightly cropped or mirrored copy): the cosine similarity
  of copy-detection descriptors (``descriptors``), the larger of view 0 against view 0 and view 0
  against view 1 of the other image, so that a mirrored copy matches;
* label errors: confident learning on out-of-fold probabilities of a linear probe (probe.py);
* outliers: the cosine distance to the k-th nearest other image, above a high quantile.

Similarities are computed a block of rows against all images at a time (``CHUNK_ELEMENTS`` floats),
so no N x N matrix is ever held: at N = 50 000, blocks of 167 rows x 50 000 float32.
"""
import collections
import dataclasses
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from components.data_quality import probe
from components.data_quality.image_set import SPECTRUM_COMPONENTS, ImageSet, content_hash, unit

__all__ = ['ImageSet', 'content_hash', 'Pair', 'descriptors', 'exact_duplicates',
           'near_duplicates', 'neighbour_distances', 'outliers', 'label_issue_ranking',
           'label_issues', 'analyse']

TRAIN = 'train'
# Near duplicates: cosine similarity of ``descriptors``. In benchmarks/results/
# data_quality_benchmark.md (MobileNetV2 alpha 1.0, 160 px; 40 planted copies of each kind: JPEG
# q60, 0.75x, 5-10 % crop, mirror) the copies score >= 0.699 / 0.625 on cats_and_dogs_filtered /
# flowers (crops lowest, mirrors >= 0.97), distinct photos' nearest neighbours 0.55 / 0.62 at their
# 99th percentile. At 0.70: 99.4 % / 98.1 % of the copies found, 1 false pair each (two white
# poodles; two tulip fields) of 161 / 179 reported, 0.6 % (every other unplanted pair the same
# photo or scene twice); at 0.65, 100 % / 99.4 % found but 3 / 10 false pairs (1.8 % / 5.0 %); at
# 0.75, flowers' crops drop to 75 % found.
NEAR_DUPLICATE_SIMILARITY = 0.70
# Principal directions shrunk to the variance of the k-th: what all photos of a kind share (tulip
# fields, pet fur) no longer makes distinct photos alike. No raw cosine threshold serves both data
# sets: cats_and_dogs_filtered needs <= 0.88 to find 97.5 % of its copies (crops >= 0.856),
# flowers >= 0.92 to keep false pairs few (at 0.90: 85 false of 265 reported). A full whitening
# separates them too but its similarities fall with N (1000 images: the copies' minimum 0.42 ->
# 0.21); the top 64 are estimated well from a few hundred images, and the copies' minimum stays
# 0.60-0.70 from 600 to 4 500 images.
DESCRIPTOR_COMPONENTS = 64
# Outliers: cosine distance of the raw embeddings to the OUTLIER_NEIGHBOUR-th nearest other image
# (deep nearest neighbours, as components/modules/embedding.py), flagged above its OUTLIER_QUANTILE
# (1 % of the images: a list to look at, not a verdict). Strangers come in batches that are each
# other's neighbours: 10 flower photos put in cats_and_dogs_filtered rank in the top 1 % for 4 of
# them at k = 10, 7 at k = 20 (10 of 10 cats/dogs photos in flowers at any k from 5 to 50).
OUTLIER_NEIGHBOUR = 20
OUTLIER_QUANTILE = 0.99
CHUNK_ELEMENTS = 1 << 23  # similarities held at once (32 MiB of float32)
assert SPECTRUM_COMPONENTS > DESCRIPTOR_COMPONENTS and SPECTRUM_COMPONENTS >= probe.PROBE_COMPONENTS


@dataclasses.dataclass(frozen=True)
class Pair:
  """Two images (first < second) and the similarity of their descriptors."""
  first: int
  second: int
  similarity: float
  exact: bool


def descriptors(images: ImageSet,
                components: Optional[int] = DESCRIPTOR_COMPONENTS) -> np.ndarray:
  """Unit vectors [N, V, D] compared for near duplicates: the embeddings centred, their top
  ``components`` principal directions (``ImageSet.spectrum``) shrunk to the variance of the
  ``components``-th, the others as they are; ``components`` None: the raw embeddings normalised."""
  if components is None:
    return unit(images.embeddings)
  mean, variances, directions = images.spectrum
  components = min(components, len(variances) - 1)
  top, floor = directions[:, :components], max(variances[components], 1e-12)
  shrink = (np.sqrt(floor / np.maximum(variances[:components], floor)) - 1).astype(np.float32)
  centred = images.embeddings.reshape(-1, len(mean)) - mean
  flattened = centred + ((centred @ top) * shrink) @ top.T  # D x k products, not D x D
  return unit(flattened.reshape(images.embeddings.shape))


def similarity_blocks(units: np.ndarray) -> Iterator[Tuple[int, np.ndarray]]:
  """(first row, similarities [rows, N]) for blocks of rows: the cosine of each row's view 0 with
  every image's view 0 and, when there is one, view 1 (the larger); -inf against itself."""
  n = len(units)
  step = max(1, CHUNK_ELEMENTS // max(n, 1))
  for start in range(0, n, step):
    rows = units[start:start + step, 0]
    block = rows @ units[:, 0].T
    if units.shape[1] > 1:
      np.maximum(block, rows @ units[:, 1].T, out=block)
    block[np.arange(len(rows)), np.arange(start, start + len(rows))] = -np.inf
    yield start, block


def exact_duplicates(images: ImageSet) -> List[Tuple[int, int]]:
  """Pairs (i < j) of byte-identical files, within and across splits."""
  groups = collections.defaultdict(list)
  for i, digest in enumerate(images.hashes):
    groups[digest].append(i)
  return [(a, b) for group in groups.values() for k, a in enumerate(group) for b in group[k + 1:]]


def near_duplicates(images: ImageSet, threshold: float = NEAR_DUPLICATE_SIMILARITY,
                    components: Optional[int] = DESCRIPTOR_COMPONENTS) -> List[Pair]:
  """Pairs whose descriptors' similarity is >= ``threshold``, and every exact duplicate, most
  similar first. Symmetric: a pair's similarity is the larger of its two directions (a0.b0, a0.b1
  and b0.a1), each block giving one of them."""
  units = descriptors(images, components)
  best: Dict[Tuple[int, int], float] = {}
  for start, block in similarity_blocks(units):
    rows, columns = np.nonzero(block >= threshold)
    for i, j, s in zip(rows + start, columns, block[rows, columns]):
      key = (min(i, j), max(i, j))
      best[key] = max(best.get(key, -1.0), float(s))
  for a, b in exact_duplicates(images):
    best.setdefault((a, b), float(units[a, 0] @ units[b, 0]))
  pairs = [Pair(int(a), int(b), s, images.hashes[a] == images.hashes[b])
           for (a, b), s in best.items()]
  return sorted(pairs, key=lambda p: (-p.similarity, p.first, p.second))


def is_leak(images: ImageSet, pair: Pair) -> bool:
  """One side in the training split and the other in eval/test: the model is evaluated on what it
  trained on."""
  return (images.splits[pair.first] == TRAIN) != (images.splits[pair.second] == TRAIN)


def neighbour_distances(images: ImageSet, k: int = OUTLIER_NEIGHBOUR) -> np.ndarray:
  """Cosine distance [N] of each image to its k-th nearest other image, views 0 only: one product
  per block instead of two (whether a neighbour is mirrored hardly moves its 20th neighbour)."""
  n = len(images.paths)
  k = min(k, n - 1)
  if k < 1:
    return np.zeros(n, np.float32)
  scores = np.empty(n, np.float32)
  for start, block in similarity_blocks(unit(images.embeddings[:, :1])):
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1]
    scores[start:start + len(block)] = 1.0 - kth
  return scores


def outliers(images: ImageSet, k: int = OUTLIER_NEIGHBOUR,
             quantile: float = OUTLIER_QUANTILE) -> Tuple[np.ndarray, np.ndarray, float]:
  """(indices flagged, farthest first; every image's score; the score's threshold): the images
  whose ``neighbour_distances`` exceed their ``quantile`` over the whole data set."""
  scores = neighbour_distances(images, k)
  threshold = float(np.quantile(scores, quantile)) if len(scores) else 0.0
  flagged = np.nonzero(scores > threshold)[0]
  return flagged[np.argsort(-scores[flagged], kind='stable')], scores, threshold


def label_issue_ranking(images: ImageSet, folds: int = probe.FOLDS, seed: int = 0,
                        splits: Optional[Sequence[str]] = None) -> probe.LabelRanking:
  """Every labelled image of ``splits`` (None: all) ranked by ``probe.rank_labels``."""
  features = probe.whitened_components(images.embeddings, images.spectrum)
  return probe.rank_labels(features, images.labels, len(images.class_names),
                           [s in splits for s in images.splits] if splits else None, folds, seed)


def label_issues(images: ImageSet, folds: int = probe.FOLDS, seed: int = 0,
                 splits: Optional[Sequence[str]] = None) -> List[int]:
  """Indices of the images whose label confident learning flags, most suspicious first."""
  ranking = label_issue_ranking(images, folds, seed, splits)
  return [int(i) for i in ranking.indices[ranking.flagged]]


def analyse(images: ImageSet, threshold: float = NEAR_DUPLICATE_SIMILARITY,
            components: Optional[int] = DESCRIPTOR_COMPONENTS, folds: int = probe.FOLDS,
            seed: int = 0, label_splits: Optional[Sequence[str]] = None,
            k: int = OUTLIER_NEIGHBOUR, quantile: float = OUTLIER_QUANTILE) -> dict:
  """The JSON-ready report of every check. Labels are checked on every labelled split by default:
  a wrong label in eval or test misleads the model's evaluation as one in train misleads training.
  A near-duplicate pair whose two labels differ (``conflicting_label_pairs``) holds a wrong label
  for sure: the same photo cannot be of two classes."""
  pairs = near_duplicates(images, threshold, components)
  ranking = label_issue_ranking(images, folds, seed, label_splits)
  flagged_outliers, scores, outlier_threshold = outliers(images, k, quantile)
  names = list(images.class_names)
  where = lambda i: {'path': images.paths[i], 'split': images.splits[i]}
  label_name = lambda i: names[images.labels[i]] if images.labels[i] >= 0 else None
  conflicts = [p for p in pairs if images.labels[p.first] >= 0 and images.labels[p.second] >= 0
               and images.labels[p.first] != images.labels[p.second]]
  issues = [{**where(int(i)), 'given_label': names[images.labels[i]],
             'suggested_label': names[suggested], 'score': round(float(score), 4)}
            for i, suggested, score, flagged in zip(
                ranking.indices, ranking.suggested, ranking.scores, ranking.flagged) if flagged]
  return {
      'near_duplicates': [
          {'paths': [images.paths[p.first], images.paths[p.second]],
           'splits': [images.splits[p.first], images.splits[p.second]],
           'labels': [label_name(p.first), label_name(p.second)],
           'similarity': round(p.similarity, 4), 'exact': p.exact} for p in pairs],
      'label_issues': issues,
      'outliers': [{**where(int(i)), 'score': round(float(scores[i]), 4)}
                   for i in flagged_outliers],
      # What the label list is worth: planted errors reach its top 5 % about as often as the probe
      # recognises an image's class (benchmarks/results/data_quality_benchmark.md: 97 % at
      # accuracy 0.97 on cats_and_dogs_filtered, 67 % at 0.70 on flowers).
      'label_probe': {'out_of_fold_accuracy': round(float(np.mean(
          ranking.probabilities.argmax(axis=1) == images.labels[ranking.indices]))
                                                  if len(ranking.indices) else 1.0, 4),
                      'images': int(len(ranking.indices))},
      'counts': {'exact_duplicate_pairs': sum(p.exact for p in pairs),
                 'near_duplicate_pairs': len(pairs),
                 'cross_split_pairs': sum(is_leak(images, p) for p in pairs),
                 'conflicting_label_pairs': len(conflicts),
                 'label_issues': len(issues), 'outliers': len(flagged_outliers),
                 'images': len(images.paths)},
      'thresholds': {'near_duplicate_similarity': threshold, 'descriptor_components': components,
                     'label_folds': folds, 'label_splits': list(label_splits or ['all']),
                     'label_class_thresholds': {names[c]: round(float(t), 4)
                                                for c, t in enumerate(ranking.class_thresholds)},
                     'outlier_neighbour': k, 'outlier_quantile': quantile,
                     'outlier_distance': round(outlier_threshold, 4)},
  }
