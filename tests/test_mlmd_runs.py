"""Runs read back from MLMD: a run's summary is made of that run's outputs, never another run's."""
import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx.orchestration import metadata

from run_results import mlmd_runs
from run_results import run_summary


class _Store:
  """A real SQLite MLMD store, filled as TFX's launcher records runs: one context per pipeline run
  and per node, executions in both, output events to their artifacts."""

  def __init__(self, path: str):
    self.path = path
    self.store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(path))
    self.run_type = self.store.put_context_type(metadata_store_pb2.ContextType(name='pipeline_run'))
    self.node_type = self.store.put_context_type(metadata_store_pb2.ContextType(name='node'))
    self.execution_type = self.store.put_execution_type(
        metadata_store_pb2.ExecutionType(name='Evaluator'))
    self.blessing_type = self.store.put_artifact_type(
        metadata_store_pb2.ArtifactType(name='ModelBlessing'))
    [self.node] = self.store.put_contexts([metadata_store_pb2.Context(
        type_id=self.node_type, name='cats_dogs_tfx.Evaluator')])

  def run(self, run_id: str, blessed: bool) -> None:
    [run] = self.store.put_contexts([metadata_store_pb2.Context(type_id=self.run_type,
                                                                name=run_id)])
    blessing = metadata_store_pb2.Artifact(type_id=self.blessing_type, uri=f'/b/{run_id}')
    blessing.custom_properties['blessed'].int_value = int(blessed)
    execution = metadata_store_pb2.Execution(
        type_id=self.execution_type, last_known_state=metadata_store_pb2.Execution.COMPLETE)
    self.store.put_execution(
        execution, [(blessing, metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT))],
        self.store.get_contexts_by_id([run, self.node]))


def test_a_runs_summary_is_made_of_its_own_outputs(tmp_path):
  recorded = _Store(str(tmp_path / 'metadata.sqlite'))
  recorded.run('2026-11-24T10:00:00', blessed=True)
  recorded.run('2026-11-24T11:00:00', blessed=False)
  store = mlmd_runs.open_store(recorded.path)
  assert mlmd_runs.run_ids(store) == ['2026-11-24T10:00:00', '2026-11-24T11:00:00']

  first = run_summary.summarize(recorded.path, '2026-11-24T10:00:00')
  assert (first.run_id, first.blessed) == ('2026-11-24T10:00:00', True)
  assert first.executions == {'Evaluator': ('COMPLETE', pytest.approx(0, abs=1))}
  newest = run_summary.summarize(recorded.path)  # no id: the newest run
  assert (newest.run_id, newest.blessed) == ('2026-11-24T11:00:00', False)


def test_unknown_runs_and_missing_stores_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='no pipeline run is recorded'):
    mlmd_runs.open_store(str(tmp_path / 'metadata.sqlite'))
  recorded = _Store(str(tmp_path / 'metadata.sqlite'))
  with pytest.raises(LookupError, match='no pipeline run is recorded'):
    mlmd_runs.find_run(mlmd_runs.open_store(recorded.path))
  with pytest.raises(LookupError, match="no pipeline run 'nope'"):
    mlmd_runs.find_run(mlmd_runs.open_store(recorded.path), 'nope')
