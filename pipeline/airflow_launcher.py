"""The component launcher for Airflow: TFX's in-process launcher with unique artifact names.

TFX's Airflow path runs each component through its older launcher, whose driver names every output
artifact ``<output key>:<run id>``. MLMD requires (type, name) to be unique, so two components of
one run that publish the same output key and type collide: ExampleValidator and
DistributionValidator both publish ``anomalies`` (ExampleAnomalies), and the second to finish
fails with ``AlreadyExistsError: Given node already exists``. LocalDagRunner and Kubeflow V2 name
artifacts ``<pipeline>:<run id>:<component>:<output key>:<index>``; this launcher gives the Airflow
path the same names, so the same pipeline runs under every orchestrator. It plugs in through
``AirflowPipelineConfig(supported_launcher_classes=...)``, TFX's extension point for launchers.
"""
import functools
from typing import Any, Dict, List, Type

from tfx import types
from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types
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


class UniqueArtifactNamesLauncher(in_process_component_launcher.InProcessComponentLauncher):
  """Runs components in the Airflow worker's process, as TFX's default Airflow launcher does."""

  def __init__(self, *args: Any, **kwargs: Any):
    super().__init__(*args, **kwargs)
    self._driver_class = _with_unique_artifact_names(self._driver_class)
