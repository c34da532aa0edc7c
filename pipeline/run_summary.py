"""What the latest run decided, read back from MLMD and the artifacts (nothing is re-run)."""
import dataclasses
import json
import os
from typing import Dict, Optional, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.orchestration import metadata


@dataclasses.dataclass
class RunSummary:
  blessed: Optional[bool]
  pushed_to: Optional[str]
  test_metrics: Dict[str, float]
  # Node id -> (state, seconds) of the latest pipeline run; state is COMPLETE, CACHED, FAILED, ...
  executions: Dict[str, Tuple[str, float]]
  # The ExampleGen's file counts ('files_seen', 'images_used', 'files_skipped') and the JSON file
  # that lists every skipped file with its reason.
  file_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  image_summary_path: Optional[str] = None


def _latest(store: metadata_store.MetadataStore,
            type_name: str) -> Optional[metadata_store_pb2.Artifact]:
  artifacts = store.get_artifacts_by_type(type_name)
  return max(artifacts, key=lambda a: a.id) if artifacts else None


def load_candidate_result(evaluation_uri: str) -> tfma.EvalResult:
  """The evaluated model's TFMA results. With a baseline the Evaluator names the two models
  'candidate' and 'baseline', and TFMA returns the plots only for a named model."""
  with tf.io.gfile.GFile(os.path.join(evaluation_uri, 'eval_config.json')) as f:
    model_specs = json.load(f)['evalConfig']['modelSpecs']
  has_baseline = any(spec.get('isBaseline') for spec in model_specs)
  return tfma.load_eval_result(evaluation_uri,
                               model_name=tfma.CANDIDATE_KEY if has_baseline else None)


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
  """Unsliced metrics of a TFMA evaluation, e.g. {'sparse_categorical_accuracy': 0.97, ...}."""
  result = load_candidate_result(evaluation_uri)
  for slice_key, metrics in result.slicing_metrics:
    if not slice_key:
      values = next(iter(metrics.values()))  # one output
      values = next(iter(values.values()))  # sub key '' (no class binarisation)
      # '<metric>_diff' entries compare with the baseline model; the values themselves suffice here.
      return {name: value['doubleValue'] for name, value in values.items()
              if 'doubleValue' in value and not name.endswith('_diff')}
  return {}


def run_executions(store: metadata_store.MetadataStore,
                   run_id: int) -> Dict[str, metadata_store_pb2.Execution]:
  """{node id: execution} of one pipeline run (context ``run_id``), in the order they started."""
  node_type = store.get_context_type('node').id
  result = {}
  for execution in sorted(store.get_executions_by_context(run_id), key=lambda e: e.id):
    nodes = [c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type]
    # Node contexts are named '<pipeline>.<node id>'.
    result[nodes[0].name.split('.', 1)[-1] if nodes else str(execution.id)] = execution
  return result


def latest_run_executions(
    store: metadata_store.MetadataStore) -> Dict[str, Tuple[str, float]]:
  """{node id: (execution state, wall seconds)} of the newest pipeline run in the store."""
  runs = store.get_contexts_by_type('pipeline_run')
  if not runs:
    return {}
  latest_run = max(runs, key=lambda c: c.id)
  return {
      node_id: (metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000)
      for node_id, execution in run_executions(store, latest_run.id).items()}


def latest_pushed_model(metadata_path: str) -> Optional[str]:
  """The serving folder of the newest model that was actually pushed, if it still exists."""
  store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
  for pushed in sorted(store.get_artifacts_by_type('PushedModel'), key=lambda a: -a.id):
    destination = pushed.custom_properties['pushed_destination'].string_value
    if pushed.custom_properties['pushed'].int_value and os.path.isdir(destination):
      return destination
  return None


def summarize(metadata_path: str) -> RunSummary:
  from components.image_example_gen import executor  # pylint: disable=g-import-not-at-top
  store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
  examples = _latest(store, 'Examples')
  file_counts = {} if examples is None else {
      key: examples.custom_properties[key].int_value
      for key in ('files_seen', 'images_used', 'files_skipped') if key in examples.custom_properties}
  blessing = _latest(store, 'ModelBlessing')
  pushed = _latest(store, 'PushedModel')
  evaluation = _latest(store, 'ModelEvaluation')
  blessed = None if blessing is None else bool(blessing.custom_properties['blessed'].int_value)
  pushed_to = None
  if pushed is not None and pushed.custom_properties['pushed'].int_value:
    pushed_to = pushed.custom_properties['pushed_destination'].string_value
  return RunSummary(blessed=blessed, pushed_to=pushed_to,
                    test_metrics=overall_metrics(evaluation.uri) if evaluation else {},
                    executions=latest_run_executions(store),
                    file_counts=file_counts,
                    image_summary_path=(os.path.join(examples.uri, executor.SUMMARY_FILE)
                                        if examples else None))
