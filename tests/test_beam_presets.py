"""Beam presets: the arguments of each runner, and errors that name the missing flag."""
import argparse

import pytest

from pipeline import beam_presets

IMAGE = 'registry/cats-dogs-tfx:1'


def _from_flags(*flags, default_image=None):
  parser = argparse.ArgumentParser()
  beam_presets.add_arguments(parser)
  return beam_presets.from_args(parser.parse_args(flags), default_image)


def test_direct_is_the_default_and_uses_all_cores():
  assert _from_flags() == ['--direct_running_mode=multi_processing', '--direct_num_workers=0']
  assert _from_flags('--direct-num-workers', '4')[-1] == '--direct_num_workers=4'


@pytest.mark.parametrize('images, mode', [
    (0, 'in_memory'), (beam_presets.IN_PROCESS_MAX_IMAGES - 1, 'in_memory'),
    (beam_presets.IN_PROCESS_MAX_IMAGES, 'multi_processing'), (None, 'multi_processing')])
def test_direct_runs_small_inputs_in_process(images, mode):
  assert beam_presets.direct(0, images)[0] == f'--direct_running_mode={mode}'


def test_explicit_workers_always_get_worker_processes():
  assert beam_presets.direct(2, 10) == ['--direct_running_mode=multi_processing',
                                        '--direct_num_workers=2']


def test_the_local_runner_counts_the_sample(tmp_path):
  from pipeline import flags
  config = flags.local_config(flags.local_parser().parse_args(
      ['--pipeline-root', str(tmp_path / 'root'), '--serving-dir', str(tmp_path / 'serving')]))
  assert flags.count_files(config.data_root) == 220
  assert config.beam_pipeline_args == ['--direct_running_mode=in_memory', '--direct_num_workers=1']
  assert flags.count_files(str(tmp_path / 'missing')) is None


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
