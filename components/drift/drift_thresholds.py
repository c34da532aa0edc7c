"""How far new data may drift from the baseline before the run stops: the thresholds' type.

Light on purpose (no TensorFlow): the configuration and the command lines import it.
"""
import dataclasses

ON_DRIFT_CHOICES = ('fail', 'warn')


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
  """Largest accepted distance between the new data and the baseline, per kind of feature.

  L-infinity is the largest change of any category's share (0.1: a class going from 50 % to 60 %);
  Jensen-Shannon divergence is TFDV's, between the histograms of a numeric feature, 0 (equal) to
  1 (disjoint). On the tutorial's images (benchmarks/results/drift_benchmark.md) two samples of
  the same data score up to 0.16 (height and width, whose histograms are spiky: many photos are
  exactly 500 x 374), real drift 0.84 or more.
  """
  label_linf: float = 0.1
  categorical_linf: float = 0.1  # image format and colour mode
  numeric_js: float = 0.2  # size, aspect ratio, file size, brightness, contrast, saturation
  # What the photos show (components/drift/embedding_drift.py): drift when the MMD test's p-value is
  # below embedding_p_value and a domain classifier tells new from baseline embeddings with ROC AUC
  # at least embedding_auc; and the model's confidence histogram (Jensen-Shannon). The predicted
  # classes' shares use label_linf.
  embedding_p_value: float = 0.01
  embedding_auc: float = 0.6
  confidence_js: float = 0.1
