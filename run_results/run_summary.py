"""What one run decided, read back from MLMD and its artifacts (nothing is re-run)."""
import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from components.image_example_gen.summary import SUMMARY_FILE, describe_splits
from pipeline import blessing_gate
from run_results import mlmd_runs
from run_results import tfma_results

FILE_COUNTS = ('files_seen', 'images_used', 'files_skipped')


@dataclasses.dataclass
class RunSummary:
  run_id: str
  blessed: Optional[bool]
  pushed_to: Optional[str]
  test_metrics: Dict[str, float]
  # Node id -> (state, seconds) of the run's executions; state is COMPLETE, CACHED, FAILED, ...
  executions: Dict[str, Tuple[str, float]]
  # The ExampleGen's file counts ('files_seen', 'images_used', 'files_skipped') and the JSON file
  # that lists every skipped file with its reason.
  file_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  image_summary_path: Optional[str] = None
  # What decided the gate against the last blessed model (blessing_gate.decision_numbers); empty
  # without a baseline.
  comparison: Dict[str, float] = dataclasses.field(default_factory=dict)
  # Class name -> its test metrics ('images', 'recall', 'precision', 'auc').
  per_class: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
  # (metric, lowest blessed value, paired significance) as the Evaluator was configured.
  gate: Tuple[Optional[str], Optional[float], Optional[float]] = (None, None, None)
  # (metric, compared with the baseline) of every threshold the model failed.
  failures: List[Tuple[str, bool]] = dataclasses.field(default_factory=list)
  # Where each split's images came from, with counts (summary.describe_splits).
  splits: str = ''


def _splits(examples) -> str:
  if examples is None:
    return ''
  with tf.io.gfile.GFile(os.path.join(examples.uri, SUMMARY_FILE)) as f:
    return describe_splits(json.load(f))


def _per_class(evaluation, examples) -> Dict[str, Dict[str, float]]:
  if evaluation is None or examples is None or 'class_names' not in examples.custom_properties:
    return {}
  names = json.loads(examples.custom_properties['class_names'].string_value)
  return {names[class_id]: metrics for class_id, metrics in sorted(
      tfma_results.per_class_metrics(evaluation.uri, len(names)).items())}


def from_run(run: mlmd_runs.Run) -> RunSummary:
  """The summary of ``run``, from that run's own outputs (cached ones included)."""
  examples = run.output('ImageExampleGen', 'Examples')
  blessing = run.output('Evaluator', 'ModelBlessing')
  evaluation = run.output('Evaluator', 'ModelEvaluation')
  pushed = run.output('Pusher', 'PushedModel')
  pushed_to = None
  if pushed is not None and pushed.custom_properties['pushed'].int_value:
    pushed_to = pushed.custom_properties['pushed_destination'].string_value
  return RunSummary(
      run_id=run.run_id,
      blessed=(None if blessing is None or 'blessed' not in blessing.custom_properties
               else bool(blessing.custom_properties['blessed'].int_value)),
      pushed_to=pushed_to,
      test_metrics=tfma_results.overall_metrics(evaluation.uri) if evaluation else {},
      executions=run.node_states(),
      file_counts={} if examples is None else {
          key: examples.custom_properties[key].int_value
          for key in FILE_COUNTS if key in examples.custom_properties},
      image_summary_path=os.path.join(examples.uri, SUMMARY_FILE) if examples else None,
      comparison=blessing_gate.decision_numbers(evaluation.uri) if evaluation else {},
      per_class=_per_class(evaluation, examples),
      gate=tfma_results.gate_settings(evaluation.uri) if evaluation else (None, None, None),
      failures=tfma_results.failed_metrics(evaluation.uri) if evaluation else [],
      splits=_splits(examples))


def summarize(metadata_path: str, run_id: Optional[str] = None) -> RunSummary:
  """The summary of the run ``run_id`` (the newest run when None) in the store at
  ``metadata_path``."""
  return from_run(mlmd_runs.find_run(mlmd_runs.open_store(metadata_path), run_id))


def training_record(run: mlmd_runs.Run) -> Dict[str, object]:
  """What the Trainer wrote of its training (trainer.HISTORY_FILE): the per-epoch metrics, the
  hyperparameters and whether the Tuner chose them, the best epoch, the class weights."""
  model_run = run.output('Trainer', 'ModelRun')
  path = os.path.join(model_run.uri, 'history.json') if model_run else None
  if not path or not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def tuner_trials(run: mlmd_runs.Run) -> List[Dict[str, object]]:
  """The Tuner's completed trials, best first: {'trial_id', 'score', <hyperparameter>: value}."""
  results = run.output('Tuner', 'TunerResults')
  path = os.path.join(results.uri, 'tuner_results.json') if results else None
  if not path or not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def data_quality(run: mlmd_runs.Run) -> Dict[str, object]:
  """DataQuality's report (components/data_quality/component.py): near duplicates, label issues,
  outliers, counts and the leak; empty when the run had no such check (a base trained from
  scratch)."""
  from components.data_quality.component import REPORT_FILE, DataQualityReport  # pylint: disable=g-import-not-at-top
  report = run.output('DataQuality', DataQualityReport.TYPE_NAME)
  path = os.path.join(report.uri, REPORT_FILE) if report else None
  if not path or not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return {**json.load(f), 'path': path}


def _probe_accuracy(report: Dict[str, object]) -> str:
  """' (the probe judging labels recognises 70 % of the images)': how far to trust the list."""
  probe = report.get('label_probe')
  return (f" (the probe judging them recognises {probe['out_of_fold_accuracy']:.0%} of the "
          'labelled images)' if probe else '')


def data_quality_line(report: Dict[str, object]) -> str:
  """What DataQuality found, in one line: '6 exact and 15 near-duplicate pairs (7 of 901
  eval/test images duplicate training images, 0.8 %, at most 2.0 % allowed), 4 under two classes;
  360 likely label errors (the probe judging them recognises 70 % of the labelled images); 44
  outliers (details: .../data_quality.json)'."""
  counts, leak = report['counts'], report['leak']
  return (f"{counts['exact_duplicate_pairs']} exact and "
          f"{counts['near_duplicate_pairs'] - counts['exact_duplicate_pairs']} near-duplicate "
          f"pairs ({leak['images']} of {leak['held_out_images']} eval/test images duplicate "
          f"training images, {leak['share']:.1%}, at most {leak['max_leak_fraction']:.1%} "
          f"allowed), {counts['conflicting_label_pairs']} under two classes; "
          f"{counts['label_issues']} likely label errors{_probe_accuracy(report)}; "
          f"{counts['outliers']} outliers "
          f"(details: {report['path']})")


def trainer_config(run: mlmd_runs.Run) -> Dict[str, object]:
  """The Trainer's custom_config (class names and hyperparameters) of this run's Trainer."""
  trainer = run.executions.get('Trainer')
  if trainer is None or 'custom_config' not in trainer.custom_properties:
    return {}
  return json.loads(trainer.custom_properties['custom_config'].string_value or '{}')


# How the run's output names the Evaluator's metrics.
METRIC_NAMES = {blessing_gate.ACCURACY: 'accuracy',
                blessing_gate.BALANCED_ACCURACY: 'balanced accuracy',
                blessing_gate.MACRO_F1: 'macro-F1'}


def decision_lines(summary: RunSummary) -> List[str]:
  """Why the model was or was not blessed, with the numbers: the test metrics, the absolute gate
  and the comparison with the last blessed model, each passed or FAILED as TFMA decided."""
  if summary.blessed is None:
    return ['no model was evaluated']
  metrics = summary.test_metrics
  lines = ['test split ({} images): {}'.format(
      int(metrics.get('example_count', 0)), ', '.join(
          f'{label} {metrics[name]:.4f}' for name, label in METRIC_NAMES.items()
          if name in metrics))]
  if summary.per_class:
    lines.append('recall per class: ' + ', '.join(
        f"{name} {values['recall']:.3f}" for name, values in summary.per_class.items()
        if 'recall' in values))
  failed = {name for name, is_diff in summary.failures if not is_diff}
  metric, minimum, significance = summary.gate
  if metric is not None and minimum is not None:
    num_classes = len(summary.per_class) or 2
    chance = 1 / num_classes
    halfway = abs(minimum - round(chance + (1 - chance) / 2, 4)) < 1e-9
    value = metrics.get(metric)
    lines.append('gate: {} {} {} {:g}{}: {}'.format(
        METRIC_NAMES.get(metric, metric), 'n/a' if value is None else f'{value:.4f}',
        '<' if metric in failed else '>=', minimum,
        f' (halfway from chance, {chance:.3g} for {num_classes} classes, to 1)' if halfway else '',
        'FAILED' if metric in failed else 'passed'))
  compared_failed = any(is_diff for _, is_diff in summary.failures)
  if summary.comparison:
    numbers = summary.comparison
    if significance is not None and 'paired_worse_p_value' in numbers:
      detail = (f"{int(numbers.get('candidate_wins', 0))} test images right that it got wrong, "
                f"{int(numbers.get('candidate_losses', 0))} wrong that it got right, paired "
                f"p = {numbers['paired_worse_p_value']:.3g} "
                f"{'<' if compared_failed else '>='} {significance:g}")
    else:
      detail = ', '.join(f'{name} {value:+.4f}' for name, value in sorted(numbers.items()))
    lines.append(f"against the last blessed model: {detail}: "
                 f"{'FAILED (worse)' if compared_failed else 'passed'}")
  elif summary.blessed is not None:
    lines.append('against the last blessed model: none yet (a first model), nothing to compare')
  return lines
