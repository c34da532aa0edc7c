"""airflow_dag.py parses into one Airflow task per component, wired like the pipeline."""
import datetime
import os

import pytest

from tests.conftest import require_module
from tests.test_kubeflow_runner import UPSTREAM

DAG_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        'airflow_dag.py')


@pytest.fixture
def load_dag_file(tmp_path, monkeypatch):
  """Parses the DAG file as Airflow's scheduler does, in an Airflow home of its own."""
  # Before airflow is first imported: it reads (and writes) its configuration there.
  monkeypatch.setenv('AIRFLOW_HOME', str(tmp_path / 'airflow_home'))
  monkeypatch.setenv('AIRFLOW__CORE__LOAD_EXAMPLES', 'False')
  # Importing TFX alone can take longer than the default 30 s on a cold start.
  monkeypatch.setenv('AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT', '300')
  models = require_module('airflow.models')

  def load(pipeline_args: str):
    monkeypatch.setenv('CATS_DOGS_PIPELINE_ARGS', pipeline_args)
    return models.DagBag(dag_folder=DAG_FILE, include_examples=False)
  return load


def test_one_task_per_component_with_the_pipelines_upstream(load_dag_file, tmp_path, monkeypatch):
  monkeypatch.setenv('CATS_DOGS_SCHEDULE', '@weekly')
  monkeypatch.setenv('CATS_DOGS_START_DATE', '2025-03-01')
  dagbag = load_dag_file(f'--pipeline-root {tmp_path}/root --serving-dir {tmp_path}/serving '
                         '--recipe transfer')
  assert dagbag.import_errors == {}
  dag = dagbag.dags['sample']  # the pipeline's name: the data root's folder name
  assert {task.task_id: task.upstream_task_ids for task in dag.tasks} == UPSTREAM
  assert dag.schedule_interval == '@weekly' and not dag.catchup
  assert dag.start_date.date() == datetime.date(2025, 3, 1)


def test_bad_pipeline_args_are_an_import_error_that_names_them(load_dag_file):
  dagbag = load_dag_file('--epochs 0')
  assert not dagbag.dags
  error, = dagbag.import_errors.values()
  assert error.endswith("CATS_DOGS_PIPELINE_ARGS='--epochs 0': --epochs: 0 is not a positive "
                        'integer\n')
