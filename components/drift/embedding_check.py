"""New images against what a model carries: embedding drift, prediction drift and the picture.

Shared by ``validate.py`` and the pipeline's EmbeddingDriftGate: the images are embedded by the
model's ``serving_image_embedding`` signature (the Transform graph, then the backbone), then
compared with the model's baseline (components/drift/embedding_drift.py).
"""
import dataclasses
import io
from typing import List, Sequence

import matplotlib

matplotlib.use('Agg')  # no display: PNGs only
# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import pyplot as plt
import numpy as np

from components.drift import embedding_drift
from components.drift.drift_comparison import Finding
from components.drift.drift_thresholds import DriftThresholds
from components.modules.embedding import LoadedEmbeddingModel

# New images embedded per check: enough for the tests' power, a bounded cost (~1 backbone pass each).
MAX_NEW_IMAGES = 1000
MIN_NEW_IMAGES = 2  # a two-sample test needs two on each side
PICTURE_FILE = 'embedding_drift.png'


@dataclasses.dataclass(frozen=True)
class EmbeddingCheck:
  drift: embedding_drift.EmbeddingDrift
  findings: List[Finding]  # embedding, predicted class, confidence
  embeddings: np.ndarray
  probabilities: np.ndarray
  out_of_distribution_share: float

  @property
  def flagged(self) -> List[Finding]:
    return [f for f in self.findings if f.flagged]


def check_images(model: LoadedEmbeddingModel, images: Sequence[bytes],
                 thresholds: DriftThresholds) -> EmbeddingCheck:
  """Embeds ``images`` (encoded files) and compares them with ``model``'s baseline."""
  embeddings, probabilities = model.embed_images(list(images))
  baseline = model.baseline
  drift = embedding_drift.embedding_drift(baseline.embeddings, embeddings,
                                          thresholds.embedding_p_value, thresholds.embedding_auc)
  rows = [drift.finding()] + embedding_drift.prediction_drift(
      baseline.eval_probabilities, probabilities, model.class_names, thresholds.label_linf,
      thresholds.confidence_js)
  scores = _ood_scores(embeddings, baseline.embeddings)
  return EmbeddingCheck(drift, rows, embeddings, probabilities,
                        float(np.mean(scores > baseline.ood_threshold)))


def _ood_scores(embeddings: np.ndarray, reference: np.ndarray) -> np.ndarray:
  from components.modules.embedding import knn_distance  # pylint: disable=g-import-not-at-top
  return knn_distance(embeddings, reference).numpy()


def summary_line(check: EmbeddingCheck) -> str:
  return (f'{len(check.embeddings)} new images embedded; {check.out_of_distribution_share:.1%} of '
          'them out of distribution (the threshold flags 1 % of held-out training-like images)')


def picture_png(check: EmbeddingCheck, model: LoadedEmbeddingModel) -> bytes:
  """Baseline vs new images: the embeddings on their first two principal components, and the
  histograms of the model's confidence."""
  baseline = model.baseline
  figure, (scatter, histogram) = plt.subplots(1, 2, figsize=(11, 4.2))
  normalised = [e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
                for e in (baseline.embeddings, check.embeddings)]
  centre = normalised[0].mean(axis=0)
  _, _, vt = np.linalg.svd(normalised[0] - centre, full_matrices=False)
  for points, label in zip(normalised, ('baseline (training images)', 'new images')):
    xy = (points - centre) @ vt[:2].T
    scatter.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5, label=label)
  scatter.set_title(f'embeddings, 2 principal components of the baseline\n'
                    f'domain classifier AUC {check.drift.auc:.3f}, MMD p-value '
                    f'{check.drift.p_value:.4f}', fontsize=9)
  scatter.legend(fontsize=8)
  for probabilities, label in ((baseline.eval_probabilities, 'baseline (held-out eval images)'),
                               (check.probabilities, 'new images')):
    counts, edges = embedding_drift.confidence_histogram(probabilities)
    histogram.stairs(counts / max(counts.sum(), 1), edges, label=label,
                     fill=label.startswith('baseline'), alpha=0.6)
  histogram.set_title('confidence (top probability), share of images', fontsize=9)
  histogram.legend(fontsize=8)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=80)
  plt.close(figure)
  return buffer.getvalue()
