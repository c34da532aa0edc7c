"""The whole pipeline on the embedded sample data, asserted through MLMD like TFX's penguin e2e test.

The main pipeline root runs the transfer recipe (the one for users' images: a frozen pretrained
base, its features computed once by BulkInferrer, the head tuned by the Tuner) with the small
pretrained base of ../shared at 64 px; the second root runs the sample's own recipe (from scratch).
One test, because every LocalDagRunner run costs a minute or more; in order it shows that
* a run killed in the middle of the Trainer completes on a plain re-run, without clean-up, and
  that re-run's drift check compares its data with the statistics the killed run accepted;
* a model trained on swapped labels is not blessed and nothing is pushed, while that run shares
  the machine with another pipeline root (neither disturbs the other); its unbalanced training
  split (60 to 40) is a LabelBalance warning, not a stop;
* the pushed model serves raw JPEG bytes;
* a model worse than the last blessed one is not pushed even when it passes the absolute gate;
* unchanged inputs are served from the cache;
* a retrain as good as the served model is pushed as a second version (with its TFLite model and
  warm-up requests), a rollback republishes the first, versions.py lists the three and predict.py
  uses the rolled-back one;
* validate.py finds the new images that repeat the run's training images (data quality);
* the run report renders, last in headless Chromium (a reported skip where it is not installed,
  a failure in CI).
Takes about 4 minutes on 2 idle CPUs (215 s measured).
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from PIL import Image
import pytest
import tensorflow as tf
from tfx.components.distribution_validator import executor as distribution_validator_executor
from tfx.orchestration import metadata

import local_runner
import versions
import predict
import validate
from components import atomic_pusher
from components.drift import drift_comparison
from components.drift import drift_gate
from components.modules import features
from components.modules import tflite_export
from components.modules import warmup
from components.tflite_check import TFLiteEvaluation
from run_results import mlmd_runs
from run_results import model_card
from run_results import run_summary
from components.label_balance import LabelBalanceReport
from tests.conftest import require_shared, WEIGHTS_035
from tests.report_checks import assert_report_renders, browser_screenshot
from tests.trees import REPO_ROOT, SAMPLE_DATA, make_tree

# The sample's recipe (a base trained from scratch on the images).
SCRATCH_NODES = {'ImageExampleGen', 'StatisticsGen', 'SchemaGen', 'ImageSchema', 'LabelBalance',
                 'ExampleValidator', 'baseline_statistics_resolver', 'DistributionValidator',
                 'DriftGate', 'AcceptedStatistics', 'Transform', 'Trainer',
                 'latest_blessed_model_resolver', 'EmbeddingDriftGate', 'Evaluator',
                 'TFLiteCheck', 'Pusher'}
# The transfer recipe: the base's features computed once, the head tuned on them.
NODES = SCRATCH_NODES | {'FeatureExtractor', 'BaseFeatures', 'DataQuality', 'Tuner'}
# Resolvers look up MLMD on every run; they are never 'CACHED'.
RESOLVERS = {'latest_blessed_model_resolver', 'baseline_statistics_resolver'}
# Finished before the kill, so cached in the re-run. (DistributionValidator and DriftGate run again
# there: the killed run's accepted statistics are now their baseline.)
BEFORE_TRAINER = {'ImageExampleGen', 'StatisticsGen', 'SchemaGen', 'ImageSchema', 'LabelBalance',
                  'ExampleValidator', 'AcceptedStatistics', 'EmbeddingDriftGate', 'Transform',
                  'FeatureExtractor', 'BaseFeatures', 'DataQuality', 'Tuner'}
# The main root's recipe: the small pretrained base at 64 px, a quick search.
TRANSFER_FLAGS = ['--weights', WEIGHTS_035, '--image-size', '64', '--tuner-trials', '3']


def _runner_command(root, *flags):
  return [sys.executable, os.path.join(REPO_ROOT, 'local_runner.py'),
          '--pipeline-root', str(root / 'pipeline_root'), '--serving-dir', str(root / 'serving'),
          *flags]


def _main_command(root, *flags):
  """The main root's runs: the sample with the transfer recipe."""
  return _runner_command(root, '--recipe', 'transfer', *TRANSFER_FLAGS, *flags)


def _start(command, log_path):
  """Starts a local_runner process in its own process group, its output going to ``log_path``."""
  with open(log_path, 'w') as log:
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**os.environ, 'TF_USE_LEGACY_KERAS': '1', 'PYTHONUNBUFFERED': '1'})


def _kill_once_training(process, pipeline_root):
  """Kills the whole process group as soon as the Trainer has started: its output folders exist
  (the head trains on the base's features in a second or two, so there is no later moment)."""
  deadline = time.time() + 900
  while not glob.glob(os.path.join(pipeline_root, 'Trainer', '*', '*')):
    assert process.poll() is None, f'the run ended before the Trainer trained ({process.returncode})'
    assert time.time() < deadline, 'the Trainer did not start training'
    time.sleep(0.2)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()


def _swapped_labels(root: str) -> str:
  """The sample with cat and dog training folders swapped: a model that learns it is wrong. Its
  training split is unbalanced, 60 cats to 35 dogs: above the warning ratio of 1.5."""
  shutil.copytree(SAMPLE_DATA, root)
  train = os.path.join(root, 'train')
  os.rename(os.path.join(train, 'cats'), os.path.join(train, 'swap'))
  os.rename(os.path.join(train, 'dogs'), os.path.join(train, 'cats'))
  os.rename(os.path.join(train, 'swap'), os.path.join(train, 'dogs'))
  for name in sorted(os.listdir(os.path.join(train, 'dogs')))[35:]:
    os.remove(os.path.join(train, 'dogs', name))
  return root


def _config(root, *flags):
  args = local_runner.build_parser().parse_args(_main_command(root, *flags)[2:])
  return local_runner.config_from_args(args)


def _states(summary):
  return {node: state for node, (state, _) in summary.executions.items()}


def _ran(*nodes, of=NODES):
  """The states of a run in which ``nodes`` ran to completion and every other node was cached."""
  return {node: 'COMPLETE' if node in nodes else 'CACHED' for node in of}


def _store(metadata_path):
  return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))


def _artifact_ids(store, execution, event_type, key):
  """Ids of the artifacts ``execution`` read (INPUT) or wrote (OUTPUT) under ``key``."""
  return [event.artifact_id for event in store.get_events_by_execution_ids([execution.id])
          if event.type == event_type and event.path.steps and event.path.steps[0].key == key]


def _assert_compared_with_the_killed_runs_statistics(metadata_path):
  """The re-run's DistributionValidator read, as its baseline, the statistics that the killed run's
  AcceptedStatistics published, and found no drift: they are the same data (StatisticsGen was
  cached), so every compared feature scores 0."""
  store = _store(metadata_path)
  killed_run, rerun = sorted(store.get_contexts_by_type('pipeline_run'), key=lambda c: c.id)
  accepted = _artifact_ids(store, mlmd_runs.find_run(store, killed_run.name).executions[
      'AcceptedStatistics'], metadata_store_pb2.Event.OUTPUT, drift_gate.ACCEPTED_KEY)
  executions = mlmd_runs.find_run(store, rerun.name).executions
  validator = executions['DistributionValidator']
  assert len(accepted) == 1
  assert _artifact_ids(store, validator, metadata_store_pb2.Event.INPUT,
                       'baseline_statistics') == accepted
  (anomalies_id,) = _artifact_ids(store, validator, metadata_store_pb2.Event.OUTPUT, 'anomalies')
  [anomalies] = store.get_artifacts_by_id([anomalies_id])
  assert dict(anomalies.custom_properties['blessed'].struct_value) == {
      'train_train': distribution_validator_executor.BLESSED_VALUE}
  (report_id,) = _artifact_ids(store, executions['DriftGate'], metadata_store_pb2.Event.OUTPUT,
                               'report')
  [report] = store.get_artifacts_by_id([report_id])
  assert report.custom_properties['has_baseline'].int_value == 1
  assert report.custom_properties['drifted'].int_value == 0
  with open(os.path.join(report.uri, drift_gate.REPORT_FILE)) as f:
    rows = json.load(f)['split_pairs']['train_train']
  assert {row['feature']: (row['score'], row['flagged']) for row in rows} == {
      feature: (0.0, False) for feature in drift_comparison.COMPARED_FEATURES}


def _assert_pushed_folder_serves(folder: str) -> None:
  """TFLite model and contract beside the SavedModel; the warm-up requests replay through it."""
  assert os.path.isfile(tflite_export.tflite_path(folder))
  with open(os.path.join(folder, tflite_export.TFLITE_DIR, tflite_export.CONTRACT_FILE)) as f:
    assert json.load(f)['class_names'] == ['cats', 'dogs']
  loaded = tf.saved_model.load(folder)
  logs = list(warmup.read(folder))
  assert {log.predict_log.request.model_spec.signature_name for log in logs} == {
      'serving_default', features.IMAGE_BYTES_SIGNATURE}
  for log in logs:
    outputs = warmup.replay(loaded, log)
    assert outputs[features.PROBABILITIES_OUTPUT].shape == (warmup.WARMUP_IMAGES, 2)


def _assert_registry_after_a_second_push_and_a_rollback(main, config, capsys):
  """A retrain as good as the served model is pushed as a second version; rolling back to the
  first republishes it as the newest number; versions.py lists the three, predict.py uses the
  rolled-back model, and each has its model card."""
  root_flags = ['--pipeline-root', config.pipeline_root, '--serving-dir', config.serving_dir]
  capsys.readouterr()
  assert local_runner.main(root_flags + ['--recipe', 'transfer', *TRANSFER_FLAGS,
                                         '--epochs', '60']) == 0
  assert 'model card: ' in capsys.readouterr().out
  first, second = atomic_pusher.model_versions(config.serving_dir)
  _assert_pushed_folder_serves(os.path.join(config.serving_dir, str(second)))
  store = _store(config.metadata_path)
  run_of = {os.path.basename(folder.rstrip('/')): run_id
            for folder, (_, run_id) in mlmd_runs.pushes(store).items()}
  assert sorted(run_of) == sorted([str(first), str(second)])
  pushing_runs = [run_of[str(first)], run_of[str(second)]]
  for run_id in pushing_runs:  # the pipeline measured and passed each pushed TFLite model
    evaluation = mlmd_runs.find_run(store, run_id).output('TFLiteCheck', TFLiteEvaluation.TYPE_NAME)
    assert evaluation.custom_properties['accuracy_drop'].double_value <= 0.01
    assert evaluation.custom_properties['example_count'].int_value > 0

  assert versions.main(['rollback', str(first)] + root_flags) == 0
  capsys.readouterr()
  assert versions.main(['list'] + root_flags) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 3, lines
  third = atomic_pusher.model_versions(config.serving_dir)[-1]
  assert lines[0].startswith(f'  {first}') and f'run {pushing_runs[0]}' in lines[0]
  assert lines[1].startswith(f'  {second}') and f'run {pushing_runs[1]}' in lines[1]
  assert lines[2].startswith(f'* {third}') and f'rollback of {first}' in lines[2]
  assert f'run {pushing_runs[0]}' in lines[2]  # what made the model it republished

  image = os.path.join(SAMPLE_DATA, 'validation', 'cats')
  assert predict.main([image, '--pipeline-root', config.pipeline_root]) == 0
  assert f'model: {os.path.join(config.serving_dir, str(third))};' in capsys.readouterr().err

  cards = model_card.cards_dir(config.pipeline_root)
  with open(os.path.join(cards, str(second), 'model_card.md')) as f:
    card = f.read()  # written by local_runner for the version its run pushed
  assert f'version {second}' in card and f'pipeline run `{pushing_runs[1]}`' in card
  assert versions.main(['card', str(third)] + root_flags) == 0
  with open(os.path.join(cards, str(third), 'model_card.md')) as f:
    card = f.read()
  assert f'pipeline run `{pushing_runs[0]}`' in card and f'from version {first} (rollback)' in card
  assert os.path.isfile(os.path.join(cards, str(third), 'model_card.html'))


def _assert_validate_finds_new_images_that_repeat_training_images(tmp_path, config, capsys):
  """validate.py's data-quality check against the run's training images: of 12 new images, the 6
  copied from train/ are found as duplicates of training images."""
  new = make_tree(str(tmp_path / 'new'), {'train': {'cats': 3, 'dogs': 3},
                                          'validation': {'cats': 3, 'dogs': 3}})
  for name in ('cats', 'dogs'):  # class folders only
    os.makedirs(os.path.join(new, 'all', name))
    for split in ('train', 'validation'):
      for file_name in os.listdir(os.path.join(new, split, name)):
        os.rename(os.path.join(new, split, name, file_name),
                  os.path.join(new, 'all', name, f'{split}_{file_name}'))
  capsys.readouterr()
  status = validate.main(['--data-root', os.path.join(new, 'all'), '--pipeline-root',
                          config.pipeline_root, '--output-dir', str(tmp_path / 'validation')])
  report = capsys.readouterr().out
  assert status == validate.EXIT_DRIFT, report
  assert 'data quality: 6 of 12 new images duplicate training images, e.g. ' in report, report
  assert 'repeats its training images' in report


@pytest.mark.e2e
def test_pipeline_recovers_gates_and_caches(tmp_path, capsys):
  require_shared(WEIGHTS_035)
  main, other = tmp_path / 'main', tmp_path / 'other'
  config = _config(main)

  # A second pipeline root, trained on swapped labels, runs beside the main one throughout.
  bad_log = tmp_path / 'other.log'
  bad_run = _start(_runner_command(
      other, '--data-root', _swapped_labels(str(tmp_path / 'swapped')), '--recipe', 'scratch',
      '--epochs', '3'), bad_log)

  # The main run is killed while it trains, then simply run again.
  _kill_once_training(_start(_main_command(main), tmp_path / 'killed.log'),
                      config.pipeline_root)
  assert not os.path.exists(config.serving_dir)
  local_runner.run(config)
  first = run_summary.summarize(config.metadata_path)
  assert _states(first) == _ran(*(NODES - BEFORE_TRAINER))
  _assert_compared_with_the_killed_runs_statistics(config.metadata_path)
  assert first.blessed
  assert first.test_metrics['balanced_accuracy'] >= config.gate_minimum(2) == 0.75
  (version,) = atomic_pusher.model_versions(config.serving_dir)
  assert os.listdir(config.serving_dir) == [str(version)]  # no staging folder is left
  assert first.pushed_to == os.path.join(config.serving_dir, str(version))

  # The pushed model classifies raw JPEG bytes through the same Transform graph.
  model = tf.saved_model.load(first.pushed_to)
  paths = sorted(glob.glob(os.path.join(SAMPLE_DATA, 'validation', '*', '*.jpg')))[::10]
  images = tf.constant([open(path, 'rb').read() for path in paths])
  names = model.signatures[features.IMAGE_BYTES_SIGNATURE](image_bytes=images)[
      features.CLASS_NAMES_OUTPUT].numpy()
  expected = [os.path.basename(os.path.dirname(path)).encode() for path in paths]
  assert sum(a == b for a, b in zip(names, expected)) >= 0.8 * len(paths)

  # The run's report shows every section, and its pictures render.
  report_path = local_runner.write_run_report(config)
  assert report_path.startswith(config.pipeline_root)
  headings = assert_report_renders(report_path)
  assert {'Outcome', 'Data', 'Data checks', 'Model and training', 'Training curves',
          'Evaluation', 'Worst mistakes on the test split', 'Components'} <= set(headings)
  page = open(report_path, encoding='utf-8').read()
  assert 'Model blessed and pushed to' in page and first.pushed_to in page

  # The swapped-label model fails the absolute gate: not blessed, nothing pushed. Its unbalanced
  # training split was a warning, not a stop.
  assert bad_run.wait(timeout=1200) == 0, bad_log.read_text()
  output = bad_log.read_text()
  assert 'model NOT blessed' in output
  assert 'images: 195 of 195 files used, 0 skipped' in output
  assert 'splits: train 95 from train/, eval ' in output
  assert re.search(r'gate: balanced accuracy 0\.\d+ < 0\.75 \(halfway from chance, 0\.5 for 2 '
                   r'classes, to 1\): FAILED', output), output[-2000:]
  assert ("LabelBalance: split 'train' is unbalanced: max/min images per class 1.71 > 1.5 "
          "({'cats': 60, 'dogs': 35}); the training loss weighs every class the same") in output
  other_config = _config(other, '--recipe', 'scratch')
  bad = run_summary.summarize(other_config.metadata_path)
  assert _states(bad) == _ran(*SCRATCH_NODES, of=SCRATCH_NODES)
  balance = mlmd_runs.find_run(_store(other_config.metadata_path), bad.run_id).output(
      'LabelBalance', LabelBalanceReport.TYPE_NAME)
  assert balance.custom_properties['warnings'].int_value == 2  # and the small test split's
  assert balance.custom_properties['train_ratio'].double_value == pytest.approx(60 / 35)
  assert bad.blessed is False and bad.pushed_to is None
  # The Evaluator wrote its verdict: a blessing whose value is 0, not a missing blessing.
  (blessing,) = _store(other_config.metadata_path).get_artifacts_by_type('ModelBlessing')
  assert 'blessed' in blessing.custom_properties
  assert blessing.custom_properties['blessed'].int_value == 0
  assert os.path.exists(os.path.join(blessing.uri, 'NOT_BLESSED'))
  assert bad.test_metrics['balanced_accuracy'] < other_config.gate_minimum(2)
  assert atomic_pusher.model_versions(other_config.serving_dir) == []

  # Unchanged inputs: everything up to the Trainer comes from the cache. The Evaluator runs again
  # because it now has a baseline (the model blessed by the first run), and so do the Pusher and
  # EmbeddingDriftGate (which compares with that model's training embeddings).
  local_runner.run(config)
  second = run_summary.summarize(config.metadata_path)
  assert _states(second) == _ran(*RESOLVERS, 'EmbeddingDriftGate', 'Evaluator', 'TFLiteCheck',
                                  'Pusher')
  assert second.blessed  # the same model is not worse than itself
  versions = atomic_pusher.model_versions(config.serving_dir)
  assert versions == [version]  # and it is already served: nothing new is pushed

  # A barely trained model passes an absolute gate of 0 but is worse than the blessed one: one
  # epoch of a base trained from scratch, which sits at chance for its first epochs. (A frozen
  # base's head is no use here: adam's first step from zero weights is already a fair classifier.)
  worse_config = _config(main, '--recipe', 'scratch', '--weights', 'none', '--image-size', '64',
                         '--epochs', '1', '--gate-threshold', '0')
  local_runner.run(worse_config)
  worse = run_summary.summarize(config.metadata_path)
  assert _states(worse) == _ran(*RESOLVERS, 'Trainer', 'Evaluator', 'TFLiteCheck', 'Pusher',
                                of=SCRATCH_NODES)
  assert not worse.blessed and worse.pushed_to is None
  assert (worse.test_metrics['sparse_categorical_accuracy']
          < second.test_metrics['sparse_categorical_accuracy'])
  assert atomic_pusher.model_versions(config.serving_dir) == versions
  page = open(local_runner.write_run_report(worse_config), encoding='utf-8').read()
  assert 'Model NOT blessed' in page and 'Not blessed:</p><ul><li>' in page  # with the reason
  assert 'confusion_matrix.png' in page  # TFMA names the models once there is a baseline

  # Back to the blessed configuration: every component is served from the cache.
  local_runner.run(config)
  assert _states(run_summary.summarize(config.metadata_path)) == _ran(*RESOLVERS)
  assert atomic_pusher.model_versions(config.serving_dir) == versions

  _assert_registry_after_a_second_push_and_a_rollback(main, config, capsys)
  _assert_validate_finds_new_images_that_repeat_training_images(tmp_path, config, capsys)

  # Last, as it is skipped where Chromium is not installed: the first run's report in a browser.
  screenshot = str(tmp_path / 'report.png')
  browser_screenshot(report_path, screenshot)
  pixels = np.asarray(Image.open(screenshot).convert('RGB')).astype(int)
  # The label-count bars (matplotlib's first two colours) were drawn: the pictures loaded.
  for colour in ((31, 119, 180), (255, 127, 14)):
    assert (np.abs(pixels - colour).sum(axis=-1) < 30).sum() > 500, colour
