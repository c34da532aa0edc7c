"""The pushed model versions of a serving dir, each with what made it, and rollback.

A version is a numbered folder of the serving dir (the highest is the one a model server serves).
What made it is read from the pipeline root's MLMD through ``mlmd_runs`` and ``run_summary``, the
readers of the run report: the run that pushed it, its data, code version, trainer settings, test
metrics and blessing, and the TFLite check. A rollback republishes an earlier version's files as
the newest number with ``atomic_pusher.publish`` (one rename) and records itself inside the new
folder, in ``assets.extra/rollback.json``, where model servers ignore it.
"""
import dataclasses
import json
import os
import shutil
import time
import uuid
from typing import Any, Dict, List, Optional

from components import atomic_pusher
from components.image_example_gen.summary import SUMMARY_FILE
from components.tflite_check import RESULT_FILE as TFLITE_RESULT_FILE
from components.tflite_check import TFLiteEvaluation
from run_results import mlmd_runs
from run_results import run_summary
from run_results import tfma_results

ROLLBACK_FILE = os.path.join('assets.extra', 'rollback.json')


class RegistryError(Exception):
  """A version or a serving dir that is not there; the message says which."""


@dataclasses.dataclass
class ModelVersion:
  version: int
  path: str
  pushed_at: float  # seconds since the epoch
  rollback_of: Optional[int]  # the version republished, for a rollback
  run_id: Optional[str]  # the pipeline run that pushed the model (of rollback_of for a rollback)
  details: Dict[str, Any]  # what_made_it() of that run; empty when MLMD has no record


def _read_json(path: str) -> Dict[str, Any]:
  with open(path) as f:
    return json.load(f)


def _thresholds(run: mlmd_runs.Run) -> str:
  """The Evaluator's thresholds, e.g. 'SparseCategoricalAccuracy >= 0.8; PairedAccuracyTest change
  (HIGHER_IS_BETTER) 0.05', from the eval_config of the run's Evaluator execution."""
  evaluator = run.executions.get('Evaluator')
  if evaluator is None or 'eval_config' not in evaluator.custom_properties:
    return 'thresholds not recorded'
  config = json.loads(evaluator.custom_properties['eval_config'].string_value)
  found = []
  for spec in config.get('metrics_specs', []):
    for metric in spec.get('metrics', []):
      thresholds = [metric.get('threshold', {})] + [
          t.get('threshold', {}) for t in metric.get('per_slice_thresholds', [])]
      for threshold in thresholds:
        if 'lower_bound' in threshold.get('value_threshold', {}):
          found.append(f"{metric['class_name']} >= {threshold['value_threshold']['lower_bound']}")
        change = threshold.get('change_threshold')
        if change:
          found.append(f"{metric['class_name']} change ({change.get('direction', '')}) "
                       f"{change.get('absolute', 0)}")
  return '; '.join(found) or 'no thresholds'


def what_made_it(run: mlmd_runs.Run, pushed=None) -> Dict[str, Any]:
  """A pushed run's data, code version, trainer settings, metrics, blessing and TFLite figures."""
  summary = run_summary.from_run(run)
  examples = run.output('ImageExampleGen', 'Examples')
  example_gen = run.executions.get('ImageExampleGen')
  evaluation = run.output('Evaluator', 'ModelEvaluation')
  tflite = run.output('TFLiteCheck', TFLiteEvaluation.TYPE_NAME)
  settings = run_summary.trainer_config(run)
  class_names = list(settings.get('class_names', []))
  per_slice = tfma_results.sliced_metrics(evaluation.uri) if evaluation else {}
  for label, name in enumerate(class_names):  # 'label=0' -> 'label=0 (cats)'
    if f'label={label}' in per_slice:
      per_slice[f'label={label} ({name})'] = per_slice.pop(f'label={label}')
  reasons = tfma_results.blessing_reasons(evaluation.uri) if evaluation else []
  record = run_summary.training_record(run)
  return {
      'run_id': run.run_id,
      'data': {
          'root': example_gen.custom_properties['input_base'].string_value if example_gen else '',
          'span': examples.properties['span'].int_value if examples else None,
          'counts': (_read_json(os.path.join(examples.uri, SUMMARY_FILE))['counts']
                     if examples else {}),
          'files': summary.file_counts,
      },
      'code_version': (pushed.custom_properties['code_version'].string_value
                       if pushed is not None and 'code_version' in pushed.custom_properties
                       else '') or 'unknown',
      'trainer': {k: v for k, v in settings.items() if k != 'class_names'},
      'class_names': class_names,
      'test_metrics': per_slice,
      'per_class': summary.per_class,
      'decision': run_summary.decision_lines(summary),
      'training': {
          'hyperparameters': record.get('hyperparameters', {}),
          'tuner_trials': len(run_summary.tuner_trials(run)) if record.get('tuned') else 0,
          'best_epoch': record.get('best_epoch'),
          'class_weights': record.get('class_weights', {}),
      },
      'blessed': summary.blessed,
      'blessing_reason': (f'every TFMA threshold passed ({_thresholds(run)})' if summary.blessed
                          else '; '.join(reasons) or 'not evaluated'),
      'against_last_blessed': summary.comparison,
      'tflite': _read_json(os.path.join(tflite.uri, TFLITE_RESULT_FILE)) if tflite else {},
  }


def versions(serving_dir: str, metadata_path: Optional[str]) -> List[ModelVersion]:
  """Every version in ``serving_dir``, oldest first; RegistryError when there is none."""
  numbers = atomic_pusher.model_versions(serving_dir)
  if not numbers:
    what = 'does not exist' if not os.path.isdir(serving_dir) else 'holds no model versions'
    raise RegistryError(f'serving dir {serving_dir} {what}; run the pipeline first (make run)')
  store = (mlmd_runs.open_store(metadata_path)
           if metadata_path and os.path.isfile(metadata_path) else None)
  pushes = mlmd_runs.pushes(store) if store else {}
  found = []
  for number in numbers:
    path = os.path.join(serving_dir, str(number))
    rollback_file = os.path.join(path, ROLLBACK_FILE)
    rollback = _read_json(rollback_file) if os.path.isfile(rollback_file) else {}
    source = os.path.join(serving_dir, str(rollback['rollback_of'])) if rollback else path
    pushed, run_id = pushes.get(source, (None, None))
    details = what_made_it(mlmd_runs.find_run(store, run_id), pushed) if run_id else {}
    found.append(ModelVersion(
        version=number, path=path,
        pushed_at=rollback.get('at') or (pushed.create_time_since_epoch / 1000 if pushed
                                         else os.path.getmtime(path)),
        rollback_of=rollback.get('rollback_of'), run_id=run_id, details=details))
  return found


def find(all_versions: List[ModelVersion], version: str) -> ModelVersion:
  """The version numbered ``version``; RegistryError naming the known ones otherwise."""
  for candidate in all_versions:
    if str(candidate.version) == version.strip():
      return candidate
  raise RegistryError(f'no version {version!r} in the serving dir; its versions are '
                      + ', '.join(str(v.version) for v in all_versions))


def rollback(serving_dir: str, version: ModelVersion) -> int:
  """Republishes ``version`` as the newest version, atomically; returns the new number."""
  staging = os.path.join(serving_dir, atomic_pusher.STAGING_PREFIX + uuid.uuid4().hex)
  now = time.time()
  staged = os.path.join(staging, str(int(now)))  # numbered like TFX's pushes: the push time
  try:
    shutil.copytree(version.path, staged)
    os.makedirs(os.path.dirname(os.path.join(staged, ROLLBACK_FILE)), exist_ok=True)
    with open(os.path.join(staged, ROLLBACK_FILE), 'w') as f:
      json.dump({'rollback_of': version.rollback_of or version.version, 'at': now}, f)
    return int(atomic_pusher.publish(staged, serving_dir))
  finally:
    shutil.rmtree(staging, ignore_errors=True)
