"""The Airflow launcher's driver names output artifacts uniquely per run, component and key."""
from tfx import types
from tfx.components.example_gen import driver as example_gen_driver
from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types
from tfx.types import standard_artifacts

from runner import airflow_launcher


def _output_names(driver_class, pipeline_info, component_id):
  driver = airflow_launcher._with_unique_artifact_names(driver_class)(metadata_handle=None)  # pylint: disable=protected-access
  outputs = driver._prepare_output_artifacts(  # pylint: disable=protected-access
      input_artifacts={}, output_dict={'anomalies': types.Channel(standard_artifacts.ExampleAnomalies)},
      exec_properties={}, execution_id=7, pipeline_info=pipeline_info,
      component_info=data_types.ComponentInfo(component_type='t', component_id=component_id,
                                              pipeline_info=pipeline_info))
  return [artifact.name for artifact in outputs['anomalies']]


def test_two_components_with_one_output_key_get_different_names(tmp_path):
  info = data_types.PipelineInfo(pipeline_name='p', pipeline_root=str(tmp_path), run_id='manual__1')
  # TFX's own driver names both 'anomalies:manual__1', which MLMD refuses the second time.
  assert _output_names(base_driver.BaseDriver, info, 'ExampleValidator') == [
      'p:manual__1:ExampleValidator:anomalies:0']
  assert _output_names(base_driver.BaseDriver, info, 'DistributionValidator') == [
      'p:manual__1:DistributionValidator:anomalies:0']


def test_a_components_own_driver_is_kept():
  driver_class = airflow_launcher._with_unique_artifact_names(example_gen_driver.FileBasedDriver)  # pylint: disable=protected-access
  assert issubclass(driver_class, example_gen_driver.FileBasedDriver)


def test_one_artifact_under_two_input_keys_is_one_event_with_both_paths(tmp_path):
  """The Evaluator's model and baseline_model are one artifact when the Trainer was cached."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  info = data_types.PipelineInfo(pipeline_name='p', pipeline_root=str(tmp_path), run_id='r')
  component = data_types.ComponentInfo(component_type='t', component_id='Evaluator',
                                       pipeline_info=info)
  config = metadata.sqlite_metadata_connection_config(str(tmp_path / 'metadata.sqlite'))
  with airflow_launcher.OneEventPerArtifactMetadata(config) as m:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / 'model')
    m.publish_artifacts([model])
    execution = m.register_execution(
        pipeline_info=info, component_info=component,
        contexts=m.register_pipeline_contexts_if_not_exists(info),
        input_artifacts={'model': [model], 'baseline_model': [model]})
    event, = m.store.get_events_by_execution_ids([execution.id])
    assert event.type == metadata_store_pb2.Event.INPUT and event.artifact_id == model.id
    assert [step.key for step in event.path.steps if step.HasField('key')] == [
        'model', 'baseline_model']
