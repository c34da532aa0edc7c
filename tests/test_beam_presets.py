"""Beam presets: the arguments of each runner, and errors that name the missing flag."""
import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.direct.direct_runner import DirectRunner
import pytest
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import dependency_utils

from pipeline import beam_presets

IMAGE = 'registry/cats-dogs-tfx:1'


def _from_flags(*flags, default_image=None):
  parser = argparse.ArgumentParser()
  beam_presets.add_arguments(parser)
  return beam_presets.from_args(parser.parse_args(flags), default_image)


def test_direct_is_the_default_and_uses_all_cores():
  assert _from_flags() == ['--direct_running_mode=multi_processing', '--direct_num_workers=0']
  assert _from_flags('--direct-num-workers', '4')[-1] == '--direct_num_workers=4'


@pytest.mark.parametrize('images, in_process', [
    (0, True), (beam_presets.IN_PROCESS_MAX_IMAGES - 1, True),
    (beam_presets.IN_PROCESS_MAX_IMAGES, False), (None, False)])
def test_direct_runs_small_inputs_in_process(images, in_process):
  options = PipelineOptions(beam_presets.direct(0, images)).view_as(DirectOptions)
  assert (options.direct_running_mode, options.direct_num_workers) == (
      ('in_memory', 1) if in_process else ('multi_processing', 0))


def test_in_process_beam_executors_do_not_package_tfx(monkeypatch):
  """Given Beam arguments, TFX's Beam executors build an sdist of the TFX installation for remote
  workers (seconds, ~50 MiB in the temp folder); the in-process DirectRunner never reads it."""
  def build_ephemeral_package():
    raise AssertionError('TFX was packaged for remote Beam workers')
  monkeypatch.setattr(dependency_utils, 'build_ephemeral_package', build_ephemeral_package)
  executor = statistics_gen_executor.Executor(base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_presets.direct(0, 220)))
  with executor._make_beam_pipeline() as pipeline:  # pylint: disable=protected-access
    assert (pipeline | beam.Create([1, 2]) | beam.Map(lambda x: x * 2))
  assert isinstance(pipeline.runner, DirectRunner)


def test_explicit_workers_always_get_worker_processes():
  assert beam_presets.direct(2, 10) == ['--direct_running_mode=multi_processing',
                                        '--direct_num_workers=2']


def test_the_local_runner_counts_the_sample(tmp_path):
  from runner import flags, local_resources
  config = local_resources.local_config(flags.local_parser().parse_args(
      ['--pipeline-root', str(tmp_path / 'root'), '--serving-dir', str(tmp_path / 'serving')]))
  assert local_resources.count_files(config.data_root) == 220
  assert config.beam_pipeline_args == []  # Beam's default: in process
  assert local_resources.count_files(str(tmp_path / 'missing')) is None


def test_dataflow_runs_the_workers_in_the_image():
  assert _from_flags('--beam-preset', 'dataflow', '--dataflow-project', 'p', '--dataflow-region',
                     'us-central1', '--temp-location', 'gs://b/tmp', default_image=IMAGE) == [
                         '--runner=DataflowRunner', '--project=p', '--region=us-central1',
                         '--temp_location=gs://b/tmp', f'--sdk_container_image={IMAGE}']


def test_an_explicit_worker_image_wins_and_extras_come_last():
  args = _from_flags('--beam-preset', 'flink', '--flink-master', 'flink:8081',
                     '--sdk-container-image', 'other:2', '--beam-arg=--parallelism=8',
                     default_image=IMAGE)
  assert args == ['--runner=FlinkRunner', '--flink_master=flink:8081',
                  '--environment_type=DOCKER', '--environment_config=other:2', '--parallelism=8']


def test_spark_takes_a_master_url_or_a_job_endpoint():
  assert beam_presets.spark('spark://m:7077', None, IMAGE)[:2] == [
      '--runner=SparkRunner', '--spark_master_url=spark://m:7077']
  assert beam_presets.spark(None, 'jobserver:8099', IMAGE)[:2] == [
      '--runner=PortableRunner', '--job_endpoint=jobserver:8099']
  for master, endpoint in ((None, None), ('spark://m:7077', 'jobserver:8099')):
    with pytest.raises(beam_presets.BeamPresetError, match='exactly one of --spark-master-url'):
      beam_presets.spark(master, endpoint, IMAGE)


@pytest.mark.parametrize('call, flags', [
    (lambda: beam_presets.dataflow(None, 'r', 'gs://b/t', IMAGE), '--dataflow-project'),
    (lambda: beam_presets.dataflow('p', None, None, IMAGE), '--dataflow-region, --temp-location'),
    (lambda: beam_presets.dataflow('p', 'r', 'gs://b/t', None), '--sdk-container-image'),
    (lambda: beam_presets.flink(None, IMAGE), '--flink-master'),
    (lambda: beam_presets.spark('spark://m:7077', None, None), '--sdk-container-image'),
])
def test_missing_values_name_their_flags(call, flags):
  with pytest.raises(beam_presets.BeamPresetError, match=f'needs {flags}$'):
    call()


def test_bad_values_are_rejected():
  with pytest.raises(beam_presets.BeamPresetError, match='gs:// path'):
    beam_presets.dataflow('p', 'r', '/tmp/local', IMAGE)
  with pytest.raises(beam_presets.BeamPresetError, match='>= 0'):
    beam_presets.direct(-1)
