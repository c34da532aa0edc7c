"""DriftGate, EmbeddingDriftGate and TFLiteCheck in real runs (local_runner's main, as a user
starts it): each stops a run that must not train or push, and ``--on-drift warn`` lets a drifted
run train.

A first run (a module fixture) trains a small CNN on a tree of the sample, is blessed and pushes:
it is every test's baseline (its accepted statistics, the embeddings of its training images) and
last blessed model. Each test then runs in a pipeline root of its own that starts from a copy of
the first run's MLMD store (the artifacts stay where the first run wrote them), so that it sees
the state after the first run and nothing another test did. About 2.5 minutes in all on 2 CPUs
(143 s measured beside other work; the first run 56 s, the warned run 28, the TFLite run 21).
"""
import re
import shutil

import pytest
import tensorflow as tf

import local_runner
from components import atomic_pusher
from components.modules import tflite_export
from runner import run_logging
from run_results import run_summary
from tests.trees import darkened_copy, grayscale_copy, make_tree

# A small CNN at 32 px: separates the sample's colours in 3 epochs (test accuracy 1.0).
FLAGS = ['--pipeline-name', 'gates', '--recipe', 'scratch', '--model', 'small_cnn',
         '--image-size', '32', '--epochs', '3']
# Nodes that run only once every data check passed.
TRAINING = {'Transform', 'Trainer', 'Evaluator', 'TFLiteCheck', 'Pusher'}
# Below the smallest p-value of the embedding test's 500 permutations (1/501): the embedding gate
# cannot trip, whatever the images.
EMBEDDING_GATE_OFF = ['--drift-embedding-p-value', '0.001']
# Above any Jensen-Shannon divergence (at most 1): the DriftGate lets every image property through.
IMAGE_PROPERTIES_GATE_OFF = ['--drift-numeric-js', '1.5']


def _main(root, data, *flags) -> int:
  return local_runner.main(['--data-root', str(data),
                            '--pipeline-root', str(root / 'pipeline_root'),
                            '--serving-dir', str(root / 'serving'), *FLAGS, *flags])


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
  """(the first run's folder, its data root): 20 images of each class to train on, 15 of each in
  validation/ (eval and test)."""
  root = tmp_path_factory.mktemp('first')
  data = make_tree(str(root / 'data'), {'train': {'cats': 20, 'dogs': 20},
                                        'validation': {'cats': 15, 'dogs': 15}})
  assert _main(root, data) == 0
  summary = run_summary.summarize(str(root / 'pipeline_root' / 'metadata.sqlite'))
  assert summary.blessed and summary.pushed_to, summary
  return root, data


def _run_after_the_first(first_run, root, data, *flags):
  """local_runner's exit status and the run's summary, in ``root`` after the first run."""
  (root / 'pipeline_root').mkdir(parents=True)
  shutil.copy(first_run[0] / 'pipeline_root' / 'metadata.sqlite', root / 'pipeline_root')
  status = _main(root, data, *flags)
  summary = run_summary.summarize(str(root / 'pipeline_root' / 'metadata.sqlite'))
  return status, summary


def _states(summary):
  return {node: state for node, (state, _) in summary.executions.items()}


def _error_line(stderr: str) -> str:
  """local_runner's one error line; no traceback."""
  errors = [line for line in stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1 and 'Traceback' not in stderr, stderr
  return errors[0]


def _assert_nothing_pushed(first_run, root, summary):
  assert 'Pusher' not in summary.executions and summary.pushed_to is None
  assert atomic_pusher.model_versions(str(root / 'serving')) == []
  assert len(atomic_pusher.model_versions(str(first_run[0] / 'serving'))) == 1


def test_darker_images_stop_the_run_at_the_drift_gate(first_run, tmp_path, capfd):
  """The training images at 40 % of their brightness, with the embedding gate unable to trip: the
  DriftGate stops the run before Transform, with the scores in one line, and the drifted
  statistics do not become the baseline."""
  capfd.readouterr()
  data = darkened_copy(first_run[1], str(tmp_path / 'darker'))
  status, summary = _run_after_the_first(first_run, tmp_path, data, *EMBEDDING_GATE_OFF)
  stderr = capfd.readouterr().err
  assert status == 1, stderr
  error = _error_line(stderr)
  assert re.fullmatch(
      r'error: DataDriftError: the data drifted from the baseline, the last data that passed '
      r'this check \(train_train: .*mean_brightness Jensen-Shannon 1\.000 > 0\.2.*\); the whole '
      r'report is in the log with --verbose .*Check the new images .*', error), error
  states = _states(summary)
  assert states['DriftGate'] == 'FAILED'
  # If the embedding gate ran first, it passed.
  assert states.get('EmbeddingDriftGate', 'COMPLETE') == 'COMPLETE'
  # Not accepted: the next run is still compared with the first run's statistics.
  assert 'AcceptedStatistics' not in states
  assert not TRAINING & set(states)
  _assert_nothing_pushed(first_run, tmp_path, summary)


def test_on_drift_warn_trains_on_drifted_images(first_run, tmp_path, capfd, caplog):
  """Grey copies of the training images drift from both baselines: the image properties'
  (saturation) and the blessed model's embeddings. With --on-drift warn each gate warns and the
  run trains, evaluates and ends well."""
  capfd.readouterr()
  data = grayscale_copy(first_run[1], str(tmp_path / 'grey'))
  status, summary = _run_after_the_first(first_run, tmp_path, data, '--on-drift', 'warn')
  assert status == 0, capfd.readouterr().err
  warnings = sorted(r.getMessage() for r in caplog.records
                    if 'training anyway (--on-drift warn)' in r.getMessage())
  assert len(warnings) == 2, warnings  # one per gate, in whichever order they ran
  # Both are among what a run shows without --verbose.
  shown = run_logging._ProgressFilter()  # pylint: disable=protected-access
  assert all(shown.filter(r) for r in caplog.records
             if 'training anyway (--on-drift warn)' in r.getMessage())
  assert re.fullmatch(r'DriftGate: the data drifted from the baseline \(train_train: .*mean_saturation '
                      r'Jensen-Shannon \d\.\d+ > 0\.2.*\); training anyway \(--on-drift warn\)\.',
                      warnings[0]), warnings[0]
  assert re.fullmatch(r"EmbeddingDriftGate: the training images drifted from the blessed model's "
                      r'\(domain classifier ROC AUC \d\.\d+ >= 0\.6, MMD p-value .*\); training anyway '
                      r'\(--on-drift warn\)\.', warnings[1]), warnings[1]
  states = _states(summary)
  assert {states[node] for node in ('DriftGate', 'EmbeddingDriftGate', 'AcceptedStatistics',
                                    'Transform', 'Trainer', 'Evaluator', 'TFLiteCheck')} == {
                                        'COMPLETE'}
  assert summary.blessed is not None  # the Evaluator gave its verdict


def test_new_looking_images_stop_the_run_at_the_embedding_gate(first_run, tmp_path, capfd):
  """Grey copies of the training images, with the DriftGate letting every image property through:
  the blessed model's embeddings of them differ from those of its training images, and the
  embedding gate alone stops the run."""
  capfd.readouterr()
  data = grayscale_copy(first_run[1], str(tmp_path / 'grey'))
  status, summary = _run_after_the_first(first_run, tmp_path, data, *IMAGE_PROPERTIES_GATE_OFF)
  stderr = capfd.readouterr().err
  assert status == 1, stderr
  assert re.fullmatch(
      r"error: EmbeddingDriftError: the training images show something else than the blessed "
      r"model's training images \(domain classifier ROC AUC \d\.\d+ >= 0\.6, MMD p-value "
      r'0\.00\d+ \(drift needs < 0\.01\).*\)\. Check the new images .*', _error_line(stderr))
  states = _states(summary)
  assert states['EmbeddingDriftGate'] == 'FAILED'
  assert states.get('DriftGate', 'COMPLETE') == 'COMPLETE'  # if it ran first, it passed
  assert not TRAINING & set(states)
  _assert_nothing_pushed(first_run, tmp_path, summary)


def _class_swapping(convert):
  """tflite_export.convert gone wrong: the TFLite model answers the other class."""
  def swapped_convert(model, image_size, quantization=tflite_export.QUANTIZATION):
    swapped = tf.keras.layers.Lambda(lambda logits: tf.reverse(logits, axis=[-1]))(model.output)
    return convert(tf.keras.Model(model.input, swapped), image_size, quantization)
  return swapped_convert


def test_a_blessed_model_with_a_damaged_tflite_copy_is_not_pushed(first_run, tmp_path, capfd,
                                                                   monkeypatch):
  """The Trainer runs in this process (LocalDagRunner): its TFLite conversion, patched, swaps the
  classes. The SavedModel is blessed; TFLiteCheck measures its TFLite copy on the test split and
  stops the run before the Pusher."""
  capfd.readouterr()
  monkeypatch.setattr(tflite_export, 'convert', _class_swapping(tflite_export.convert))
  # One more epoch than the first run: the Trainer trains again instead of the cache handing back
  # the first run's model (the data and every check before the Trainer come from the cache).
  status, summary = _run_after_the_first(first_run, tmp_path, first_run[1], '--epochs', '4')
  stderr = capfd.readouterr().err
  assert status == 1, stderr
  match = re.fullmatch(
      r"error: TFLiteAccuracyError: the TFLite model's test accuracy (\d\.\d+) is (\d\.\d+) below "
      r"the SavedModel's (\d\.\d+) on (\d+) test images \(its images signature, fed the Transform "
      r"graph's output; at most 0\.01 allowed, --tflite-max-accuracy-drop\); nothing is pushed\."
      r'', _error_line(stderr))
  assert match, stderr
  tflite_accuracy, drop, accuracy, _ = (float(x) for x in match.groups())
  assert tflite_accuracy == pytest.approx(1 - accuracy, abs=1e-4) and drop > 0.01
  states = _states(summary)
  assert states['Trainer'] == 'COMPLETE' and states['TFLiteCheck'] == 'FAILED'
  assert states['ImageExampleGen'] == 'CACHED'
  assert summary.blessed
  _assert_nothing_pushed(first_run, tmp_path, summary)
