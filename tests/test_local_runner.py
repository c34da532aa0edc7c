"""The local runner's CLI: every flag documented, bad values rejected clearly, presets applied."""
import argparse
import re
import os
import shutil
import subprocess
import sys

import pytest

import local_runner
from tests.trees import SAMPLE_DATA

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_documents_every_flag(capsys):
  parser = local_runner.build_parser()
  flags = [action for action in parser._actions if action.option_strings]  # pylint: disable=protected-access
  undocumented = [action.option_strings[0] for action in flags
                  if not action.help or action.help == argparse.SUPPRESS]
  assert not undocumented, f'flags without help text: {undocumented}'
  with pytest.raises(SystemExit) as exit_info:
    local_runner.main(['--help'])
  assert exit_info.value.code == 0
  text = ' '.join(capsys.readouterr().out.split())  # argparse wraps long help lines
  for action in flags:
    first_words = ' '.join(action.help.split()[:3]).split('%')[0]
    assert first_words in text, (action.option_strings[0], first_words)


@pytest.mark.parametrize('argv, message', [
    (['--test-fraction', '1.5'], 'not a fraction'),
    (['--epochs', '0'], 'not a positive integer'),
    (['--alpha', '-1'], 'not a positive number'),
    (['--dataset', 'mnist'], 'invalid choice'),
    (['--split-ratios', '8,1'], 'not three positive integers'),
])
def test_bad_values_are_rejected_with_a_message(capsys, argv, message):
  try:
    code = local_runner.main(argv)
  except SystemExit as exit_info:  # argparse's own errors: unknown choices, unparsable text
    code = exit_info.code
  assert code == 2
  assert message in capsys.readouterr().err


def test_sample_preset_and_overrides(tmp_path):
  args = local_runner.build_parser().parse_args(
      ['--epochs', '3', '--pipeline-root', str(tmp_path / 'root'), '--beam-arg=--foo=1'])
  config = local_runner.config_from_args(args)
  assert config.data_root == local_runner.SAMPLE_ROOT
  assert (config.weights, config.epochs) == ('none', 3)
  assert config.metadata_path == str(tmp_path / 'root' / 'metadata.sqlite')
  assert config.beam_pipeline_args == ['--foo=1']  # 220 images: in process, Beam's default
  assert config.split_ratios == {'train': 8, 'eval': 1, 'test': 1}  # the default
  assert config.cache_images


def test_split_ratios_and_image_cache_flags():
  args = local_runner.build_parser().parse_args(['--split-ratios', '6,2,2', '--no-image-cache'])
  config = local_runner.config_from_args(args)
  assert config.split_ratios == {'train': 6, 'eval': 2, 'test': 2}
  assert not config.cache_images


def test_missing_data_root_fails_with_one_line(tmp_path, capsys):
  code = local_runner.main(['--data-root', str(tmp_path / 'missing'),
                            '--pipeline-root', str(tmp_path / 'root')])
  assert code == 2  # no images: a usage error
  err = capsys.readouterr().err
  assert 'does not exist' in err and 'Traceback' not in err


@pytest.mark.parametrize('flags, message', [
    (['--pipeline-root', '{data}/runs'], '--pipeline-root .* is inside the data root'),
    (['--serving-dir', '{data}/train/models'], '--serving-dir .* is inside the data root'),
    (['--serving-dir', '{tmp}/root'], 'must differ from --pipeline-root'),
    (['--serving-dir', '{tmp}/a_file'], 'exists and is not a folder'),
    (['--weights', '{tmp}/missing.h5'], 'no such file'),
])
def test_conflicting_paths_fail_before_any_work(tmp_path, capsys, flags, message):
  data = tmp_path / 'data'
  shutil.copytree(SAMPLE_DATA, data)
  (tmp_path / 'a_file').write_text('x')
  flags = [flag.format(data=data, tmp=tmp_path) for flag in flags]
  code = local_runner.main(['--data-root', str(data), '--pipeline-root', str(tmp_path / 'root'),
                            *flags])
  assert code == 2
  err = capsys.readouterr().err
  assert re.search(message, err) and 'Traceback' not in err
  assert not (tmp_path / 'root').exists()  # nothing was run


def test_the_runners_do_not_load_tensorflow_before_logging_is_configured():
  """Importing a runner loads no TensorFlow: a bad flag is answered at once, and TensorFlow's logger,
  created after the runner configured logging, adds no handler of its own (its INFO lines would
  reach a user's terminal)."""
  code = ('import sys, local_runner, versions, predict; '
          "print('tensorflow' in sys.modules)")
  done = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                        text=True, timeout=300, check=False)
  assert done.returncode == 0 and done.stdout.split()[-1] == 'False', done.stdout + done.stderr


def test_quiet_logging_holds_when_libraries_configured_logging_first():
  """validate.py imports TFDV (and so TensorFlow) before it configures logging: a root handler a
  library installed, and TensorFlow's own handler, must not print their INFO lines."""
  code = ('import logging, bootstrap, tensorflow as tf; tf.get_logger(); logging.basicConfig(); '
          'from runner import run_logging; run_logging.configure_logging(verbose=False); '
          "tf.get_logger().info('tensorflow noise'); logging.getLogger('absl').info('absl noise'); "
          "logging.getLogger('absl').info('Component Trainer is running.')")
  done = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                        text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr
  output = done.stdout + done.stderr
  assert 'noise' not in output and 'Component Trainer is running.' in output, output
