"""The whole pipeline on the embedded sample data, three times: fresh, baseline-aware, fully cached.

Asserted through MLMD, like TFX's own penguin e2e test. Takes about 3 minutes (the first run ~2).
"""
import glob
import os

import pytest
import tensorflow as tf

import local_runner
from components.modules import features
from pipeline import run_summary
from tests.trees import SAMPLE_DATA

NODES = {'ImageExampleGen', 'StatisticsGen', 'SchemaGen', 'LabelBalance', 'ExampleValidator',
         'Transform', 'Trainer', 'latest_blessed_model_resolver', 'Evaluator', 'Pusher'}
RESOLVER = 'latest_blessed_model_resolver'


@pytest.mark.e2e
def test_pipeline_runs_blesses_pushes_and_caches(tmp_path):
  args = local_runner.build_parser().parse_args([
      '--pipeline-root', str(tmp_path / 'pipeline_root'),
      '--serving-dir', str(tmp_path / 'serving')])
  config = local_runner.config_from_args(args)

  local_runner.run(config)
  first = run_summary.summarize(config.metadata_path)
  assert set(first.executions) == NODES
  assert {state for state, _ in first.executions.values()} == {'COMPLETE'}
  assert first.blessed
  assert first.test_metrics['sparse_categorical_accuracy'] >= config.accuracy_threshold
  versions = glob.glob(os.path.join(config.serving_dir, '*'))
  assert versions == [first.pushed_to]

  # The pushed model classifies raw JPEG bytes through the same Transform graph.
  model = tf.saved_model.load(first.pushed_to)
  paths = sorted(glob.glob(os.path.join(SAMPLE_DATA, 'validation', '*', '*.jpg')))[::10]
  images = tf.constant([open(path, 'rb').read() for path in paths])
  names = model.signatures[features.IMAGE_BYTES_SIGNATURE](image_bytes=images)[
      features.CLASS_NAMES_OUTPUT].numpy()
  expected = [os.path.basename(os.path.dirname(path)).encode() for path in paths]
  assert sum(a == b for a, b in zip(names, expected)) >= 0.8 * len(paths)

  # Unchanged inputs: everything up to the Trainer comes from the cache. The Evaluator runs again
  # because it now has a baseline (the model blessed by the first run), and so does the Pusher.
  local_runner.run(config)
  second = run_summary.summarize(config.metadata_path)
  rerun = {node for node, (state, _) in second.executions.items() if state != 'CACHED'}
  assert rerun == {RESOLVER, 'Evaluator', 'Pusher'}
  assert second.blessed  # the same model is not worse than itself

  # Nothing changed since: every component is served from the cache.
  local_runner.run(config)
  third = run_summary.summarize(config.metadata_path)
  assert {node for node, (state, _) in third.executions.items() if state != 'CACHED'} == {RESOLVER}
