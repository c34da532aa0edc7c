"""The sections of a run's report, each from that run's own outputs in MLMD: the outcome, the data,
the data checks, the model and its training, the evaluation, and the components' states."""
import html
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
import tensorflow as tf
from tfx.types import artifact_utils

from components.drift.drift_gate import REPORT_FILE, DriftReport
from components.drift.embedding_drift_gate import EmbeddingDriftReport
from components.image_example_gen.summary import SUMMARY_FILE
from components.tflite_check import RESULT_FILE as TFLITE_RESULT_FILE
from components.tflite_check import TFLiteEvaluation
from components.modules import features
from run_results import mlmd_runs
from run_results import tfma_results
from run_results.report import charts
from run_results.report import embedding_section
from run_results.report import inference
from run_results.report import quality_section
from run_results.report.page import Page, table
from run_results import run_summary
from run_results.run_summary import RunSummary

MAX_PREDICTED = 2000
GRID_COLUMNS = 6


def verdict(summary: RunSummary, run: mlmd_runs.Run) -> str:
  """What this run decided: failed, blessed and pushed, not blessed, or nothing evaluated."""
  failed = [node for node, (state, _) in summary.executions.items() if state == 'FAILED']
  pushed = run.output('Pusher', 'PushedModel')
  if failed:
    return (f'<p class="bad">The run failed in {html.escape(", ".join(failed))}; the log says '
            'why. The sections below show what ran before.</p>')
  if summary.blessed is None:
    return '<p>No model was evaluated in this run.</p>'
  why = '<ul>' + ''.join(f'<li>{html.escape(line)}</li>'
                          for line in run_summary.decision_lines(summary)) + '</ul>'
  if not summary.blessed:
    return '<p class="bad">Model NOT blessed; nothing was pushed.</p>' + why
  destination = pushed.custom_properties['pushed_destination'].string_value if pushed else ''
  return (f'<p class="ok">Model blessed and pushed to <code>{html.escape(destination)}</code>.'
          '</p>' + why)


def data(page: Page, examples: metadata_store_pb2.Artifact,
         class_names: Sequence[str]) -> List[tf.train.Example]:
  """Counts per split and class, skipped files, sample images; returns the training examples read."""
  with tf.io.gfile.GFile(os.path.join(examples.uri, SUMMARY_FILE)) as f:
    image_summary = json.load(f)
  counts = image_summary['counts']
  skipped = [[s['path'], s['reason']] for s in image_summary['skipped']]
  per_class = inference.examples_per_class(examples, 'train', len(class_names), GRID_COLUMNS)
  rows = [(name, [(inference.thumbnail(inference.feature_value(e, features.IMAGE_KEY)), '')
                  for e in of_class]) for name, of_class in zip(class_names, per_class)]
  train = [example for of_class in per_class for example in of_class]
  page.section(
      'Data',
      f"<p>{image_summary['images_used']} of {image_summary['files_seen']} files used, "
      f"{image_summary['files_skipped']} skipped, {len(image_summary.get('ignored', []))} "
      f'ignored (outside the class folders).</p>',
      table(['split'] + list(class_names),
            [[split] + [counts[split].get(name, 0) for name in class_names] for split in counts]),
      page.picture('label_counts.png', charts.label_counts_chart(counts),
                   'images per class and split'),
      table(['skipped file', 'reason'], skipped) if skipped else '',
      '<h3>Training images, one row per class</h3>',
      page.picture('samples.png', charts.image_grid(rows), 'sample training images'))
  return train


def data_checks(page: Page, run: mlmd_runs.Run,
                examples: Optional[metadata_store_pb2.Artifact]) -> None:
  """The validators' anomalies, the drift check's scores, and what DataQuality found."""
  anomaly_rows = [row for node, node_outputs in run.outputs.items()
                  for type_name, artifact in node_outputs.items() if type_name == 'ExampleAnomalies'
                  for row in _anomaly_rows(node, artifact)]
  page.section('Data checks',
               table(['check', 'split', 'feature', 'anomaly', 'details'], anomaly_rows)
               if anomaly_rows else '<p class="ok">No anomalies.</p>',
               drift_table(run.output('DriftGate', DriftReport.TYPE_NAME)),
               embedding_section.embedding_drift(
                   page, run.output('EmbeddingDriftGate', EmbeddingDriftReport.TYPE_NAME)),
               quality_section.data_quality(page, run, examples) if examples else '')


def _hyperparameters(run: mlmd_runs.Run, record: Dict[str, Any]) -> str:
  """What chose the head's hyperparameters (the Tuner's trials, or the recipe) and the epochs."""
  trials = run_summary.tuner_trials(run)
  names = sorted(record['hyperparameters'])
  source = (f"the best of the Tuner's {len(trials)} trials" if record.get('tuned')
            else "the recipe's (no tuning)")
  text = (', '.join(f"{name} {record['hyperparameters'][name]:.4g}" for name in names)
          + f': {source}')
  if record.get('best_epoch'):
    text += (f"; the head trained until its eval loss stopped improving, epoch "
             f"{record['best_epoch']} of {len(record['history'].get('loss', []))} kept")
  rows = [[t['trial_id'], f"{t['score']:.4f}"] + [f'{t.get(name, 0):.4g}' for name in names]
          for t in trials]
  return (f'<h3>Hyperparameters</h3><p>{html.escape(text)}.</p>'
          + (table(['trial', 'class-balanced eval loss'] + names, rows) if rows else ''))


def training(page: Page, run: mlmd_runs.Run, train: List[tf.train.Example]) -> None:
  """The Trainer's settings, what chose the head's hyperparameters, the class weights, the
  augmentation on one image, and the training curves."""
  trainer_config = run_summary.trainer_config(run)
  record = run_summary.training_record(run)
  if trainer_config:
    page.section('Model and training',
                 table(['setting', 'value'], sorted(
                     (k, v) for k, v in trainer_config.items() if k != 'class_names')))
  if record.get('hyperparameters'):
    page.parts.append(_hyperparameters(run, record))
  if record.get('class_weights'):
    page.parts.append('<p>Class weights in the training loss (every class weighs the same): '
                      + html.escape(', '.join(f'{name} {weight:.3g}' for name, weight in
                                              record['class_weights'].items())) + '</p>')
  if trainer_config and train:
    page.parts.append('<h3>Augmentation (one image, five random flips and rotations)</h3>' +
                      page.picture('augmentation.png', charts.augmentation_preview(
                          inference.feature_value(train[0], features.IMAGE_KEY),
                          trainer_config['image_size'], trainer_config['rotation_factor']),
                                   'augmentation preview'))
  history = record.get('history')
  if history:
    epochs = [[i + 1] + [f'{history[k][i]:.4f}' for k in sorted(history)]
              for i in range(len(history.get('loss', [])))]
    page.parts.append('<h3>Training curves</h3>' + page.picture(
        'training_curves.png', charts.training_curves(history), 'loss and accuracy per epoch')
                      + table(['epoch'] + sorted(history), epochs))


def evaluation(page: Page, run: mlmd_runs.Run, summary: RunSummary,
               examples: Optional[metadata_store_pb2.Artifact], class_names: Sequence[str]) -> None:
  """Test metrics, the blessing and why not, the confusion matrix, the worst mistakes."""
  evaluated = run.output('Evaluator', 'ModelEvaluation')
  if not evaluated:
    return
  parts = [table(['metric (test split)', 'value'],
                 [[k, f'{v:.4f}'] for k, v in sorted(summary.test_metrics.items())])]
  reasons = tfma_results.blessing_reasons(evaluated.uri)
  parts.append('<p class="ok">Blessed: every threshold passed.</p>' if not reasons else
               '<p class="bad">Not blessed:</p><ul>' + ''.join(
                   f'<li>{html.escape(r)}</li>' for r in reasons) + '</ul>')
  if summary.per_class:
    parts.append('<h3>Per class (test split)</h3>' + table(
        ['class', 'test images', 'recall', 'precision', 'AUC (one vs rest)'],
        [[name, int(m.get('images', 0)), f"{m.get('recall', 0):.4f}",
          f"{m.get('precision', 0):.4f}", f"{m['auc']:.4f}" if 'auc' in m else '-']
         for name, m in summary.per_class.items()]))
  if summary.comparison:
    parts.append('<p>Against the last blessed model, on the same test images:</p>' + table(
        ['number', 'value'], [[k, f'{v:.4g}'] for k, v in sorted(summary.comparison.items())]))
  matrix = tfma_results.confusion_matrix(evaluated.uri, len(class_names))
  if matrix is not None:
    parts.append(page.picture('confusion_matrix.png',
                              charts.confusion_matrix_chart(matrix, class_names),
                              'confusion matrix'))
  model = run.output('Trainer', 'Model')
  if model and examples:
    mistakes = inference.worst_mistakes(
        model.uri, inference.read_examples(examples, 'test', MAX_PREDICTED), class_names)
    parts.append('<h3>Worst mistakes on the test split</h3>' + (
        page.picture('mistakes.png', charts.image_grid([
            ('', mistakes[i:i + GRID_COLUMNS]) for i in range(0, len(mistakes), GRID_COLUMNS)]),
                     'most confident misclassified test images')
        if mistakes else '<p class="ok">No test image is misclassified.</p>'))
  page.section('Evaluation', *parts)


def tflite(page: Page, run: mlmd_runs.Run) -> None:
  """The TFLite model against the SavedModel on the same test images (TFLiteCheck)."""
  evaluation = run.output('TFLiteCheck', TFLiteEvaluation.TYPE_NAME)
  if evaluation is None:
    return
  with tf.io.gfile.GFile(os.path.join(evaluation.uri, TFLITE_RESULT_FILE)) as f:
    result = json.load(f)
  page.section('TFLite model', table(
      ['model', 'test accuracy', 'per class', 'size (bytes)'],
      [[name, f"{result[key]['accuracy']:.4f}",
        ', '.join(f'{label}: {value:.4f}' for label, value in result[key]['per_class'].items()),
        result[f'{key}_bytes']]
       for name, key in (('SavedModel', 'saved_model'), ('TFLite', 'tflite'))]),
      f"<p>{result['example_count']} test images; the models agree on "
      f"{result['agreement']:.1%}; TFLite {html.escape(result['quantization'])} quantised; "
      f"accuracy drop {result['accuracy_drop']:.4f}, at most {result['max_accuracy_drop']} "
      'allowed for a blessed model.</p>')


def drift_table(report: Optional[metadata_store_pb2.Artifact]) -> str:
  """The drift check's scores against the baseline (DriftGate's drift_report.json)."""
  if report is None:
    return ''
  with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE)) as f:
    drift_report = json.load(f)
  if not drift_report['baseline']:
    return '<p>Drift: no baseline yet (a first run); this data becomes the baseline.</p>'
  rows = [[pair, r['feature'], r['check'],
           '-' if r['score'] is None else f"{r['score']:.4f}",
           '-' if r['threshold'] is None else r['threshold'], 'DRIFT' if r['flagged'] else 'ok']
          for pair, findings in drift_report['split_pairs'].items() for r in findings]
  return '<h3>Drift against the baseline</h3>' + table(
      ['split pair', 'feature', 'check', 'score', 'threshold', 'verdict'], rows)


def _anomaly_rows(node: str, anomalies: metadata_store_pb2.Artifact) -> List[List[str]]:
  rows = []
  for split in artifact_utils.decode_split_names(
      anomalies.properties['split_names'].string_value or '[]'):
    path = os.path.join(anomalies.uri, f'Split-{split}', 'SchemaDiff.pb')
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path, 'rb') as f:
        anomalies_proto = anomalies_pb2.Anomalies.FromString(f.read())
      for feature, info in anomalies_proto.anomaly_info.items():
        rows.append([node, split, feature, info.short_description, info.description])
  return rows
