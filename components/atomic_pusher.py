"""Pusher executor whose push is atomic: a model server never sees a half-written version.

TFX's Pusher copies the model straight into ``<serving_dir>/<unix time>``, so TensorFlow Serving,
which polls that folder, can find a version whose files are still being written (or were left
half-written by a crash). This executor lets TFX's own Pusher write into a hidden staging folder
inside the serving dir (model servers ignore names that are not version numbers) and then renames
the finished copy to its version number in one step. The rename is atomic on local and POSIX file
systems; object stores such as GCS emulate it by copy-and-delete.

Versions only grow: a push in the same second as the previous one, or after a clock step back,
gets the next free number instead of being skipped. A model identical to the newest version (the
same model blessed again, e.g. once the Evaluator has it as its own baseline) is not pushed again:
the model server would reload the same files as a new version.
"""
import os
import subprocess
import uuid
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from components.serving_versions import model_versions

STAGING_PREFIX = '.staging-'
_MAX_RENAME_ATTEMPTS = 10


def _files(folder: str) -> Dict[str, str]:
  """{path relative to ``folder``: full path} of every file below ``folder``."""
  return {os.path.relpath(os.path.join(root, name), folder): os.path.join(root, name)
          for root, _, names in fileio.walk(folder) for name in names}


def same_model(folder: str, other: str) -> bool:
  """Whether two model folders hold the same files with the same bytes."""
  files, other_files = _files(folder), _files(other)
  if set(files) != set(other_files):
    return False
  for name, path in files.items():
    with fileio.open(path, 'rb') as a, fileio.open(other_files[name], 'rb') as b:
      if a.read() != b.read():
        return False
  return True


def publish(staged_model: str, serving_dir: str) -> str:
  """Renames ``staged_model`` (``<staging>/<version>``) to the next free version; returns it."""
  version = int(os.path.basename(staged_model.rstrip('/')))
  for _ in range(_MAX_RENAME_ATTEMPTS):
    version = max([version] + [v + 1 for v in model_versions(serving_dir)])
    target = os.path.join(serving_dir, str(version))
    try:
      fileio.rename(staged_model, target)
      return str(version)
    except Exception:  # pylint: disable=broad-except  (each file system raises its own type)
      if not fileio.exists(target):
        raise
      # Another pusher took this number meanwhile: try the next one.
  raise RuntimeError(f'could not find a free version number in {serving_dir}')


def code_version() -> str:
  """``git describe --always --dirty`` of the checkout this code runs from, recorded with each
  push; '' where there is none (an image built without .git)."""
  try:
    return subprocess.run(['git', 'describe', '--always', '--dirty'], capture_output=True,
                          text=True, timeout=30, check=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return ''


class Executor(pusher_executor.Executor):
  """TFX's Pusher into a staging folder, then one rename into the serving directory."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
    serving_dir = destination.filesystem.base_directory
    if not serving_dir:
      raise ValueError('the atomic Pusher supports filesystem push destinations only')
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    versions = model_versions(serving_dir)
    if versions and self.CheckBlessing(input_dict):
      newest = os.path.join(serving_dir, str(versions[-1]))
      if same_model(self.GetModelPath(input_dict), newest):
        logging.info('The model is already served as %s; nothing new to push.', newest)
        io_utils.copy_dir(self.GetModelPath(input_dict), model_push.uri)  # as TFX's Pusher does
        self._MarkPushed(model_push, pushed_destination=newest, pushed_version=str(versions[-1]))
        return
    staging = os.path.join(serving_dir, STAGING_PREFIX + uuid.uuid4().hex)
    destination.filesystem.base_directory = staging
    staged_properties = {
        **exec_properties,
        standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)}
    try:
      super().Do(input_dict, output_dict, staged_properties)
      if model_push.get_int_custom_property('pushed'):
        version = publish(model_push.get_string_custom_property('pushed_destination'),
                          serving_dir)
        self._MarkPushed(model_push, pushed_destination=os.path.join(serving_dir, version),
                         pushed_version=version)
        model_push.set_string_custom_property('code_version', code_version())
        logging.info('Model published as version %s in %s.', version, serving_dir)
    finally:
      if fileio.exists(staging):
        fileio.rmtree(staging)


class AtomicPusher(Pusher):
  """TFX's Pusher component, same inputs and outputs, with the atomic executor."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
