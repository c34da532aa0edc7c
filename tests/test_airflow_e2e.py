"""The Airflow DAG executed end to end on the sample data, as a user runs it: ``airflow dags test``
in an Airflow home of its own, with airflow_dag.py copied into its dags folder.

Three DAG runs on one pipeline root, asserted from Airflow's task states, MLMD and the serving dir:
1. a cold start: every task succeeds, a model is blessed and pushed;
2. the same data again: every task succeeds; the drift check compares against the first run's
   accepted statistics and the Evaluator against the first run's blessed model;
3. darkened copies of the images: DriftGate fails and names the drifted feature; nothing
   downstream runs and nothing is pushed.
Runs in the Airflow virtualenv (``make test-airflow``); skipped where Airflow is not installed,
except under CI=true, where that fails.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import WEIGHTS_035, require_module, require_shared
from tests.trees import REPO_ROOT, SAMPLE_DATA, darkened_copy

require_module('airflow')
# pylint: disable=g-import-not-at-top,wrong-import-position
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from components import atomic_pusher

DAG_ID = 'sample'  # the pipeline's name (--pipeline-name), which is the DAG id
TASKS = {'ImageExampleGen', 'StatisticsGen', 'SchemaGen', 'ImageSchema', 'LabelBalance',
         'ExampleValidator', 'baseline_statistics_resolver', 'DistributionValidator', 'DriftGate',
         'AcceptedStatistics', 'Transform', 'FeatureExtractor', 'BaseFeatures', 'DataQuality',
         'Tuner', 'Trainer',
         'latest_blessed_model_resolver', 'EmbeddingDriftGate', 'Evaluator', 'TFLiteCheck',
         'Pusher'}
# Downstream of DriftGate: they must not run when it fails.
AFTER_DRIFT_GATE = {'AcceptedStatistics', 'Transform', 'FeatureExtractor', 'BaseFeatures',
                    'DataQuality', 'Tuner', 'Trainer', 'Evaluator', 'TFLiteCheck', 'Pusher'}
AIRFLOW = os.path.join(os.path.dirname(sys.executable), 'airflow')


class AirflowHome:
  """An Airflow home with the project's DAG file in its dags folder and a migrated database."""

  def __init__(self, path):
    self.path = path
    os.makedirs(os.path.join(path, 'dags'))
    shutil.copy(os.path.join(REPO_ROOT, 'airflow_dag.py'), os.path.join(path, 'dags'))
    self.env = {**os.environ, 'AIRFLOW_HOME': str(path), 'AIRFLOW__CORE__LOAD_EXAMPLES': 'False',
                'AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT': '300', 'TF_USE_LEGACY_KERAS': '1'}
    self.airflow('db', 'migrate')

  def airflow(self, *args, pipeline_args='', timeout=1200) -> subprocess.CompletedProcess:
    return subprocess.run([AIRFLOW, *args], env={**self.env, 'CATS_DOGS_PIPELINE_ARGS': pipeline_args},
                          cwd=self.path, capture_output=True, text=True, timeout=timeout,
                          check=False)

  def run_dag(self, logical_date: str, pipeline_args: str):
    """Runs the DAG once; returns its run id, {task: state} from Airflow's database, the log."""
    started = time.time()
    result = self.airflow('dags', 'test', DAG_ID, logical_date, pipeline_args=pipeline_args)
    seconds = time.time() - started
    log = result.stdout + result.stderr
    run_id = f'manual__{logical_date}T00:00:00+00:00'
    states = self.airflow('tasks', 'states-for-dag-run', DAG_ID, run_id, '--output', 'json')
    assert states.returncode == 0, states.stderr
    task_states = {row['task_id']: row['state'] for row in json.loads(states.stdout)}
    print(f'DAG run {run_id}: {seconds:.0f} s')
    return run_id, task_states, log


class Mlmd:
  """Reads what TFX's Airflow launcher records: executions keyed by Airflow run id."""

  def __init__(self, path):
    self.store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(path))

  def executions(self, run_id):
    return {e.properties['component_id'].string_value: e for e in self.store.get_executions()
            if e.properties['run_id'].string_value == run_id}

  def artifact_ids(self, execution, key, event_type):
    """Ids of the artifacts that ``execution`` read (INPUT) or wrote (OUTPUT) under ``key``; one
    event names every key an artifact was read under."""
    return {event.artifact_id for event in self.store.get_events_by_execution_ids([execution.id])
            if event.type == event_type and key in [step.key for step in event.path.steps]}

  def artifact(self, artifact_id):
    return self.store.get_artifacts_by_id([artifact_id])[0]


INPUT, OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


@pytest.mark.e2e
def test_dag_runs_twice_then_stops_drifted_data_at_the_drift_gate(tmp_path):
  home = AirflowHome(tmp_path / 'airflow_home')
  pipeline_root, serving_dir = tmp_path / 'pipeline_root', tmp_path / 'serving'
  # The transfer recipe (the base's features computed by BulkInferrer, the Tuner) as users run
  # it on their images, with the small pretrained base at 64 px.
  # The pipeline is named, as the DAG of a team is: its name (the DAG id) would otherwise follow
  # the data root's folder, and the drifted images of the third run sit in another folder.
  args = (f'--pipeline-name {DAG_ID} --pipeline-root {pipeline_root} --serving-dir {serving_dir} '
          '--recipe transfer '
          f'--weights {require_shared(WEIGHTS_035)} --image-size 64 --tuner-trials 2')

  # 1. Cold start: no baseline statistics, no blessed model.
  first_run, states, log = home.run_dag('2026-01-01', args)
  assert states == {task: 'success' for task in TASKS}, log[-3000:]
  mlmd = Mlmd(str(pipeline_root / 'metadata.sqlite'))
  first = mlmd.executions(first_run)
  assert set(first) == TASKS
  blessing_id, = mlmd.artifact_ids(first['Evaluator'], 'blessing', OUTPUT)
  assert mlmd.artifact(blessing_id).custom_properties['blessed'].int_value == 1
  (version,) = atomic_pusher.model_versions(str(serving_dir))
  pushed_id, = mlmd.artifact_ids(first['Pusher'], 'pushed_model', OUTPUT)
  assert (mlmd.artifact(pushed_id).custom_properties['pushed_destination'].string_value
          == os.path.join(serving_dir, str(version)))
  assert not mlmd.artifact_ids(first['DistributionValidator'], 'baseline_statistics', INPUT)
  assert not mlmd.artifact_ids(first['Evaluator'], 'baseline_model', INPUT)

  # 2. The same data: the first run's accepted statistics and blessed model are the baselines.
  second_run, states, log = home.run_dag('2026-01-02', args)
  assert states == {task: 'success' for task in TASKS}, log[-3000:]
  second = mlmd.executions(second_run)
  assert (mlmd.artifact_ids(second['DistributionValidator'], 'baseline_statistics', INPUT)
          == mlmd.artifact_ids(first['AcceptedStatistics'], 'accepted', OUTPUT))
  assert (mlmd.artifact_ids(second['Evaluator'], 'baseline_model', INPUT)
          == mlmd.artifact_ids(first['Trainer'], 'model', OUTPUT))
  blessing_id, = mlmd.artifact_ids(second['Evaluator'], 'blessing', OUTPUT)
  assert mlmd.artifact(blessing_id).custom_properties['blessed'].int_value == 1
  # Unchanged inputs: the features, the Tuner and the Trainer come from the cache, so nothing new
  # is served.
  for task in ('BaseFeatures', 'Tuner', 'Trainer'):
    assert second[task].properties['state'].string_value == 'cached', task
  assert atomic_pusher.model_versions(str(serving_dir)) == [version]

  # 3. Darker photos: DriftGate fails, names the feature, and nothing after it runs.
  dark = darkened_copy(SAMPLE_DATA, str(tmp_path / 'dark'))
  third_run, states, log = home.run_dag('2026-01-03', f'{args} --data-root {dark}')
  assert states['DriftGate'] == 'failed', states
  assert {states[task] for task in AFTER_DRIFT_GATE} == {'upstream_failed'}, states
  # EmbeddingDriftGate may stop darker photos too (the model sees them differently).
  assert states['EmbeddingDriftGate'] in ('success', 'failed'), states
  assert {states[task] for task in TASKS - AFTER_DRIFT_GATE - {'DriftGate', 'EmbeddingDriftGate'}
          } == {'success'}
  assert 'DataDriftError' in log and 'mean_brightness Jensen-Shannon' in log
  assert set(mlmd.executions(third_run)) == TASKS - AFTER_DRIFT_GATE
  assert atomic_pusher.model_versions(str(serving_dir)) == [version]
