"""The Evaluator's blessing gates: its TFMA metrics, their thresholds, and the numbers that decided.

The absolute gate: the metric ``--gate-metric`` (balanced accuracy by default, which does not
reward a model for its largest classes; or accuracy, or macro-F1) at least ``--gate-threshold``
on the test split as a whole; by default halfway from the chance level, 1 / the number of
classes, to 1 (PipelineConfig.gate_minimum): 0.75 for two classes, 0.6 for five.

Two gates against the last blessed model, ``--blessing-gate``:

* ``paired`` (default): the candidate is blessed unless it is significantly worse than the baseline
  on the same test examples: one-sided exact McNemar test on the examples where exactly one of the
  two models is right (components/paired_accuracy.py), refused when p < ``--blessing-significance``
  (0.05). Meaning: a retrain as good as the baseline is refused at most 5 % of the time, whatever
  the test split's size; the smaller the test split, the larger a loss must be to count.
* ``not-lower``: the gate metric not lower than the baseline's by any amount (TFMA change
  threshold -1e-10), on every slice: one test image decides. Kept for comparison.

TFMA computes and checks them all with its own thresholds and drops the comparison when there is
no baseline yet. Light on purpose: pipeline/configs.py imports it for the names; TFMA is imported
where the thresholds are built.
"""
from typing import Dict, List

PAIRED, NOT_LOWER = 'paired', 'not-lower'
GATES = (PAIRED, NOT_LOWER)
ACCURACY = 'sparse_categorical_accuracy'
BALANCED_ACCURACY, MACRO_F1 = 'balanced_accuracy', 'macro_f1'
# --gate-metric's choices -> the Evaluator's metric names.
GATE_METRICS = {'balanced_accuracy': BALANCED_ACCURACY, 'accuracy': ACCURACY,
                'macro_f1': MACRO_F1}
# The Evaluator's metric names -> their TFMA MetricConfig class names (overall_metrics).
METRIC_CLASSES = {ACCURACY: 'SparseCategoricalAccuracy',
                  BALANCED_ACCURACY: 'ClassBalancedAccuracy', MACRO_F1: 'MacroF1'}


def overall_metrics(gate_metric: str, minimum: float, gate: str) -> List[object]:
  """The tfma.MetricConfigs of accuracy, balanced accuracy and macro-F1; the one of
  ``gate_metric`` must reach ``minimum`` on the whole test split (not on each class's slice, where
  it is that class's recall: reported, not gated) and, for the not-lower gate, not be lower than
  the baseline's on any slice."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from components import class_metrics  # pylint: disable=g-import-not-at-top
  configs = {name: tfma.MetricConfig(class_name=class_name,
                                     module='' if name == ACCURACY else class_metrics.__name__)
             for name, class_name in METRIC_CLASSES.items()}
  gated = configs[GATE_METRICS[gate_metric]]
  gated.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
      slicing_specs=[tfma.SlicingSpec()], threshold=tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(lower_bound={'value': minimum}))))
  if gate == NOT_LOWER:
    gated.threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
        direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={'value': -1e-10}))
  return list(configs.values())


def comparison_metrics(gate: str, significance: float) -> List[object]:
  """The paired gate's tfma.MetricConfig (none for not-lower), checked on the overall slice only.

  Its values are diff metrics of the candidate, so the check is a change threshold, "p-value >=
  significance", which TFMA drops when there is no baseline.
  """
  if gate != PAIRED:
    return []
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from components.paired_accuracy import PairedAccuracyTest  # pylint: disable=g-import-not-at-top
  not_worse = tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={'value': significance}))
  return [tfma.MetricConfig(
      class_name=PairedAccuracyTest.__name__, module=PairedAccuracyTest.__module__,
      per_slice_thresholds=[tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                                         threshold=not_worse)])]


def decision_numbers(evaluation_uri: str) -> Dict[str, float]:
  """What decided the gate against the baseline, read from the Evaluator's evaluation (overall
  slice), for the run summary and report: the candidate's wins, losses and paired p-value (paired
  gate) and its accuracy and balanced accuracy changes (both gates), e.g. {'candidate_wins': 3.0, 'candidate_losses': 5.0,
  'paired_worse_p_value': 0.36, 'accuracy_change': -0.0089}. Empty when there was no baseline."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from components import paired_accuracy  # pylint: disable=g-import-not-at-top
  for metrics in tfma.load_metrics(evaluation_uri):
    if metrics.slice_key.single_slice_keys:
      continue
    diffs = {k.key.name: k.value.double_value.value for k in metrics.metric_keys_and_values
             if k.key.is_diff and k.key.model_name == tfma.CANDIDATE_KEY}
    numbers = {name: diffs[name] for name in (paired_accuracy.WINS, paired_accuracy.LOSSES,
                                              paired_accuracy.P_VALUE) if name in diffs}
    numbers.update({change: diffs[name] for name, change in (
        (ACCURACY, 'accuracy_change'), (BALANCED_ACCURACY, 'balanced_accuracy_change'))
                    if name in diffs})
    return numbers
  return {}
