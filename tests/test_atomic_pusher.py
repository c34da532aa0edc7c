"""The atomic Pusher: complete versions only, growing version numbers, nothing left on failure."""
import os
import types

import pytest
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from components import atomic_pusher


def _model(tmp_path, graph: bytes = b'graph') -> standard_artifacts.Model:
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / f'model-{graph.decode()}')
  serving = tmp_path / f'model-{graph.decode()}' / 'Format-Serving'
  (serving / 'variables').mkdir(parents=True, exist_ok=True)
  (serving / 'variables' / 'variables.data-00000-of-00001').write_bytes(b'w' * 1000)
  (serving / 'saved_model.pb').write_bytes(graph)
  return model


def _blessing(tmp_path, blessed: bool) -> standard_artifacts.ModelBlessing:
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', int(blessed))
  return blessing


def push(tmp_path, serving_dir, blessed=True, graph=b'graph'):
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'pushed-{len(os.listdir(tmp_path))}')
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving_dir)))
  atomic_pusher.Executor().Do(
      {standard_component_specs.MODEL_KEY: [_model(tmp_path, graph)],
       standard_component_specs.MODEL_BLESSING_KEY: [_blessing(tmp_path, blessed)]},
      {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
      {standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
  return pushed


def test_blessed_model_becomes_one_complete_version(tmp_path):
  serving_dir = tmp_path / 'serving'
  pushed = push(tmp_path, serving_dir)
  (version,) = os.listdir(serving_dir)  # no staging folder is left behind
  assert version.isdigit()
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_destination') == str(serving_dir / version)
  assert pushed.get_string_custom_property('pushed_version') == version
  assert (serving_dir / version / 'saved_model.pb').read_bytes() == b'graph'
  assert (serving_dir / version / 'variables' / 'variables.data-00000-of-00001').stat().st_size == 1000


def test_versions_grow_even_within_one_second(tmp_path, monkeypatch):
  # TFX's Pusher names the version after int(time.time()); a stopped clock puts all three pushes
  # in the same second.
  now = 1_700_000_000
  monkeypatch.setattr(pusher_executor, 'time', types.SimpleNamespace(time=lambda: now))
  serving_dir = tmp_path / 'serving'
  versions = [push(tmp_path, serving_dir, graph=graph).get_string_custom_property('pushed_version')
              for graph in (b'one', b'two', b'three')]
  assert versions == [str(now), str(now + 1), str(now + 2)]
  assert atomic_pusher.model_versions(str(serving_dir)) == [now, now + 1, now + 2]
  assert (serving_dir / str(now + 2) / 'saved_model.pb').read_bytes() == b'three'


def test_the_model_already_served_is_not_pushed_again(tmp_path):
  serving_dir = tmp_path / 'serving'
  first = push(tmp_path, serving_dir)
  again = push(tmp_path, serving_dir)
  assert again.get_int_custom_property('pushed') == 1
  assert (again.get_string_custom_property('pushed_destination')
          == first.get_string_custom_property('pushed_destination'))
  assert len(atomic_pusher.model_versions(str(serving_dir))) == 1
  push(tmp_path, serving_dir, graph=b'retrained')
  assert len(atomic_pusher.model_versions(str(serving_dir))) == 2


def test_unblessed_model_is_not_pushed(tmp_path):
  serving_dir = tmp_path / 'serving'
  pushed = push(tmp_path, serving_dir, blessed=False)
  assert pushed.get_int_custom_property('pushed') == 0
  assert not serving_dir.exists() or os.listdir(serving_dir) == []


def test_no_version_is_visible_while_copying_or_after_a_failed_copy(tmp_path, monkeypatch):
  serving_dir = tmp_path / 'serving'
  seen_while_copying = []

  def copy_then_fail(src, dst, *args, **kwargs):
    seen_while_copying.append(atomic_pusher.model_versions(str(serving_dir)))
    raise IOError('disk full')

  # TFX's Pusher copies saved_model.pb last; make that copy fail.
  monkeypatch.setattr(io_utils, 'copy_file', copy_then_fail)
  with pytest.raises(IOError, match='disk full'):
    push(tmp_path, serving_dir)
  assert seen_while_copying == [[]]  # the variables were written, yet no version was visible
  assert os.listdir(serving_dir) == []  # and the half-written copy is gone
