"""versions.py over a serving dir: list, show, rollback, and its one-line errors; predict.py's choice
of the served version after a rollback. (With MLMD records of real runs: test_pipeline_e2e.py.)"""
import json
import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx.orchestration import metadata

import versions
import predict
from components import atomic_pusher
from run_results import registry


def _version(serving_dir, number, content):
  folder = serving_dir / str(number)
  (folder / 'variables').mkdir(parents=True)
  (folder / 'saved_model.pb').write_text(content)
  return folder


@pytest.fixture
def serving_dir(tmp_path):
  serving = tmp_path / 'serving'
  _version(serving, 100, 'first model')
  _version(serving, 200, 'second model')
  return serving


def _run(capsys, *argv):
  code = versions.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_rollback_republishes_an_earlier_version_as_the_newest(serving_dir, tmp_path, capsys):
  code, out, _ = _run(capsys, 'rollback', '100', '--serving-dir', str(serving_dir),
                      '--pipeline-root', str(tmp_path / 'no_root'))
  assert code == 0, out
  versions = atomic_pusher.model_versions(str(serving_dir))
  assert len(versions) == 3 and versions[:2] == [100, 200] and versions[2] > 200
  new = serving_dir / str(versions[2])
  assert (new / 'saved_model.pb').read_text() == 'first model'  # version 100's files
  assert json.loads((new / registry.ROLLBACK_FILE).read_text())['rollback_of'] == 100
  assert not [n for n in os.listdir(serving_dir) if n.startswith(atomic_pusher.STAGING_PREFIX)]
  code, out, _ = _run(capsys, 'list', '--serving-dir', str(serving_dir),
                      '--pipeline-root', str(tmp_path / 'no_root'))
  lines = out.splitlines()
  assert code == 0 and len(lines) == 3
  assert lines[0].startswith('  100') and lines[1].startswith('  200')
  assert lines[2].startswith(f'* {versions[2]}') and 'rollback of 100' in lines[2]
  _run(capsys, 'rollback', '200', '--serving-dir', str(serving_dir))
  assert registry.versions(str(serving_dir), None)[-1].rollback_of == 200
  # Rolling back to a rollback names the original version, not the rollback.
  _run(capsys, 'rollback', str(versions[2]), '--serving-dir', str(serving_dir))
  assert [v.rollback_of for v in registry.versions(str(serving_dir), None)] == [
      None, None, 100, 200, 100]


@pytest.mark.parametrize('argv, message', [
    (['show', '300'], "error: no version '300' in the serving dir; its versions are 100, 200"),
    (['rollback', '300'], "error: no version '300' in the serving dir; its versions are 100, 200"),
    (['rollback', '200'], 'error: version 200 is already the served (newest) one'),
])
def test_unknown_versions_are_one_line_errors(serving_dir, capsys, argv, message):
  code, out, err = _run(capsys, *argv, '--serving-dir', str(serving_dir))
  assert code == 2 and out == '' and err.strip() == message
  assert atomic_pusher.model_versions(str(serving_dir)) == [100, 200]


@pytest.mark.parametrize('make', ['missing', 'empty'])
def test_an_empty_or_missing_serving_dir_is_a_one_line_error(tmp_path, capsys, make):
  serving = tmp_path / 'serving'
  if make == 'empty':
    serving.mkdir()
  code, _, err = _run(capsys, 'list', '--serving-dir', str(serving))
  assert code == 2 and len(err.strip().splitlines()) == 1
  what = 'does not exist' if make == 'missing' else 'holds no model versions'
  assert f'serving dir {serving} {what}' in err


def test_show_and_rollback_need_a_version(serving_dir, capsys):
  with pytest.raises(SystemExit) as exit_info:
    versions.main(['show', '--serving-dir', str(serving_dir)])
  assert exit_info.value.code == 2
  assert 'show needs a VERSION' in capsys.readouterr().err


def test_predict_uses_the_served_version_after_a_rollback(serving_dir, tmp_path):
  """predict.py finds the serving dir through the latest push in MLMD and takes its highest
  version, which a rollback made the republished one."""
  root = tmp_path / 'root'
  root.mkdir()
  store = metadata_store.MetadataStore(
      metadata.sqlite_metadata_connection_config(str(root / 'metadata.sqlite')))
  type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name='PushedModel'))
  pushed = metadata_store_pb2.Artifact(type_id=type_id)
  pushed.custom_properties['pushed'].int_value = 1
  pushed.custom_properties['pushed_destination'].string_value = str(serving_dir / '200')
  store.put_artifacts([pushed])
  assert predict.resolve_model(None, str(root)) == str(serving_dir / '200')
  new = registry.rollback(str(serving_dir), registry.versions(str(serving_dir), None)[0])
  assert predict.resolve_model(None, str(root)) == str(serving_dir / str(new))
