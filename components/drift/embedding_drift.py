"""Drift in what the photos show: a two-sample test on model embeddings, and prediction drift.

TFDV's comparisons of image properties (size, format, brightness...) cannot see a change of
content whose encoding is unchanged. Here the new images' embeddings (the model's pooled backbone
features, ``components/modules/embedding.py``) are compared with the training images' that the
model carries:

* **Embedding drift**: the maximum mean discrepancy (MMD, Gretton et al. 2012) with a Gaussian
  kernel, on the L2-normalised embeddings projected on the first ``PCA_COMPONENTS`` principal
  components of both samples together, with a permutation p-value: the share of random relabellings
  of the pooled sample whose MMD is at least the observed one. PCA, the kernel width (median
  distance) and the test statistic are symmetric in the two samples, so the test keeps its
  false-positive rate at ``alpha`` when both are samples of one distribution, whatever the data.
  With a thousand images it also finds shifts too small to matter (the tutorial's validation
  photos against its training photos, p ~ 0.01), so drift needs a size as well: a domain
  classifier (logistic regression on the same projection, 5-fold cross-validated) must tell new
  from baseline images with ROC AUC >= ``min_auc`` (0.5: not at all, 1: always). Both rates are
  measured in benchmarks/embedding_drift_benchmark.py. The dimensions that moved most are the
  embedding coordinates with the largest mean change in baseline standard deviations.
* **Prediction drift**: the share of each predicted class (L-infinity, as the label check) and the
  histogram of the model's confidence (Jensen-Shannon), against the model's predictions on its
  held-out eval images.
"""
import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

from components.drift.drift_comparison import Finding

PCA_COMPONENTS = 32
PERMUTATIONS = 500
MOVED_DIMENSIONS = 5
CONFIDENCE_BINS = 10
EMBEDDING_FEATURE = 'embedding'
PREDICTED_CLASS_FEATURE = 'predicted class'
CONFIDENCE_FEATURE = 'confidence'


@dataclasses.dataclass(frozen=True)
class EmbeddingDrift:
  """The test's outcome: drift when ``p_value`` < ``alpha`` and ``auc`` >= ``min_auc``."""
  mmd2: float
  p_value: float
  alpha: float
  auc: float
  min_auc: float
  baseline_count: int
  new_count: int
  # (embedding coordinate, mean change in baseline standard deviations), largest first.
  moved_dimensions: Tuple[Tuple[int, float], ...]

  @property
  def drifted(self) -> bool:
    return self.p_value < self.alpha and self.auc >= self.min_auc

  def finding(self) -> Finding:
    moved = ', '.join(f'#{d} {z:+.2f} sd' for d, z in self.moved_dimensions)
    return Finding(EMBEDDING_FEATURE, 'domain classifier ROC AUC', self.auc, self.min_auc,
                   self.drifted, f'MMD p-value {self.p_value:.4f} (drift needs < {self.alpha}), '
                   f'MMD^2 {self.mmd2:.4g}; {self.new_count} new vs {self.baseline_count} '
                   f'baseline images; moved most: {moved}')


def _normalised(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _projected(pooled: np.ndarray, components: int) -> np.ndarray:
  """``pooled`` on its first principal components (SVD of the centred data)."""
  centred = pooled - pooled.mean(axis=0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  return centred @ vt[:min(components, len(vt))].T


def domain_classifier_auc(projected: np.ndarray, is_new: np.ndarray, seed: int = 0) -> float:
  """Cross-validated ROC AUC of a logistic regression telling new rows from baseline rows."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
  from sklearn.model_selection import StratifiedKFold, cross_val_predict  # pylint: disable=g-import-not-at-top
  folds = int(min(5, is_new.sum(), (~is_new).sum()))
  scores = cross_val_predict(
      LogisticRegression(C=0.1, max_iter=1000, class_weight='balanced'),
      projected / (projected.std(axis=0) + 1e-12), is_new,
      cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method='decision_function')
  return float(roc_auc_score(is_new, scores))


def embedding_drift(baseline: np.ndarray, new: np.ndarray, alpha: float, min_auc: float,
                    permutations: int = PERMUTATIONS, components: int = PCA_COMPONENTS,
                    seed: int = 0) -> EmbeddingDrift:
  """MMD permutation test and domain classifier of two samples of embeddings ([N, D], [M, D])."""
  if len(baseline) < 2 or len(new) < 2:
    raise ValueError(f'the embedding test needs at least 2 images on each side, got '
                     f'{len(baseline)} baseline and {len(new)} new')
  pooled = _projected(np.concatenate([_normalised(baseline), _normalised(new)]), components)
  squared_norms = (pooled ** 2).sum(axis=1)
  distances = np.maximum(squared_norms[:, None] + squared_norms[None, :] - 2 * pooled @ pooled.T, 0)
  bandwidth = np.median(distances[np.triu_indices(len(pooled), k=1)]) or 1.0
  kernel = np.exp(-distances / bandwidth).astype(np.float32)
  n, total = len(baseline), len(pooled)
  # MMD^2 (V-statistic) = w' K w with w = 1/n on the baseline's rows and -1/m on the new ones; one
  # column of weights per relabelling, the observed labelling first.
  rng = np.random.default_rng(seed)
  labellings = np.stack([np.arange(total)] + [rng.permutation(total) for _ in range(permutations)],
                        axis=1)
  weights = np.where(labellings < n, 1.0 / n, -1.0 / (total - n)).astype(np.float32)
  statistics = np.einsum('ip,ip->p', weights, kernel @ weights)
  p_value = (1 + np.sum(statistics[1:] >= statistics[0])) / (1 + permutations)
  scale = np.asarray(baseline).std(axis=0) + 1e-6
  shift = (np.asarray(new).mean(axis=0) - np.asarray(baseline).mean(axis=0)) / scale
  top = np.argsort(-np.abs(shift))[:MOVED_DIMENSIONS]
  auc = domain_classifier_auc(pooled, np.arange(total) >= n, seed)
  return EmbeddingDrift(float(statistics[0]), float(p_value), alpha, auc, min_auc, len(baseline),
                        len(new), tuple((int(d), float(shift[d])) for d in top))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
  """Jensen-Shannon divergence (base 2: 0 equal, 1 disjoint) of two histograms."""
  p, q = p / max(p.sum(), 1e-12), q / max(q.sum(), 1e-12)
  m = (p + q) / 2

  def kl(a):
    mask = a > 0
    return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

  return (kl(p) + kl(q)) / 2


def confidence_histogram(probabilities: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(counts, edges) of the top probability on ``CONFIDENCE_BINS`` bins from 1/classes to 1."""
  return np.histogram(probabilities.max(axis=1),
                      bins=np.linspace(1 / probabilities.shape[1], 1, CONFIDENCE_BINS + 1))


def prediction_drift(baseline_probabilities: np.ndarray, new_probabilities: np.ndarray,
                     class_names: Sequence[str], class_linf: float,
                     confidence_js: float) -> List[Finding]:
  """The predicted classes' shares (L-infinity) and the confidence histogram (Jensen-Shannon)."""
  classes = len(class_names)
  baseline_shares, new_shares = (
      np.bincount(p.argmax(axis=1), minlength=classes) / len(p)
      for p in (baseline_probabilities, new_probabilities))
  moved = int(np.argmax(np.abs(new_shares - baseline_shares)))
  linf = float(np.abs(new_shares - baseline_shares).max())
  js = jensen_shannon(confidence_histogram(baseline_probabilities)[0].astype(float),
                      confidence_histogram(new_probabilities)[0].astype(float))
  return [
      Finding(PREDICTED_CLASS_FEATURE, 'L-infinity', linf, class_linf, linf > class_linf,
              f'{class_names[moved]}: {baseline_shares[moved]:.0%} -> {new_shares[moved]:.0%}'),
      Finding(CONFIDENCE_FEATURE, 'Jensen-Shannon', js, confidence_js, js > confidence_js,
              f'mean top probability {baseline_probabilities.max(axis=1).mean():.3f} -> '
              f'{new_probabilities.max(axis=1).mean():.3f}'),
  ]
