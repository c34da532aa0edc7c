"""Beam pipeline arguments for the runners the pipeline's Beam components can run on.

Every preset except ``direct`` runs Beam workers away from the orchestrator, so the workers need
the project's code (ImageExampleGen's DoFns, the Transform module): they run the project's image
(the Dockerfile's; its entrypoint is Beam's SDK harness boot), and the pipeline root must be on
storage they can reach (gs://, s3://, hdfs://).
"""
import argparse
from typing import List, Optional

from pipeline.configs import ConfigError

PRESETS = ('direct', 'dataflow', 'flink', 'spark')
# Below this many input images the direct preset runs Beam in the orchestrator's process. Each
# worker process of the multi_processing mode loads TensorFlow and the components' libraries first
# (seconds, ~1 GiB each); measured on 2 CPUs (benchmarks/results/beam_scaling*.md), 2 workers gained
# nothing on the tutorial's 3 000 images (28 s with 1, 31 s with 2) and 1.36x on 30 000.
IN_PROCESS_MAX_IMAGES = 10_000


class BeamPresetError(ConfigError):
  """A preset is missing a value it needs; the message names the flag to pass."""


def _require(preset: str, **values: Optional[str]) -> None:
  missing = [name for name, value in values.items() if not value]
  if missing:
    flags = ', '.join('--' + name.replace('_', '-') for name in missing)
    raise BeamPresetError(f'the {preset!r} Beam preset needs {flags}')


def direct(num_workers: int = 0, input_images: Optional[int] = None) -> List[str]:
  """DirectRunner on the orchestrator's machine: ``num_workers`` worker processes, or with 0, in
  the orchestrator's own process when the input is known to hold fewer than IN_PROCESS_MAX_IMAGES
  images, else one worker process per core.

  In process is Beam's default (DirectRunner, in_memory mode, one worker), so it is asked for with
  no arguments: given any, each TFX Beam executor packages the whole TFX installation as an sdist
  for remote workers (dependency_utils.make_beam_dependency_flags), which the DirectRunner never
  reads: 1.5 s per Beam component and ~50 MiB left in the temp folder each time.
  """
  if num_workers < 0:
    raise BeamPresetError(f'--direct-num-workers must be >= 0, got {num_workers}')
  if num_workers == 0 and input_images is not None and input_images < IN_PROCESS_MAX_IMAGES:
    return []
  return ['--direct_running_mode=multi_processing', f'--direct_num_workers={num_workers}']


def dataflow(project: Optional[str], region: Optional[str], temp_location: Optional[str],
             sdk_container_image: Optional[str]) -> List[str]:
  """Google Cloud Dataflow; workers start from the project's image (custom SDK container)."""
  _require('dataflow', dataflow_project=project, dataflow_region=region,
           temp_location=temp_location, sdk_container_image=sdk_container_image)
  if not temp_location.startswith('gs://'):
    raise BeamPresetError(f'--temp-location must be a gs:// path for Dataflow, got {temp_location!r}')
  return ['--runner=DataflowRunner', f'--project={project}', f'--region={region}',
          f'--temp_location={temp_location}', f'--sdk_container_image={sdk_container_image}']


def _docker_environment(sdk_container_image: str) -> List[str]:
  """Portable runners start one SDK harness container per worker from this image."""
  return ['--environment_type=DOCKER', f'--environment_config={sdk_container_image}']


def flink(flink_master: Optional[str], sdk_container_image: Optional[str]) -> List[str]:
  """A Flink cluster through Beam's Flink job server (started by Beam; needs Java)."""
  _require('flink', flink_master=flink_master, sdk_container_image=sdk_container_image)
  return ['--runner=FlinkRunner', f'--flink_master={flink_master}'] + _docker_environment(
      sdk_container_image)


def spark(spark_master_url: Optional[str], job_endpoint: Optional[str],
          sdk_container_image: Optional[str]) -> List[str]:
  """Spark: a master URL (Beam starts the Spark job server) or a running job server's endpoint."""
  if bool(spark_master_url) == bool(job_endpoint):
    raise BeamPresetError("the 'spark' Beam preset needs exactly one of --spark-master-url "
                          '(spark://HOST:7077) and --job-endpoint (HOST:8099 of a job server)')
  _require('spark', sdk_container_image=sdk_container_image)
  runner = (['--runner=SparkRunner', f'--spark_master_url={spark_master_url}'] if spark_master_url
            else ['--runner=PortableRunner', f'--job_endpoint={job_endpoint}'])
  return runner + _docker_environment(sdk_container_image)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The --beam-preset flag, the values the presets need, and free-form --beam-arg."""
  beam = parser.add_argument_group('Beam (where StatisticsGen, Transform, Evaluator... run)')
  beam.add_argument('--beam-preset', choices=PRESETS, default='direct',
                    help='Beam runner of the Beam components (default %(default)s)')
  beam.add_argument('--direct-num-workers', type=int, default=0,
                    help='direct: worker processes; 0 (default) = automatic: none (Beam runs '
                         f'in this process) for fewer than {IN_PROCESS_MAX_IMAGES} input images, '
                         'else one per core')
  beam.add_argument('--dataflow-project', help='dataflow: Google Cloud project')
  beam.add_argument('--dataflow-region', help='dataflow: region, e.g. us-central1')
  beam.add_argument('--temp-location', help='dataflow: gs:// folder for temporary files')
  beam.add_argument('--flink-master', help='flink: HOST:PORT of the Flink master')
  beam.add_argument('--spark-master-url', help='spark: spark://HOST:7077')
  beam.add_argument('--job-endpoint', help='spark: HOST:PORT of a running Beam Spark job server')
  beam.add_argument('--sdk-container-image',
                    help='dataflow, flink, spark: image of the Beam workers, the one built from '
                         'the Dockerfile')
  beam.add_argument('--beam-arg', action='append', default=[], metavar='ARG',
                    help='extra Beam pipeline argument, repeatable, appended after the preset\'s '
                         '(a later value wins), e.g. --beam-arg=--max_num_workers=8')


def from_args(args: argparse.Namespace, default_sdk_container_image: Optional[str] = None,
              input_images: Optional[int] = None) -> List[str]:
  """The chosen preset's Beam arguments followed by the --beam-arg extras; ``input_images``, when
  the runner can count them, lets the direct preset run small inputs in process."""
  image = args.sdk_container_image or default_sdk_container_image
  preset_args = {
      'direct': lambda: direct(args.direct_num_workers, input_images),
      'dataflow': lambda: dataflow(args.dataflow_project, args.dataflow_region,
                                   args.temp_location, image),
      'flink': lambda: flink(args.flink_master, image),
      'spark': lambda: spark(args.spark_master_url, args.job_endpoint, image),
  }[args.beam_preset]()
  return preset_args + list(args.beam_arg)
