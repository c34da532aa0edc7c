"""The Evaluator's TFMA output, parsed: the candidate's metrics, its confusion matrix, and why it
was not blessed. Read by the run summary and the run report."""
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components import class_metrics
from pipeline import blessing_gate


def load_candidate_result(evaluation_uri: str) -> tfma.EvalResult:
  """The evaluated model's TFMA results. With a baseline the Evaluator names the two models
  'candidate' and 'baseline', and TFMA returns the plots only for a named model."""
  with tf.io.gfile.GFile(os.path.join(evaluation_uri, 'eval_config.json')) as f:
    model_specs = json.load(f)['evalConfig']['modelSpecs']
  has_baseline = any(spec.get('isBaseline') for spec in model_specs)
  return tfma.load_eval_result(evaluation_uri,
                               model_name=tfma.CANDIDATE_KEY if has_baseline else None)


def sliced_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
  """{slice: {metric: value}} of a TFMA evaluation: 'overall', and e.g. 'label=0' per class; e.g.
  {'overall': {'sparse_categorical_accuracy': 0.97, ...}, 'label=0': {...}}."""
  sliced = {}
  for slice_key, metrics in load_candidate_result(evaluation_uri).slicing_metrics:
    values = next(iter(metrics.values()))  # one output
    values = values.get('', {})  # sub key '' (no class binarisation)
    name = ', '.join(f'{feature}={value}' for feature, value in slice_key) or 'overall'
    # '<metric>_diff' entries compare with the baseline model; the values themselves suffice here.
    sliced[name] = {metric: value['doubleValue'] for metric, value in values.items()
                    if 'doubleValue' in value and not metric.endswith('_diff')}
  return sliced


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
  """Unsliced metrics of a TFMA evaluation, e.g. {'sparse_categorical_accuracy': 0.97, ...}."""
  return sliced_metrics(evaluation_uri).get('overall', {})


def confusion_matrix(evaluation_uri: str, num_classes: int) -> Optional[np.ndarray]:
  """The Evaluator's multi-class confusion matrix of the test split (unsliced), counts."""
  for slice_key, plots in load_candidate_result(evaluation_uri).plots:
    if slice_key:
      continue
    for per_output in plots.values():
      for per_sub_key in per_output.values():
        plot = per_sub_key.get('multiClassConfusionMatrixAtThresholds')
        if plot:
          matrix = np.zeros((num_classes, num_classes))
          for entry in plot['matrices'][0].get('entries', []):
            predicted = int(entry.get('predictedClassId', 0))
            if 0 <= predicted < num_classes:  # -1 counts examples below every threshold
              matrix[int(entry.get('actualClassId', 0)), predicted] += entry.get(
                  'numWeightedExamples', 0)
          return matrix
  return None


def per_class_metrics(evaluation_uri: str, num_classes: int) -> Dict[int, Dict[str, float]]:
  """{class id: {'recall': ..., 'precision': ..., 'auc': ...}} on the whole test split: recall
  and precision of the arg-max class (the confusion matrix), AUC one class against the rest."""
  matrix = confusion_matrix(evaluation_uri, num_classes)
  if matrix is None:
    return {}
  recall, precision = class_metrics.recall_and_precision(matrix)
  per_class = {c: {'images': float(matrix[c].sum()), 'recall': float(recall[c]),
                   'precision': float(precision[c])} for c in range(num_classes)}
  for slice_key, metrics in load_candidate_result(evaluation_uri).slicing_metrics:
    if slice_key:
      continue
    for sub_key, values in next(iter(metrics.values())).items():
      if sub_key.startswith('classId:') and 'auc' in values:
        per_class[int(sub_key.split(':')[1])]['auc'] = values['auc']['doubleValue']
  return per_class


def gate_settings(evaluation_uri: str) -> Tuple[Optional[str], Optional[float], Optional[float]]:
  """(gated metric, its lowest blessed value, the paired gate's significance or None) as the
  Evaluator's eval_config recorded them: what this run was gated by, whatever the flags now."""
  with tf.io.gfile.GFile(os.path.join(evaluation_uri, 'eval_config.json')) as f:
    specs = json.load(f)['evalConfig'].get('metricsSpecs', [])
  metric, minimum, significance = None, None, None
  metric_of_class = {name: metric for metric, name in blessing_gate.METRIC_CLASSES.items()}
  for spec in specs:
    for config in spec.get('metrics', []):
      for per_slice in config.get('perSliceThresholds', []):
        threshold = per_slice.get('threshold', {})
        if 'valueThreshold' in threshold:
          metric = metric_of_class.get(config['className'], config['className'])
          minimum = _number(threshold['valueThreshold'].get('lowerBound'))
        elif 'changeThreshold' in threshold:
          significance = _number(threshold['changeThreshold'].get('absolute'))
  return metric, minimum, significance


def _number(value) -> Optional[float]:
  """A DoubleValue of TFMA's eval_config.json: a plain number, or {'value': number}."""
  return value.get('value') if isinstance(value, dict) else value


def failed_metrics(evaluation_uri: str) -> List[Tuple[str, bool]]:
  """(metric name, whether it compares with the baseline) of every threshold that failed."""
  result = tfma.load_validation_result(evaluation_uri)
  return [(failure.metric_key.name, failure.metric_key.is_diff)
          for per_slice in result.metric_validations_per_slice for failure in per_slice.failures]


def blessing_reasons(evaluation_uri: str) -> List[str]:
  """Why the Evaluator did not bless: one line per failed threshold."""
  result = tfma.load_validation_result(evaluation_uri)
  return [failure.message or str(failure.metric_key.name)
          for per_slice in result.metric_validations_per_slice for failure in per_slice.failures]
