"""Runs as MLMD recorded them: the one reader of the store for the run summary, the run report,
``predict.py`` and ``validate.py``.

A run is the ``pipeline_run`` context named by its pipeline run id (LocalDagRunner: the start time
in ISO format); its executions, cached ones included, and their outputs describe that run alone,
so the summary and the report of a run never mix in another run's artifacts.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Set, Tuple

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

RUN_CONTEXT_TYPE = 'pipeline_run'
NODE_CONTEXT_TYPE = 'node'
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def open_store(metadata_path: str) -> mlmd.MetadataStore:
  """The SQLite MLMD store at ``metadata_path``; FileNotFoundError when no pipeline wrote one."""
  if not os.path.isfile(metadata_path):
    raise FileNotFoundError(f'no pipeline run is recorded at {metadata_path}')
  # TFX's sqlite_metadata_connection_config, without importing TFX (and TensorFlow): predict.py's
  # TFLite engine finds the latest push here.
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
  return mlmd.MetadataStore(config)


@dataclasses.dataclass
class Run:
  """One pipeline run: its context, and per node its execution and output artifacts."""
  context: metadata_store_pb2.Context
  executions: Dict[str, metadata_store_pb2.Execution]  # node id -> execution, in start order
  outputs: Dict[str, Dict[str, metadata_store_pb2.Artifact]]  # node id -> {type name: artifact}

  @property
  def run_id(self) -> str:
    return self.context.name

  def output(self, node_id: str, type_name: str) -> Optional[metadata_store_pb2.Artifact]:
    return self.outputs.get(node_id, {}).get(type_name)

  def node_states(self) -> Dict[str, Tuple[str, float]]:
    """{node id: (execution state, wall seconds)}; the state is COMPLETE, CACHED, FAILED, ..."""
    return {
        node_id: (metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                  (execution.last_update_time_since_epoch
                   - execution.create_time_since_epoch) / 1000)
        for node_id, execution in self.executions.items()}


def run_ids(store: mlmd.MetadataStore) -> List[str]:
  """The pipeline run ids in the store, oldest first."""
  return [c.name for c in sorted(store.get_contexts_by_type(RUN_CONTEXT_TYPE), key=lambda c: c.id)]


def find_run(store: mlmd.MetadataStore, run_id: Optional[str] = None) -> Run:
  """The run ``run_id``, or the newest run when None; LookupError when there is none."""
  if run_id is None:
    ids = run_ids(store)
    if not ids:
      raise LookupError('no pipeline run is recorded in this store')
    run_id = ids[-1]
  context = store.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run_id)
  if context is None:
    raise LookupError(f'no pipeline run {run_id!r} is recorded in this store')
  node_type = store.get_context_type(NODE_CONTEXT_TYPE).id
  executions, outputs = {}, {}
  for execution in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id):
    nodes = [c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type]
    # Node contexts are named '<pipeline>.<node id>'.
    node_id = nodes[0].name.split('.', 1)[-1] if nodes else str(execution.id)
    executions[node_id] = execution
    events = [e for e in store.get_events_by_execution_ids([execution.id])
              if e.type in _OUTPUT_EVENTS]
    artifacts = store.get_artifacts_by_id([e.artifact_id for e in events])
    types = {t.id: t.name for t in store.get_artifact_types_by_id({a.type_id for a in artifacts})}
    outputs[node_id] = {types[a.type_id]: a for a in artifacts}
  return Run(context, executions, outputs)


def latest_pushed_model(store: mlmd.MetadataStore) -> Optional[str]:
  """The serving folder of the newest model that was actually pushed, if it still exists."""
  for pushed in sorted(store.get_artifacts_by_type('PushedModel'), key=lambda a: -a.id):
    destination = pushed.custom_properties['pushed_destination'].string_value
    if pushed.custom_properties['pushed'].int_value and os.path.isdir(destination):
      return destination
  return None


# --- the drift baseline --------------------------------------------------------------------------

def _latest_output(store: mlmd.MetadataStore, type_name: str, output_key: str,
                   producer_inputs: Optional[Set[int]] = None) -> Optional[int]:
  """Id of the newest ``type_name`` artifact published as ``output_key`` (by an execution that
  read one of ``producer_inputs``, when given)."""
  try:
    candidates = [a.id for a in store.get_artifacts_by_type(type_name)]
  except mlmd.errors.NotFoundError:
    return None
  for event in sorted(store.get_events_by_artifact_ids(candidates), key=lambda e: -e.artifact_id):
    if (event.type == metadata_store_pb2.Event.OUTPUT and event.path.steps
        and event.path.steps[0].key == output_key):
      if producer_inputs is None or producer_inputs & {
          e.artifact_id for e in store.get_events_by_execution_ids([event.execution_id])
          if e.type == metadata_store_pb2.Event.INPUT}:
        return event.artifact_id
  return None


def accepted_baseline(
    store: mlmd.MetadataStore) -> Optional[Tuple[metadata_store_pb2.Artifact,
                                                 metadata_store_pb2.Artifact]]:
  """(statistics, schema) of the latest data that passed the drift check, the pipeline's baseline;
  the schema is the pipeline's (ImageSchema's) of the same data. None before the first accepted
  run."""
  from components.drift.drift_gate import ACCEPTED_KEY  # pylint: disable=g-import-not-at-top  # TFX
  accepted_id = _latest_output(store, 'ExampleStatistics', ACCEPTED_KEY)
  if accepted_id is None:
    return None
  accepting = [e.execution_id for e in store.get_events_by_artifact_ids([accepted_id])
               if e.type == metadata_store_pb2.Event.OUTPUT]  # AcceptedStatistics, not its readers
  source_ids = {e.artifact_id for e in store.get_events_by_execution_ids(accepting)
                if e.type == metadata_store_pb2.Event.INPUT}
  inferred_id = _latest_output(store, 'Schema', 'schema', producer_inputs=source_ids)
  if inferred_id is None:
    return None
  # The pipeline's schema: SchemaGen's, with the image properties' domains (ImageSchema).
  schema_id = _latest_output(store, 'Schema', 'curated_schema', producer_inputs={inferred_id})
  if schema_id is None:
    return None
  [statistics] = store.get_artifacts_by_id([accepted_id])
  [schema] = store.get_artifacts_by_id([schema_id])
  return statistics, schema




def data_quality_inputs(store: mlmd.MetadataStore) -> Optional[Tuple[
    metadata_store_pb2.Artifact, metadata_store_pb2.Artifact, metadata_store_pb2.Artifact]]:
  """(the newest DataQuality report, the examples with the base's features it was made of, the
  feature extractor's model): the training set validate.py compares new images with. None when no
  run computed them (a base trained from scratch, or no run yet)."""
  from components.data_quality.component import DataQualityReport  # pylint: disable=g-import-not-at-top  # TFX
  report_id = _latest_output(store, DataQualityReport.TYPE_NAME, 'report')
  if report_id is None:
    return None
  # The execution that made it first (a cached execution records the same output again).
  checking = min(e.execution_id for e in store.get_events_by_artifact_ids([report_id])
                 if e.type == metadata_store_pb2.Event.OUTPUT)
  [examples_id] = [e.artifact_id for e in store.get_events_by_execution_ids([checking])
                   if e.type == metadata_store_pb2.Event.INPUT]
  inferring = [min(e.execution_id for e in store.get_events_by_artifact_ids([examples_id])
                   if e.type == metadata_store_pb2.Event.OUTPUT)]
  model_ids = [e.artifact_id for e in store.get_events_by_execution_ids(inferring)
               if e.type == metadata_store_pb2.Event.INPUT and e.path.steps
               and e.path.steps[0].key == 'model']
  if not model_ids:
    return None
  by_id = {a.id: a for a in store.get_artifacts_by_id([report_id, examples_id, model_ids[0]])}
  return by_id[report_id], by_id[examples_id], by_id[model_ids[0]]


# --- pushes --------------------------------------------------------------------------------------

def pushes(store: mlmd.MetadataStore) -> Dict[str, Tuple[metadata_store_pb2.Artifact, str]]:
  """{serving folder: (PushedModel artifact, id of the run that pushed it)} of every model that was
  actually pushed. A cached Pusher in a later run shares the artifact; the earliest run pushed it."""
  try:
    pushed_models = store.get_artifacts_by_type('PushedModel')
  except mlmd.errors.NotFoundError:
    return {}
  run_type = store.get_context_type(RUN_CONTEXT_TYPE).id
  found = {}
  for artifact in sorted(pushed_models, key=lambda a: a.id):
    if not artifact.custom_properties['pushed'].int_value:
      continue
    destination = artifact.custom_properties['pushed_destination'].string_value
    executions = [e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
                  if e.type in _OUTPUT_EVENTS]
    runs = sorted((c for execution_id in executions
                   for c in store.get_contexts_by_execution(execution_id)
                   if c.type_id == run_type), key=lambda c: c.id)
    if runs and destination not in found:
      found[destination] = (artifact, runs[0].name)
  return found
