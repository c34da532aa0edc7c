"""Every CLI boundary value gives a valid config or one clear error line, before any work.

PipelineConfig holds every check (pipeline/configs.py), so the flags of every runner agree: what
passes here is what ImageExampleGen, LabelBalance, the Trainer and the Evaluator accept.
"""
import os
import argparse
import dataclasses
import subprocess
import sys

import pytest

from pipeline import configs
from runner import flags
from runner import local_resources
from tests.trees import SAMPLE_DATA

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (flags, None for a valid config or the error's text)
BOUNDARIES = [
    (['--test-fraction', '0'], '--test-fraction: 0.0 is not a fraction in (0, 1)'),
    (['--test-fraction', '1'], '--test-fraction: 1.0 is not a fraction in (0, 1)'),
    (['--test-fraction', '-0.2'], '--test-fraction: -0.2 is not a fraction'),
    (['--test-fraction', '0.999'], None),
    (['--max-skipped-fraction', '0'], None),
    (['--max-skipped-fraction', '1'], None),
    (['--max-skipped-fraction', '1.01'], '--max-skipped-fraction: 1.01 is not a fraction in [0, 1]'),
    (['--gate-threshold', '0'], None),
    (['--gate-threshold', '1'], None),
    (['--gate-threshold', '-0.1'], '--gate-threshold: -0.1 is not a fraction'),
    (['--gate-threshold', '1.5'], '--gate-threshold: 1.5 is not a fraction'),
    (['--max-class-ratio', '1'], None),
    (['--warn-class-ratio', '0.5'], '--warn-class-ratio: 0.5 is below 1'),
    (['--min-class-images', '1'], None),
    (['--min-class-images', '0'], '--min-class-images: 0 is not a positive integer'),
    (['--tuner-trials', '0'], None),
    (['--tuner-trials', '-1'], '--tuner-trials: -1 is not an integer >= 0'),
    (['--pipeline-name', 'my_flowers-2'], None),
    (['--pipeline-name', 'Flowers!'], "--pipeline-name: 'Flowers!' is not a pipeline name"),
    (['--max-class-ratio', '0'], '--max-class-ratio: 0.0 is below 1'),
    (['--max-class-ratio', '-1.5'], '--max-class-ratio: -1.5 is below 1'),
    (['--epochs', '0'], '--epochs: 0 is not a positive integer'),
    (['--epochs', '-3'], '--epochs: -3 is not a positive integer'),
    (['--epochs', '1'], None),
    (['--batch-size', '0'], '--batch-size: 0 is not a positive integer'),
    (['--image-size', '-1'], '--image-size: -1 is not a positive integer'),
    (['--learning-rate', '0'], '--learning-rate: 0.0 is not a positive number'),
    (['--alpha', '-1'], '--alpha: -1.0 is not a positive number'),
    (['--fine-tune-epochs', '0'], None),
    (['--fine-tune-epochs', '-1'], '--fine-tune-epochs: -1 is not an integer >= 0'),
    (['--fine-tune-epochs', '1', '--model', 'small_cnn'], '--model small_cnn has none'),
    (['--split-ratios', '1,1,1'], None),
    (['--split-ratios', '0,1,1'], "--split-ratios: {'train': 0, 'eval': 1, 'test': 1} is not"),
    (['--split-ratios', '8,-1,1'], "--split-ratios: {'train': 8, 'eval': -1, 'test': 1} is not"),
    (['--drift-label-linf', '0'], '--drift-label-linf: 0.0 is not a positive number'),
    (['--drift-numeric-js', '-0.2'], '--drift-numeric-js: -0.2 is not a positive number'),
    (['--drift-numeric-js', '1'], None),
    (['--max-image-pixels', '0'], '--max-image-pixels: 0 is not a positive integer'),
    (['--max-image-pixels', '1'], None),
    (['--max-image-bytes', '-5'], '--max-image-bytes: -5 is not a positive integer'),
    (['--max-image-bytes', '1'], None),
    (['--direct-num-workers', '-1'], '--direct-num-workers must be >= 0'),
    (['--direct-num-workers', '0'], None),
]


@pytest.mark.parametrize('argv, error', BOUNDARIES)
def test_boundary_value_gives_a_config_or_one_error_line(tmp_path, argv, error):
  args = flags.local_parser().parse_args(
      ['--data-root', SAMPLE_DATA, '--pipeline-root', str(tmp_path / 'root'), *argv])
  if error is None:
    config = local_resources.local_config(args)
    assert config.pipeline_root == str(tmp_path / 'root')
    return
  with pytest.raises(configs.ConfigError) as raised:
    local_resources.local_config(args)
  assert error in str(raised.value) and '\n' not in str(raised.value)
  assert not (tmp_path / 'root').exists()


def test_every_runner_shares_the_checks():
  """The configs built without flags (tests, other tools) are checked the same way."""
  with pytest.raises(configs.ConfigError, match=r'--test-fraction: 1 is not a fraction in \(0, 1\)'):
    configs.PipelineConfig('d', 'p', 's', test_fraction=1)
  assert configs.PipelineConfig('d', 'p', 's').test_fraction == configs.default('test_fraction')


@pytest.mark.parametrize('argv, error', [
    (['--test-fraction', '0'], 'error: --test-fraction: 0.0 is not a fraction in (0, 1)'),
    (['--epochs', '-1'], 'error: --epochs: -1 is not a positive integer'),
    (['--split-ratios', '8,1'], "local_runner.py: error: argument --split-ratios: '8,1' is not "
                                'three positive integers TRAIN,EVAL,TEST'),
])
def test_local_runner_prints_one_error_line_and_exits_2(tmp_path, argv, error):
  root = tmp_path / 'root'
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, 'local_runner.py'), '--data-root', SAMPLE_DATA,
       '--pipeline-root', str(root), *argv],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 2
  assert result.stderr.splitlines() == [result.stderr.splitlines()[0]]  # one line
  assert result.stderr.startswith(error)
  assert not root.exists()


def test_the_orchestrator_is_stated_and_decides_where_mlmd_lives(tmp_path):
  """Kubeflow brings its own MLMD, even when compiled with a local pipeline root."""
  paths = dict(data_root=SAMPLE_DATA, pipeline_root=str(tmp_path / 'root'),
               serving_dir=str(tmp_path / 'serving'))
  assert configs.PipelineConfig(**paths).metadata_path == str(tmp_path / 'root' / 'metadata.sqlite')
  assert configs.PipelineConfig(**paths, orchestrator=configs.AIRFLOW).metadata_path
  assert configs.PipelineConfig(**paths, orchestrator=configs.KUBEFLOW).metadata_path is None
  with pytest.raises(configs.ConfigError, match='--orchestrator'):
    configs.PipelineConfig(**paths, orchestrator='cron')


def test_a_setting_is_one_field_and_its_flag():
  """Every flag of add_setting_arguments sets the field of its name (no list to keep in step), and
  the fields marked as trainer settings, only those, reach the Trainer's custom config."""
  parser = argparse.ArgumentParser(add_help=False)
  flags.add_setting_arguments(parser)
  fields = {field.name for field in dataclasses.fields(configs.PipelineConfig)}
  dests = {action.dest for action in parser._actions}  # pylint: disable=protected-access
  assert dests - fields - {'recipe'} == {d for d in dests if d.startswith('drift_')}
  args = flags.local_parser().parse_args(['--epochs', '7', '--class-weights', 'none',
                                          '--max-leak-fraction', '0.1', '--alpha', '0.35'])
  given = {k: v for k, v in flags.settings(args).items() if v is not None}
  config = configs.PipelineConfig(data_root=SAMPLE_DATA, pipeline_root='/tmp/r',
                                  serving_dir='/tmp/s', **given)
  assert (config.epochs, config.class_weights, config.max_leak_fraction) == (7, 'none', 0.1)
  custom = config.trainer_custom_config(['a', 'b'])
  assert (custom['epochs'], custom['class_weights'], custom['alpha']) == (7, 'none', 0.35)
  assert 'max_leak_fraction' not in custom and 'dropout' in custom
