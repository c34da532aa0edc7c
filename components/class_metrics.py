"""Class-balanced TFMA metrics of a classifier: balanced accuracy and macro-F1.

Accuracy rewards a model for its largest classes: on a test split of 90 % one class, always
predicting it scores 0.90. Balanced accuracy, the mean over the classes of each class's recall,
scores that model 1 / (number of classes), the chance level whatever the class counts, and macro-F1
averages each class's F1 the same way. Both come from TFMA's own multi-class confusion matrix
(the arg-max class of every test example), which MultiClassConfusionMatrixPlot computes too, so
the Evaluator counts each example once for the three. A class with no test example in a slice is
left out of that slice's averages.
"""
from typing import Dict, Iterable, Optional, Tuple

import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mccm
from tensorflow_model_analysis.proto import config_pb2

BALANCED_ACCURACY = 'balanced_accuracy'
MACRO_F1 = 'macro_f1'


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def recall_and_precision(matrix: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Each class's recall (its images predicted as it) and precision (the images predicted as it
  that are of it) in a confusion matrix of counts [actual, predicted]; 0 where undefined."""
  correct = np.diag(matrix)
  return _ratio(correct, matrix.sum(axis=1)), _ratio(correct, matrix.sum(axis=0))


def class_balanced_scores(matrix: np.ndarray) -> Dict[str, float]:
  """{BALANCED_ACCURACY, MACRO_F1} of a confusion matrix of counts [actual, predicted]."""
  present = matrix.sum(axis=1) > 0
  if not present.any():
    return {BALANCED_ACCURACY: float('nan'), MACRO_F1: float('nan')}
  recall, precision = recall_and_precision(matrix)
  f1 = _ratio(2 * precision * recall, precision + recall)
  return {BALANCED_ACCURACY: float(recall[present].mean()), MACRO_F1: float(f1[present].mean())}


def _matrix(matrices: mccm.Matrices) -> np.ndarray:
  """The counts [actual, predicted] at TFMA's threshold 0 (every example's arg-max class)."""
  entries = next(iter(matrices.values()), {})
  size = 1 + max([max(key.actual_class_id, key.predicted_class_id) for key in entries] or [0])
  matrix = np.zeros((size, size))
  for key, count in entries.items():
    if key.predicted_class_id >= 0:
      matrix[key.actual_class_id, key.predicted_class_id] += count
  return matrix


class _ClassBalancedMetric(metric_types.Metric):
  """One of class_balanced_scores' values, derived from TFMA's multi-class confusion matrices."""
  SCORE = ''

  def __init__(self, name: Optional[str] = None):
    super().__init__(self._computations, name=name or self.SCORE)

  def _computations(self, name: str, eval_config: config_pb2.EvalConfig,
                    model_names: Iterable[str], output_names: Optional[Iterable[str]] = ('',),
                    example_weighted: bool = False) -> metric_types.MetricComputations:
    computations = []
    for model_name in model_names:
      for output_name in output_names or ('',):
        matrices = mccm.multi_class_confusion_matrices(
            thresholds=[0.0], eval_config=eval_config, model_name=model_name,
            output_name=output_name, example_weighted=example_weighted)
        matrices_key = matrices[-1].keys[-1]
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     example_weighted=example_weighted)

        def result(metrics, key=key, matrices_key=matrices_key):
          return {key: class_balanced_scores(_matrix(metrics[matrices_key]))[self.SCORE]}

        computations.extend(matrices)
        computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


# Not 'BalancedAccuracy': TFMA resolves a class name among its own metrics first, and its
# BalancedAccuracy is a binary metric at threshold 0.5.
class ClassBalancedAccuracy(_ClassBalancedMetric):
  """The mean over the classes of each class's recall; chance level 1 / number of classes."""
  SCORE = BALANCED_ACCURACY


class MacroF1(_ClassBalancedMetric):
  """The mean over the classes of each class's F1 score."""
  SCORE = MACRO_F1
