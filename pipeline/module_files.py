"""How Transform and Trainer find their module code, and how TFX's cache sees it change.

By default TFX packages a module file's folder into a wheel when the component is constructed, and
every run installs it: seconds per component and a copy in <pipeline root>/_wheels at every Airflow
DAG parse. Every runner here runs where the project is installed (this checkout, the Airflow
workers' environment, the Kubeflow image), so the module files are used where they are. TFX's cache
reuses a component whose inputs and properties are unchanged, and the wheel's name carried a hash
of the code; without it, ``fingerprint`` goes into the components' custom_config instead, so that
an edited module file re-runs the components that use it, on every orchestrator.
"""
import contextlib
import glob
import hashlib
import os
from typing import Iterator

from pipeline import configs

# custom_config key of Transform and Trainer.
FINGERPRINT_KEY = 'module_fingerprint'
_TFX_SWITCH = 'UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES'


def fingerprint(modules_dir: str = configs.MODULES_DIR) -> str:
  """SHA-256 over the names and bytes of the folder's Python files (the module files import each
  other, so any of them can change what Transform or Trainer computes)."""
  digest = hashlib.sha256()
  for path in sorted(glob.glob(os.path.join(modules_dir, '*.py'))):
    with open(path, 'rb') as f:
      content = f.read()
    digest.update(f'{os.path.basename(path)}\0{len(content)}\0'.encode())
    digest.update(content)
  return digest.hexdigest()


@contextlib.contextmanager
def used_where_installed() -> Iterator[None]:
  """Components constructed inside name their module files as they are, not packaged in a wheel
  (TFX reads the switch when Transform and Trainer are constructed)."""
  previous = os.environ.get(_TFX_SWITCH)
  os.environ[_TFX_SWITCH] = '1'
  try:
    yield
  finally:
    if previous is None:
      del os.environ[_TFX_SWITCH]
    else:
      os.environ[_TFX_SWITCH] = previous
