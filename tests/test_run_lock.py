"""One run at a time on a pipeline root; a killed run never leaves it locked."""
import os
import signal
import subprocess
import sys
import time

import pytest

import local_runner
from runner import run_lock
from tests.trees import REPO_ROOT, SAMPLE_DATA

HOLD = ('import sys, time; from runner import run_lock; lock = run_lock.acquire(sys.argv[1]); '
        'print("held", flush=True); time.sleep(600)')


def _holder_process(root):
  """Another process that takes the lock and keeps it."""
  process = subprocess.Popen([sys.executable, '-c', HOLD, str(root)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, 'PYTHONPATH': REPO_ROOT})
  assert process.stdout.readline().strip() == 'held'
  return process


def test_second_holder_is_refused_with_the_first_ones_details(tmp_path):
  with run_lock.acquire(str(tmp_path)):
    with pytest.raises(run_lock.PipelineRootInUse, match=rf'in use by another run: pid {os.getpid()} '):
      run_lock.acquire(str(tmp_path))
  run_lock.acquire(str(tmp_path)).release()  # free again once released


def test_a_second_run_stops_at_once_naming_the_holder(tmp_path, capsys):
  holder = _holder_process(tmp_path / 'root')
  try:
    start = time.monotonic()
    code = local_runner.main(['--data-root', SAMPLE_DATA, '--pipeline-root', str(tmp_path / 'root')])
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - start < 10
    assert len(err.strip().splitlines()) == 1, err
    assert f'in use by another run: pid {holder.pid} on ' in err and '-c' in err
    assert sorted(os.listdir(tmp_path / 'root')) == ['.run.lock']  # nothing ran
  finally:
    holder.kill()
    holder.wait()


def test_a_killed_run_releases_the_root(tmp_path):
  holder = _holder_process(tmp_path)
  with pytest.raises(run_lock.PipelineRootInUse):
    run_lock.acquire(str(tmp_path))
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  lock = run_lock.acquire(str(tmp_path))  # the kernel released the dead process's lock
  assert f'"pid": {os.getpid()}' in open(lock.path).read()
  lock.release()
