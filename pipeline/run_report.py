"""One HTML page per pipeline run, with its pictures as PNG files, read back from MLMD and artifacts.

Nothing of the pipeline is re-run: the data counts come from the ExampleGen's summary, the anomalies
from the validators' artifacts, the curves from the Trainer's history, the metrics, confusion
matrix and blessing from the Evaluator's output. The one computation is the grid of the worst
mistakes: the run's trained model classifies the test split (at most MAX_PREDICTED examples)
through its ``serving_default`` signature, as TF Serving would.

    python -m pipeline.run_report --pipeline-root runs/sample/pipeline_root
"""
import argparse
import base64
import html
import io
import json
import os
import re
import time
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # no display: PNGs only
# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import pyplot as plt
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.orchestration import metadata
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import drift
from components.image_example_gen import executor as example_gen_executor
from components.modules import exif_orientation
from components.modules import features
from components.modules import model as model_lib
from components.modules import preprocessing
from pipeline import run_summary

REPORT_FILE = 'report.html'
MAX_PREDICTED = 2000
GRID_COLUMNS = 6
MISTAKES_SHOWN = 12
THUMBNAIL = 160


# --- reading the run -----------------------------------------------------------------------------

def run_outputs(store: metadata_store.MetadataStore,
                run_id: int) -> Dict[str, Dict[str, metadata_store_pb2.Artifact]]:
  """{node id: {output type name: artifact}} of the executions of one pipeline run, cached ones too."""
  outputs: Dict[str, Dict[str, metadata_store_pb2.Artifact]] = {}
  for node_id, execution in run_summary.run_executions(store, run_id).items():
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
    artifacts = store.get_artifacts_by_id([e.artifact_id for e in events])
    types = {t.id: t.name for t in store.get_artifact_types_by_id({a.type_id for a in artifacts})}
    outputs[node_id] = {types[a.type_id]: a for a in artifacts}
  return outputs


def read_examples(examples: metadata_store_pb2.Artifact, split: str,
                  limit: int) -> List[tf.train.Example]:
  split_uri = os.path.join(examples.uri, f'Split-{split}')
  files = sorted(tf.io.gfile.glob(os.path.join(split_uri, '*')))
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').take(limit)
  return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def _feature(example: tf.train.Example, key: str):
  feature = example.features.feature[key]
  return (feature.bytes_list.value or feature.int64_list.value or feature.float_list.value)[0]


def _thumbnail(data: bytes) -> np.ndarray:
  image = exif_orientation.decode_upright(tf.constant(data))
  return tf.image.resize_with_pad(image, THUMBNAIL, THUMBNAIL).numpy().astype('uint8')


# --- pictures ------------------------------------------------------------------------------------

def _png(figure) -> bytes:
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=80, bbox_inches='tight')
  plt.close(figure)
  return buffer.getvalue()


def image_grid(rows: Sequence[Tuple[str, Sequence[Tuple[np.ndarray, str]]]]) -> bytes:
  """One row per (row title, [(image, caption), ...]), e.g. cats on top, dogs below."""
  columns = max(len(images) for _, images in rows)
  figure, axes = plt.subplots(len(rows), columns, figsize=(2 * columns, 2.2 * len(rows)),
                              squeeze=False)
  for row, (title, images) in enumerate(rows):
    for column in range(columns):
      axis = axes[row][column]
      axis.axis('off')
      if column < len(images):
        image, caption = images[column]
        axis.imshow(image)
        axis.set_title(caption if column else f'{title}\n{caption}'.strip(), fontsize=8)
  return _png(figure)


def label_counts_chart(counts: Dict[str, Dict[str, int]]) -> bytes:
  """Grouped bars: images per class in each split."""
  splits = sorted(counts)
  class_names = sorted({name for per_class in counts.values() for name in per_class})
  figure, axis = plt.subplots(figsize=(6, 3))
  width = 0.8 / max(len(class_names), 1)
  for i, name in enumerate(class_names):
    positions = [s + i * width for s in range(len(splits))]
    bars = axis.bar(positions, [counts[split].get(name, 0) for split in splits], width, label=name)
    axis.bar_label(bars, fontsize=7)
  axis.set_xticks([s + width * (len(class_names) - 1) / 2 for s in range(len(splits))], splits)
  axis.set_ylabel('images')
  axis.legend()
  return _png(figure)


def training_curves(history: Dict[str, List[float]]) -> bytes:
  """Loss and accuracy per epoch, training vs eval split."""
  figure, axes = plt.subplots(1, 2, figsize=(9, 3))
  for axis, metric in zip(axes, ('loss', 'accuracy')):
    for key, label in ((metric, 'train'), (f'val_{metric}', 'eval')):
      if key in history:
        axis.plot(range(1, len(history[key]) + 1), history[key], marker='.', label=label)
    axis.set_xlabel('epoch')
    axis.set_title(metric)
    axis.legend()
  return _png(figure)


def confusion_matrix_chart(matrix: np.ndarray, class_names: Sequence[str]) -> bytes:
  figure, axis = plt.subplots(figsize=(3.5, 3))
  axis.imshow(matrix, cmap='Blues')
  for (actual, predicted), count in np.ndenumerate(matrix):
    axis.text(predicted, actual, int(count), ha='center', va='center',
              color='white' if count > matrix.max() / 2 else 'black')
  axis.set_xticks(range(len(class_names)), class_names)
  axis.set_yticks(range(len(class_names)), class_names)
  axis.set_xlabel('predicted')
  axis.set_ylabel('actual')
  return _png(figure)


def confusion_matrix(evaluation_uri: str, num_classes: int) -> Optional[np.ndarray]:
  """The Evaluator's multi-class confusion matrix of the test split (unsliced), counts."""
  for slice_key, plots in run_summary.load_candidate_result(evaluation_uri).plots:
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


def blessing_reasons(evaluation_uri: str) -> List[str]:
  """Why the Evaluator did not bless: one line per failed threshold."""
  result = tfma.load_validation_result(evaluation_uri)
  return [failure.message or str(failure.metric_key.name)
          for per_slice in result.metric_validations_per_slice for failure in per_slice.failures]


def worst_mistakes(model_uri: str, examples: List[tf.train.Example], class_names: Sequence[str],
                   shown: int = MISTAKES_SHOWN) -> List[Tuple[np.ndarray, str]]:
  """Misclassified examples, most confident first, with what the model said."""
  model = tf.saved_model.load(path_utils.serving_model_path(model_uri))
  serve = model.signatures['serving_default']
  probabilities = np.concatenate([
      serve(examples=tf.constant([e.SerializeToString() for e in examples[i:i + 64]]))[
          features.PROBABILITIES_OUTPUT].numpy() for i in range(0, len(examples), 64)])
  labels = np.array([_feature(e, features.LABEL_KEY) for e in examples])
  predicted = probabilities.argmax(axis=1)
  wrong = np.flatnonzero(predicted != labels)
  wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:shown]
  return [(_thumbnail(_feature(examples[i], features.IMAGE_KEY)),
           f'{class_names[predicted[i]]} {probabilities[i, predicted[i]]:.2f}\n'
           f'(is {class_names[labels[i]]})') for i in wrong]


def augmentation_preview(image: bytes, image_size: int, rotation_factor: float) -> bytes:
  """One training image and five random flips/rotations, by the Trainer's own augmentation."""
  decoded = preprocessing.preprocess_images(tf.constant([image]), image_size)[0]
  augment = model_lib.augmentation(rotation_factor)
  views = [(decoded, 'original')] + [
      (augment(decoded[tf.newaxis], training=True)[0], f'random {i + 1}') for i in range(5)]
  return image_grid([('', [(((view.numpy() + 1) * 127.5).clip(0, 255).astype('uint8'), caption)
                           for view, caption in views])])


# --- the page ------------------------------------------------------------------------------------

def _cells(tag: str, values: Sequence[object]) -> str:
  return ''.join(f'<{tag}>{html.escape(str(value))}</{tag}>' for value in values)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  return (f'<table><tr>{_cells("th", header)}</tr>'
          + ''.join(f'<tr>{_cells("td", row)}</tr>' for row in rows) + '</table>')


class _Page:
  """Sections of HTML and the PNG files they show (written beside the page and embedded in it)."""

  def __init__(self, output_dir: str):
    self.output_dir = output_dir
    self.parts: List[str] = []
    self.pictures: List[str] = []

  def section(self, title: str, *parts: str) -> None:
    self.parts.append(f'<h2>{html.escape(title)}</h2>' + ''.join(parts))

  def picture(self, name: str, png: bytes, alt: str) -> str:
    with tf.io.gfile.GFile(os.path.join(self.output_dir, name), 'wb') as f:
      f.write(png)
    self.pictures.append(name)
    data = base64.b64encode(png).decode('ascii')
    return (f'<p><a href="{name}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(alt)}"></a></p>')

  def html(self, title: str) -> str:
    style = ('body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}'
             'table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;'
             'padding:2px 8px;text-align:left}img{max-width:100%}.bad{color:#b00}.ok{color:#070}')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{style}</style></head><body><h1>{html.escape(title)}</h1>'
            + '\n'.join(self.parts) + '</body></html>\n')


def _drift_table(report: Optional[metadata_store_pb2.Artifact]) -> str:
  """The drift check's scores against the baseline (DriftGate's drift_report.json)."""
  if report is None:
    return ''
  with tf.io.gfile.GFile(os.path.join(report.uri, drift.REPORT_FILE)) as f:
    drift_report = json.load(f)
  if not drift_report['baseline']:
    return '<p>Drift: no baseline yet (a first run); this data becomes the baseline.</p>'
  rows = [[pair, r['feature'], r['check'],
           '-' if r['score'] is None else f"{r['score']:.4f}",
           '-' if r['threshold'] is None else r['threshold'], 'DRIFT' if r['flagged'] else 'ok']
          for pair, findings in drift_report['split_pairs'].items() for r in findings]
  return '<h3>Drift against the baseline</h3>' + _table(
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


def _verdict(summary: run_summary.RunSummary,
             outputs: Dict[str, Dict[str, metadata_store_pb2.Artifact]]) -> str:
  """What this run decided: failed, blessed and pushed, not blessed, or nothing evaluated."""
  failed = [node for node, (state, _) in summary.executions.items() if state == 'FAILED']
  blessing = outputs.get('Evaluator', {}).get('ModelBlessing')
  pushed = outputs.get('Pusher', {}).get('PushedModel')
  if failed:
    return (f'<p class="bad">The run failed in {html.escape(", ".join(failed))}; the log says '
            'why. The sections below show what ran before.</p>')
  if blessing is None or 'blessed' not in blessing.custom_properties:
    return '<p>No model was evaluated in this run.</p>'
  if not blessing.custom_properties['blessed'].int_value:
    return '<p class="bad">Model NOT blessed; nothing was pushed.</p>'
  destination = pushed.custom_properties['pushed_destination'].string_value if pushed else ''
  return f'<p class="ok">Model blessed and pushed to <code>{html.escape(destination)}</code>.</p>'


def write_report(metadata_path: str, reports_dir: str) -> str:
  """Writes ``<reports_dir>/<run>/report.html`` and its PNGs for the latest run; returns the path."""
  store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
  runs = store.get_contexts_by_type('pipeline_run')
  if not runs:
    raise ValueError(f'no pipeline run is recorded in {metadata_path}')
  run = max(runs, key=lambda c: c.id)
  # Run ids are timestamps such as 2026-11-24T05:08:20.165792; keep the folder name portable.
  output_dir = os.path.join(reports_dir, re.sub(r'[^0-9A-Za-z._-]', '-', run.name))
  tf.io.gfile.makedirs(output_dir)
  page = _Page(output_dir)
  outputs = run_outputs(store, run.id)
  summary = run_summary.summarize(metadata_path)
  examples = outputs.get('ImageExampleGen', {}).get('Examples')
  class_names = json.loads(examples.custom_properties['class_names'].string_value) if examples else []

  page.section('Outcome', _verdict(summary, outputs))

  train: List[tf.train.Example] = []
  if examples:
    with tf.io.gfile.GFile(os.path.join(examples.uri, example_gen_executor.SUMMARY_FILE)) as f:
      image_summary = json.load(f)
    counts = image_summary['counts']
    skipped = [[s['path'], s['reason']] for s in image_summary['skipped']]
    train = read_examples(examples, 'train', limit=400)
    rows = [(name, [(_thumbnail(_feature(e, features.IMAGE_KEY)), '')
                    for e in train if _feature(e, features.LABEL_KEY) == label][:GRID_COLUMNS])
            for label, name in enumerate(class_names)]
    page.section(
        'Data',
        f"<p>{image_summary['images_used']} of {image_summary['files_seen']} files used, "
        f"{image_summary['files_skipped']} skipped, {len(image_summary.get('ignored', []))} "
        f'ignored (outside the class folders).</p>',
        _table(['split'] + class_names,
               [[split] + [counts[split].get(name, 0) for name in class_names] for split in counts]),
        page.picture('label_counts.png', label_counts_chart(counts), 'images per class and split'),
        _table(['skipped file', 'reason'], skipped) if skipped else '',
        '<h3>Training images, one row per class</h3>',
        page.picture('samples.png', image_grid(rows), 'sample training images'))

  anomaly_rows = [row for node, node_outputs in outputs.items()
                  for type_name, artifact in node_outputs.items() if type_name == 'ExampleAnomalies'
                  for row in _anomaly_rows(node, artifact)]
  page.section('Data checks',
               _table(['check', 'split', 'feature', 'anomaly', 'details'], anomaly_rows)
               if anomaly_rows else '<p class="ok">No anomalies.</p>',
               _drift_table(outputs.get('DriftGate', {}).get(drift.DriftReport.TYPE_NAME)))

  model_run = outputs.get('Trainer', {}).get('ModelRun')
  trainer_config = _trainer_config(store, run.id)
  if trainer_config:
    page.section('Model and training',
                 _table(['setting', 'value'], sorted(
                     (k, v) for k, v in trainer_config.items() if k != 'class_names')))
    if train:
      page.parts.append('<h3>Augmentation (one image, five random flips and rotations)</h3>' +
                        page.picture('augmentation.png', augmentation_preview(
                            _feature(train[0], features.IMAGE_KEY), trainer_config['image_size'],
                            trainer_config['rotation_factor']), 'augmentation preview'))
  if model_run:
    history_path = os.path.join(model_run.uri, 'history.json')
    if tf.io.gfile.exists(history_path):
      with tf.io.gfile.GFile(history_path) as f:
        history = json.load(f)['history']
      epochs = [[i + 1] + [f'{history[k][i]:.4f}' for k in sorted(history)]
                for i in range(len(history.get('loss', [])))]
      page.parts.append('<h3>Training curves</h3>' + page.picture(
          'training_curves.png', training_curves(history), 'loss and accuracy per epoch')
                        + _table(['epoch'] + sorted(history), epochs))

  evaluation = outputs.get('Evaluator', {}).get('ModelEvaluation')
  if evaluation:
    parts = [_table(['metric (test split)', 'value'],
                    [[k, f'{v:.4f}'] for k, v in sorted(summary.test_metrics.items())])]
    reasons = blessing_reasons(evaluation.uri)
    parts.append('<p class="ok">Blessed: every threshold passed.</p>' if not reasons else
                 '<p class="bad">Not blessed:</p><ul>' + ''.join(
                     f'<li>{html.escape(r)}</li>' for r in reasons) + '</ul>')
    matrix = confusion_matrix(evaluation.uri, len(class_names))
    if matrix is not None:
      parts.append(page.picture('confusion_matrix.png',
                                confusion_matrix_chart(matrix, class_names), 'confusion matrix'))
    model = outputs.get('Trainer', {}).get('Model')
    if model and examples:
      mistakes = worst_mistakes(model.uri, read_examples(examples, 'test', MAX_PREDICTED),
                                class_names)
      parts.append('<h3>Worst mistakes on the test split</h3>' + (
          page.picture('mistakes.png', image_grid([
              ('', mistakes[i:i + GRID_COLUMNS]) for i in range(0, len(mistakes), GRID_COLUMNS)]),
                       'most confident misclassified test images')
          if mistakes else '<p class="ok">No test image is misclassified.</p>'))
    page.section('Evaluation', *parts)

  page.section('Components', _table(
      ['component', 'state', 'seconds'],
      [[node, state, f'{seconds:.1f}'] for node, (state, seconds) in summary.executions.items()]))
  started = time.localtime(run.create_time_since_epoch / 1000)
  title = f"Run {run.name} ({time.strftime('%Y-%m-%d %H:%M', started)})"
  path = os.path.join(output_dir, REPORT_FILE)
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(page.html(title))
  return path


def _trainer_config(store: metadata_store.MetadataStore, run_id: int) -> Dict[str, object]:
  """The Trainer's custom_config (hyperparameters) of this run's Trainer execution."""
  trainer = run_summary.run_executions(store, run_id).get('Trainer')
  if trainer is None or 'custom_config' not in trainer.custom_properties:
    return {}
  return json.loads(trainer.custom_properties['custom_config'].string_value or '{}')


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--pipeline-root', required=True)
  args = parser.parse_args(argv)
  print(write_report(os.path.join(args.pipeline_root, 'metadata.sqlite'),
                     os.path.join(args.pipeline_root, 'reports')))


if __name__ == '__main__':
  main()
