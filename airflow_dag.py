"""Airflow DAG of the cats-vs-dogs pipeline: one Airflow task per TFX component.

Copy this file into Airflow's dags folder, in an environment where the project is installed
(scripts/setup.sh airflow). The scheduler's and workers' environment configures it:

  CATS_DOGS_PIPELINE_ARGS  local_runner.py flags, e.g. "--data-root /data/cats_and_dogs_filtered
                           --dataset cats_and_dogs_filtered --pipeline-root /srv/tfx/root
                           --serving-dir /srv/tfx/serving_model" (default: the sample, under runs/)
  CATS_DOGS_SCHEDULE       cron expression or preset such as @weekly; unset: triggered runs only
  CATS_DOGS_START_DATE     ISO date of the first schedule interval (default 2025-01-01)

Tasks run in Airflow workers and MLMD is SQLite under the pipeline root, so the scheduler and the
workers must see the same paths (LocalExecutor on one machine, or a shared disk).
"""
import bootstrap  # pylint: disable=unused-import  # first: the Keras switch, before TensorFlow
import datetime
import os
import shlex

# pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline import configs
from runner import flags
from runner import local_resources
from runner.airflow_launcher import AirflowComponentLauncher
from pipeline.pipeline import create_pipeline
from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner
from tfx.orchestration.airflow.airflow_dag_runner import AirflowPipelineConfig


def pipeline_config() -> configs.PipelineConfig:
  """local_runner.py's flags from CATS_DOGS_PIPELINE_ARGS. Airflow shows only exceptions, as the
  DAG's import error, so a bad flag raises one that names the variable and the flag."""
  pipeline_args = os.environ.get('CATS_DOGS_PIPELINE_ARGS', '')
  try:
    args = flags.local_parser(raise_errors=True).parse_args(shlex.split(pipeline_args))
    return local_resources.local_config(args, orchestrator=configs.AIRFLOW)
  except (flags.FlagError, configs.ConfigError) as e:
    raise ValueError(f'CATS_DOGS_PIPELINE_ARGS={pipeline_args!r}: {e}') from None


def dag_config() -> dict:
  return {
      'schedule': os.environ.get('CATS_DOGS_SCHEDULE') or None,
      'start_date': datetime.datetime.fromisoformat(
          os.environ.get('CATS_DOGS_START_DATE', '2025-01-01')),
      'catchup': False,
      # One run at a time: the runs share one SQLite MLMD.
      'max_active_runs': 1,
  }


DAG = AirflowDagRunner(AirflowPipelineConfig(
    airflow_dag_config=dag_config(),
    supported_launcher_classes=[AirflowComponentLauncher],
)).run(create_pipeline(pipeline_config()))
