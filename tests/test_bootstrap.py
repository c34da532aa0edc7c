"""bootstrap: every project package sets the Keras 2 switch before TensorFlow loads, and a process
that loaded TensorFlow with Keras 3 first is stopped with one line."""
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
  return subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, env=env, capture_output=True,
                        text=True, timeout=300, check=False)


@pytest.mark.parametrize('package', ['components', 'pipeline', 'runner', 'run_results', 'benchmarks'])
def test_each_package_gives_tensorflow_keras_2(package):
  done = _python(f'import {package}, tensorflow as tf; print(tf.keras.__name__)')
  assert done.returncode == 0, done.stderr
  assert done.stdout.split()[-1].startswith('tf_keras'), done.stdout


def test_tensorflow_loaded_first_with_keras_3_is_one_clear_error():
  done = _python('import tensorflow; import pipeline')
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith(
      'bootstrap.KerasVersionError: TensorFlow was imported with Keras 3 before'), done.stderr


@pytest.mark.parametrize('entry_point', ['local_runner.py', 'kubeflow_runner.py', 'validate.py',
                                         'predict.py', 'versions.py'])
def test_every_entry_point_starts_in_a_fresh_interpreter(entry_point):
  """Run as a user runs it, with TF_USE_LEGACY_KERAS unset: whatever it imports, the switch comes
  first (airflow_dag.py is started by Airflow: tests/test_airflow_e2e.py)."""
  env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
  done = subprocess.run([sys.executable, entry_point, '--help'], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0 and 'usage:' in done.stdout, done.stderr[-2000:]
