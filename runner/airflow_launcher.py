"""The component launcher for Airflow: TFX's in-process launcher, recording MLMD as LocalDagRunner.

TFX's Airflow path runs each component through its older launcher and metadata handle, which
record two things in a way MLMD refuses for this pipeline:
* the driver names every output artifact ``<output key>:<run id>``; MLMD requires (type, name) to
  be unique, so ExampleValidator and DistributionValidator, which both publish ``anomalies``
  (ExampleAnomalies), collide in one run (``AlreadyExistsError: Given node already exists``).
  LocalDagRunner and Kubeflow V2 name artifacts ``<pipeline>:<run id>:<component>:<key>:<index>``;
* one input event per (key, artifact), so an artifact that is the input under two keys fails
  (``Given event already exists``): the Evaluator's ``model`` and ``baseline_model`` are one
  artifact whenever the Trainer came from the cache and its model was blessed before.
  LocalDagRunner records one event with both paths.
This launcher records both as LocalDagRunner does, so the same pipeline runs under every
orchestrator. It plugs in through ``AirflowPipelineConfig(supported_launcher_classes=...)``, TFX's
extension point for launchers.
"""
import functools
from typing import Any, Dict, List, Type

from tfx import types
from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types
from tfx.orchestration import metadata
from tfx.orchestration.launcher import in_process_component_launcher


def artifact_name(pipeline_info: data_types.PipelineInfo, component_id: str, output_key: str,
                  index: int) -> str:
  """LocalDagRunner's artifact name: unique per run, component, output key and index."""
  return f'{pipeline_info.pipeline_name}:{pipeline_info.run_id}:{component_id}:{output_key}:{index}'


@functools.lru_cache(maxsize=None)
def _with_unique_artifact_names(driver_class: Type[base_driver.BaseDriver]):
  """``driver_class`` (a component's own driver, e.g. ExampleGen's) naming outputs uniquely."""

  class UniqueArtifactNamesDriver(driver_class):

    def _prepare_output_artifacts(self, input_artifacts, output_dict, exec_properties,
                                  execution_id, pipeline_info, component_info
                                  ) -> Dict[str, List[types.Artifact]]:
      outputs = super()._prepare_output_artifacts(
          input_artifacts, output_dict, exec_properties, execution_id, pipeline_info,
          component_info)
      for output_key, artifacts in outputs.items():
        for index, artifact in enumerate(artifacts):
          artifact.name = artifact_name(pipeline_info, component_info.component_id, output_key,
                                        index)
      return outputs

  UniqueArtifactNamesDriver.__name__ = f'UniqueArtifactNames{driver_class.__name__}'
  return UniqueArtifactNamesDriver


class OneEventPerArtifactMetadata(metadata.Metadata):
  """TFX's metadata handle, with one event per artifact and event type, carrying every path."""

  def _artifact_and_event_pairs(self, artifact_dict, event_type, new_state=None,
                                registered_artifacts_ids=None):
    pairs = super()._artifact_and_event_pairs(artifact_dict, event_type, new_state,
                                              registered_artifacts_ids)
    first_event_of = {}
    merged = []
    for pair in pairs:
      artifact, event = pair[0], pair[1] if len(pair) > 1 else None
      if event is not None and artifact.id in first_event_of:
        first_event_of[artifact.id].path.steps.extend(event.path.steps)
        continue
      if event is not None and artifact.id:
        first_event_of[artifact.id] = event
      merged.append(pair)
    return merged


class AirflowComponentLauncher(in_process_component_launcher.InProcessComponentLauncher):
  """Runs components in the Airflow worker's process, as TFX's default Airflow launcher does."""

  def __init__(self, *args: Any, **kwargs: Any):
    super().__init__(*args, **kwargs)
    self._driver_class = _with_unique_artifact_names(self._driver_class)
    self._metadata_connection = OneEventPerArtifactMetadata(
        self._metadata_connection.connection_config)
