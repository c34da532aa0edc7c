"""A model card (Markdown and HTML) per pushed version, from MLMD and the run's artifacts.

model-card-toolkit pins TFMA < 0.42 and cannot share this environment, so the card is written
from the readers of the run report and of ``versions.py`` (``run_results/registry.py``,
``mlmd_runs``, ``run_summary``): the run that pushed the version, its data and their checks, the
drift baseline, the test metrics overall and per class with the test set's size, the blessing,
and the TFLite figures. ``local_runner.py`` writes the card of the version it pushed;
``python versions.py card VERSION`` writes any version's.
"""
import math
import os
import time
from typing import Dict, List, Sequence, Tuple

import markdown

from components.drift.drift_gate import DriftReport
from components.label_balance import LabelBalanceReport
from components.modules import tflite_model
from pipeline import configs
from run_results import mlmd_runs
from run_results import registry
from run_results import run_summary
from run_results.registry import ModelVersion

CARD_FILE = 'model_card'  # .md and .html
SAMPLE_DATA_MARK = os.path.join('data', 'sample')


def cards_dir(pipeline_root: str) -> str:
  return os.path.join(pipeline_root, 'model_cards')


def wilson_interval(right: float, total: int, z: float = 1.96) -> Tuple[float, float]:
  """95 % Wilson score interval of an accuracy measured on ``total`` images."""
  if not total:
    return 0.0, 1.0
  share = right / total
  centre = (share + z * z / (2 * total)) / (1 + z * z / total)
  half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (
      1 + z * z / total)
  return max(0.0, centre - half), min(1.0, centre + half)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> List[str]:
  return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header),
          *('| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows), '']


def _data_checks(run: mlmd_runs.Run) -> List[str]:
  balance = run.output('LabelBalance', LabelBalanceReport.TYPE_NAME)
  drift = run.output('DriftGate', DriftReport.TYPE_NAME)
  accepted = run.output('AcceptedStatistics', 'ExampleStatistics')
  lines = []
  if balance is not None:
    lines.append(f"- Class balance (LabelBalance): training split max/min images per class "
                 f"{balance.custom_properties['train_ratio'].double_value:.2f}"
                 + (f", {balance.custom_properties['warnings'].int_value} warning(s) in the run's "
                    'report' if balance.custom_properties['warnings'].int_value else '') + '.')
  anomalies = run.output('ExampleValidator', 'ExampleAnomalies')
  if anomalies is not None:
    lines.append(f'- Schema anomalies (ExampleValidator): recorded in `{anomalies.uri}`.')
  if drift is not None:
    lines.append('- Drift (DistributionValidator, DriftGate): ' + (
        'compared with the baseline, the last data that passed this check; '
        + ('DRIFT flagged (run with --on-drift warn).' if drift.custom_properties[
            'drifted'].int_value else 'no drift beyond the thresholds.')
        if drift.custom_properties['has_baseline'].int_value
        else 'no baseline yet (a first run).'))
  if accepted is not None:
    lines.append(f'- Drift baseline: this data\'s statistics became the baseline of the next runs '
                 f'(`{accepted.uri}`).')
  quality = run_summary.data_quality(run)
  if quality:
    lines.append(f'- Data quality (DataQuality): {run_summary.data_quality_line(quality)}.')
  return lines + ['']


def markdown_card(version: ModelVersion, run: mlmd_runs.Run) -> str:
  """The card of ``version``, pushed by ``run``."""
  d = version.details
  settings, data, tflite = d['trainer'], d['data'], d['tflite']
  sample = SAMPLE_DATA_MARK in data['root']
  names = d['class_names']
  lines = [f"# Model card: {len(names)}-class image classifier, version {version.version}", '',
           f"Pushed {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(version.pushed_at))} by "
           f"pipeline run `{version.run_id}`"
           + (f', republished from version {version.rollback_of} (rollback)'
              if version.rollback_of else '') + f"; code version `{d['code_version']}`.", '',
           '## Model', '',
           f"{settings.get('model')} (alpha {settings.get('alpha')}, weights "
           f"{settings.get('weights')}), {settings.get('image_size')} px inputs, classes "
           f"{', '.join(d['class_names'])}. SavedModel signatures `serving_default` (tf.Examples) "
           'and `serving_image_bytes` (encoded images); both run the Transform graph. TFLite copy '
           f'`{tflite_model.TFLITE_DIR}/{tflite_model.TFLITE_FILE}` ({tflite_model.QUANTIZATION} '
           'quantised), input contract in '
           f'`{tflite_model.TFLITE_DIR}/{tflite_model.CONTRACT_FILE}`.', '',
           '## Intended use and limits', '',
           '- Classifies a photo as one of the classes above; it always answers one of them, also '
           'for a photo of none of them (the `serving_image_embedding` signature and predict.py '
           'flag such photos as out of distribution).',
           '- Any image size; the image is resized to a square, so the aspect ratio is not kept.',
           '- Measured on the test split below only; the interval says how little a small test '
           'split can tell.']
  if sample:
    lines.append('- **Trained on the embedded synthetic sample (coloured shapes): it shows the '
                 "pipeline's mechanics and is not a model of real cats and dogs.**")
  lines += ['', '## Training data and its checks', '',
            f"Data root `{data['root']}`, span {data['span']}; "
            f"{data['files'].get('images_used', '?')} of {data['files'].get('files_seen', '?')} "
            f"files used, {data['files'].get('files_skipped', '?')} skipped.", '',
            *_table(['split'] + d['class_names'], [
                [split] + [counts.get(name, 0) for name in d['class_names']]
                for split, counts in data['counts'].items()]),
            *_data_checks(run),
            '## Test metrics', '']
  overall = d['test_metrics'].get('overall', {})
  total = int(overall.get('example_count', 0))
  if 'sparse_categorical_accuracy' in overall:
    low, high = wilson_interval(overall['sparse_categorical_accuracy'] * total, total)
    lines += _table(['test images', 'accuracy (95 % interval, Wilson)', 'balanced accuracy',
                     'macro-F1'],
                    [[total, f"{overall['sparse_categorical_accuracy']:.4f} ({low:.3f} - "
                      f"{high:.3f})", f"{overall.get('balanced_accuracy', float('nan')):.4f}",
                      f"{overall.get('macro_f1', float('nan')):.4f}"]])
  rows = []
  for name, metrics in d.get('per_class', {}).items():
    images = int(metrics.get('images', 0))
    low, high = wilson_interval(metrics.get('recall', 0) * images, images)
    rows.append([name, images, f"{metrics.get('recall', 0):.4f} ({low:.3f} - {high:.3f})",
                 f"{metrics.get('precision', 0):.4f}",
                 f"{metrics['auc']:.4f}" if 'auc' in metrics else '-'])
  lines += _table(['class', 'test images', 'recall (95 % interval)', 'precision',
                   'AUC (one vs rest)'], rows)
  lines += [f"Blessing: {'blessed' if d['blessed'] else 'NOT blessed'}, {d['blessing_reason']}."]
  lines += [f'- {line}' for line in d.get('decision', [])]
  if d['against_last_blessed']:
    lines.append('Against the last blessed model on the same test images: ' + ', '.join(
        f'{k} {v:.4g}' for k, v in sorted(d['against_last_blessed'].items())) + '.')
  lines.append('')
  if tflite:
    lines += ['## TFLite', '', *_table(
        ['model', 'test accuracy', 'size (bytes)'],
        [['SavedModel', f"{tflite['saved_model']['accuracy']:.4f}", tflite['saved_model_bytes']],
         ['TFLite', f"{tflite['tflite']['accuracy']:.4f}", tflite['tflite_bytes']]]),
              f"On the same {tflite['example_count']} test images; the two agree on "
              f"{tflite['agreement']:.1%} of them; allowed accuracy drop "
              f"{tflite['max_accuracy_drop']}.", '']
  training = d.get('training', {})
  if training.get('hyperparameters'):
    chosen = ', '.join(f'{name} {value:.4g}' for name, value in
                       sorted(training['hyperparameters'].items()))
    lines += ['## Training', '',
              f"Head hyperparameters: {chosen} ("
              + (f"the best of the Tuner's {training['tuner_trials']} trials"
                 if training.get('tuner_trials') else "the recipe's; not tuned") + ')'
              + (f"; best epoch {training['best_epoch']} kept (early stopping on the "
                 'class-balanced eval loss)' if training.get('best_epoch') else '') + '.']
    if training.get('class_weights'):
      lines.append('Class weights in the training loss: ' + ', '.join(
          f'{name} {weight:.3g}' for name, weight in training['class_weights'].items()) + '.')
    lines.append('')
  lines += ['## Trainer settings', '', *_table(['setting', 'value'], sorted(settings.items()))]
  return '\n'.join(lines)


def write_card(version: ModelVersion, run: mlmd_runs.Run, output_dir: str) -> Dict[str, str]:
  """Writes ``model_card.md`` and ``model_card.html`` into ``output_dir``; returns their paths."""
  os.makedirs(output_dir, exist_ok=True)
  text = markdown_card(version, run)
  body = markdown.markdown(text, extensions=['tables'])
  page = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          f'<title>Model card, version {version.version}</title><style>'
          'body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:'
          'collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>'
          f'{body}</body></html>\n')
  paths = {'md': os.path.join(output_dir, CARD_FILE + '.md'),
           'html': os.path.join(output_dir, CARD_FILE + '.html')}
  for kind, content in (('md', text), ('html', page)):
    with open(paths[kind], 'w') as f:
      f.write(content)
  return paths


def write_for_version(serving_dir: str, pipeline_root: str, version: str) -> Dict[str, str]:
  """Writes the card of ``version`` of ``serving_dir`` into the pipeline root's
  ``model_cards/<version>/``; RegistryError when the version or its record is missing."""
  metadata_path = configs.metadata_path_of(pipeline_root)
  chosen = registry.find(registry.versions(serving_dir, metadata_path), version)
  if not chosen.run_id:
    raise registry.RegistryError(f'version {chosen.version} has no record in the MLMD of '
                                 f'{pipeline_root}; pass the pipeline root that pushed it')
  run = mlmd_runs.find_run(mlmd_runs.open_store(metadata_path), chosen.run_id)
  return write_card(chosen, run, os.path.join(cards_dir(pipeline_root), str(chosen.version)))
