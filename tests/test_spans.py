"""Spans: a root of span-<N>/ folders, the latest read and recorded; the drift check from a cold
start to a drifted span, through LocalDagRunner and MLMD."""
import os

import pytest
from ml_metadata import metadata_store
from tfx.components import SchemaGen, StatisticsGen
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.pipeline import Pipeline

from components.drift.drift_gate import DataDriftError
from components.drift.drift_thresholds import DriftThresholds
from components.image_example_gen import DataLayoutError, ImageExampleGen, detect_layout
from components.image_example_gen import images_to_examples
from components.image_schema import ImageSchema
from pipeline import configs
from run_results import mlmd_runs, run_summary
from pipeline.pipeline import drift_check, statistics_options
from tests.trees import darkened_copy, make_tree

SPAN_1 = {'train': {'cats': 3, 'dogs': 3}, 'validation': {'cats': 10, 'dogs': 10}}
SPAN_2 = {'train': {'cats': 8, 'dogs': 8}, 'validation': {'cats': 10, 'dogs': 10}}


@pytest.fixture
def span_root(tmp_path):
  root = tmp_path / 'data'
  make_tree(str(root / 'span-1'), SPAN_1)
  make_tree(str(root / 'span-2'), SPAN_2)
  return str(root)


def test_layout_of_a_span_root_is_the_latest_spans(span_root):
  os.makedirs(os.path.join(span_root, 'span-0', 'birds'))  # an older span's layout is not read
  layout = detect_layout(span_root)
  assert layout.spans and layout.class_names == ('cats', 'dogs')
  assert layout.file_pattern == 'span-{SPAN}/*/*/*'


def test_span_folders_mixed_with_data_folders_fail_clearly(span_root):
  make_tree(os.path.join(span_root, 'train'), {'train': {'cats': 1}})
  with pytest.raises(DataLayoutError, match=r"mixes span folders .* \['train'\]"):
    detect_layout(span_root)


@pytest.mark.parametrize('pattern, base', [
    ('span-3/*/*/*', 'span-3'), ('*/*', ''), ('data/span-12/*/*', 'data/span-12')])
def test_pattern_base_is_the_folder_before_the_wildcards(pattern, base):
  assert images_to_examples.pattern_base(pattern) == base


def _run(tmp_path, span_root):
  """ImageExampleGen -> StatisticsGen -> SchemaGen -> ImageSchema and the pipeline's drift check."""
  example_gen = ImageExampleGen(input_base=span_root, **{name: configs.default(name) for name in (
      'test_fraction', 'split_ratios', 'max_skipped_fraction', 'max_image_pixels',
      'max_image_bytes')})
  statistics_gen = StatisticsGen(
      examples=example_gen.outputs['examples'], stats_options=statistics_options())
  schema_gen = SchemaGen(statistics=statistics_gen.outputs['statistics'])
  image_schema = ImageSchema(schema=schema_gen.outputs['schema'])
  drift_nodes = drift_check(statistics_gen, DriftThresholds(), on_drift='fail')
  metadata_path = str(tmp_path / 'metadata.sqlite')
  LocalDagRunner().run(Pipeline(
      pipeline_name='spans', pipeline_root=str(tmp_path / 'root'),
      components=[example_gen, statistics_gen, schema_gen, image_schema, *drift_nodes],
      metadata_connection_config=metadata.sqlite_metadata_connection_config(metadata_path)))
  return metadata_path


def _latest(store, type_name):
  return max(store.get_artifacts_by_type(type_name), key=lambda a: a.id)


def test_latest_span_is_read_and_a_darker_span_is_stopped(tmp_path, span_root):
  metadata_path = _run(tmp_path, span_root)
  executions = run_summary.summarize(metadata_path).executions
  assert {state for state, _ in executions.values()} == {'COMPLETE'}
  store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
  examples = _latest(store, 'Examples')
  assert examples.custom_properties['span'].int_value == 2
  assert examples.custom_properties['images_used'].int_value == 36  # span-2's 16 + 20 images
  anomalies = _latest(store, 'ExampleAnomalies')
  assert anomalies.custom_properties['blessed'].struct_value['train'] == 2  # cold start
  report = _latest(store, 'components.DriftReport')
  assert report.custom_properties['has_baseline'].int_value == 0
  first_baseline = mlmd_runs.accepted_baseline(store)[0]

  # A new span of darker photos: the run stops before training, and again when re-run.
  darkened_copy(os.path.join(span_root, 'span-2'), os.path.join(span_root, 'span-3'))
  for _ in range(2):
    with pytest.raises(DataDriftError, match='mean_brightness Jensen-Shannon'):
      _run(tmp_path, span_root)
    assert _latest(store, 'Examples').custom_properties['span'].int_value == 3
    assert mlmd_runs.accepted_baseline(store)[0].id == first_baseline.id
