"""One local run at a time on a pipeline root.

Two runs on one root would interleave their artifacts and executions in one SQLite MLMD. A run
takes an exclusive ``flock`` on ``<pipeline root>/.run.lock`` before any work and writes who holds
it (pid, host, start time, command) into the file; a second run finds the lock taken and stops at
once with one line naming that process, rather than waiting an unknown time.

``flock`` belongs to the open file: the kernel releases it when the holder's process ends in any
way, SIGKILL included, so a crashed run never leaves the root locked; the stale text left in the
file is overwritten by the next holder. The descriptor is not inherited by the Beam worker
processes (Python opens files close-on-exec). Local file systems only (flock does not lock across
machines on every network file system); orchestrators (Kubeflow, Airflow) schedule runs themselves.
"""
import datetime
import fcntl
import json
import os
import socket
import sys

LOCK_FILE = '.run.lock'


class PipelineRootInUse(RuntimeError):
  """Another run holds the pipeline root; the message names it."""


class RunLock:
  """The held lock; released by release(), when garbage collected, or when the process ends."""

  def __init__(self, fd: int, path: str):
    self._fd, self.path = fd, path

  def release(self) -> None:
    if self._fd is not None:
      os.ftruncate(self._fd, 0)  # no stale holder left in the file after a clean end
      os.close(self._fd)  # closing the file releases the flock
      self._fd = None

  def __del__(self):
    self.release()

  def __enter__(self) -> 'RunLock':
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


def _holder(fd: int) -> str:
  os.lseek(fd, 0, os.SEEK_SET)
  try:
    info = json.loads(os.read(fd, 4096).decode('utf-8'))
    return (f"pid {info['pid']} on {info['host']}, started {info['started']} "
            f"({info['command']})")
  except (ValueError, KeyError):
    return 'a process that has not written its details yet'


def acquire(pipeline_root: str) -> RunLock:
  """Takes the root's lock or raises PipelineRootInUse naming its holder; never waits."""
  os.makedirs(pipeline_root, exist_ok=True)
  path = os.path.join(pipeline_root, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder(fd)
    os.close(fd)
    raise PipelineRootInUse(  # pylint: disable=raise-missing-from
        f'pipeline root {pipeline_root} is in use by another run: {holder}; wait for it to end '
        f'or pass another --pipeline-root (lock: {path})')
  os.ftruncate(fd, 0)
  os.write(fd, json.dumps({
      'pid': os.getpid(), 'host': socket.gethostname(),
      'started': datetime.datetime.now().isoformat(timespec='seconds'),
      'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])[:300]}).encode('utf-8'))
  os.fsync(fd)
  return RunLock(fd, path)
