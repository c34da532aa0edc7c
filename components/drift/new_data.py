"""New images checked against a baseline: validate.py's work, on Beam, TFDV and the model.

The images go through the ImageExampleGen's own transform (the same decoding, budget and skips),
TFDV describes them and compares them with the baseline statistics by the pipeline's drift
comparators; with a model, a sample is embedded and compared with the training embeddings it
carries (components/drift/embedding_check.py); with the pipeline's base features, the data-quality
checks look for repeats of training images and doubtful labels (components/data_quality). The
caller (validate.py) finds the baseline, the model and the settings; this module computes.
"""
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2
from tfx.utils import path_utils
from tfx_bsl.public import tfxio

from components.data_quality import component as data_quality
from components.data_quality import new_data as quality_of_new_data
from components.drift import drift_comparison
from components.drift import embedding_check
from components.drift import validation_report
from components.image_example_gen import images_to_examples
from components.image_example_gen import layout as layout_lib
from components.modules import features


@dataclasses.dataclass(frozen=True)
class NewImages:
  """What validate.py hands over: the images and the settings the pipeline would read them with."""
  data_root: str
  # executor_config.executor_settings(...) plus split_ratios: the ExampleGen's transform settings.
  example_gen_settings: Dict[str, Any]
  budget: Any  # image_budget.ImageBudget: files over it are skipped, as the ExampleGen skips them
  beam_options: Any  # PipelineOptions
  statistics_options: Any  # tfdv.StatsOptions, the StatisticsGen's


def generate_statistics(images: NewImages, stats_path: str, sample_path: Optional[str] = None,
                        examples_path: Optional[str] = None) -> Tuple[Any, int, int]:
  """TFDV statistics of every image, written to ``stats_path``; with ``sample_path``, a random
  sample of the decodable images' bytes (up to embedding_check.MAX_NEW_IMAGES) in that TFRecord
  file; with ``examples_path``, every image's tf.Example there (the data-quality checks).
  Returns (statistics, files seen, files skipped)."""
  layout = layout_lib.detect_layout(images.data_root)
  # The ExampleGen driver's own span resolution: {SPAN} -> the latest span folder.
  splits = [example_gen_pb2.Input.Split(name='images', pattern=layout.file_pattern)]
  processor = input_processor.FileBasedInputProcessor(images.data_root, splits)
  span, version = processor.resolve_span_and_version()
  pattern = processor.get_pattern_for_span_version(layout.file_pattern, span, version)
  split_names = list(features.SPLIT_NAMES)
  pipeline = beam.Pipeline(options=images.beam_options)
  results = pipeline | 'ToExamples' >> images_to_examples.ImagesToExamples(
      images.data_root, pattern, images.example_gen_settings, split_names)
  # The transform tags each example with its split; all splits are described together here.
  examples = [results[split] for split in split_names] | 'AllSplits' >> beam.Flatten()
  if sample_path:
    _ = (examples
         | 'ImageBytes' >> beam.Map(
             lambda example: example.features.feature[features.IMAGE_KEY].bytes_list.value[0])
         | 'Sample' >> beam.combiners.Sample.FixedSizeGlobally(embedding_check.MAX_NEW_IMAGES)
         | 'Unlist' >> beam.FlatMap(lambda images: images)
         | 'WriteSample' >> beam.io.WriteToTFRecord(sample_path, shard_name_template=''))
  serialized = examples | 'Serialize' >> beam.Map(lambda example: example.SerializeToString())
  if examples_path:
    _ = serialized | 'WriteExamples' >> beam.io.WriteToTFRecord(examples_path,
                                                               shard_name_template='')
  _ = (serialized
       | 'ToRecordBatches' >> tfxio.TFExampleBeamRecord(physical_format='inmem').BeamSource()
       | 'Statistics' >> tfdv.GenerateStatistics(images.statistics_options)
       | 'Write' >> tfdv.WriteStatisticsToBinaryFile(stats_path))
  result = pipeline.run()
  result.wait_until_finish()
  counters = {c.key.metric.name: c.committed for c in result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace('image_example_gen'))['counters']}
  return (tfdv.load_stats_binary(stats_path), counters.get('files_seen', 0),
          counters.get('files_skipped', 0))


def check_data_quality(training, examples_path: str):
  """The data-quality checks of the new images against the training set (``training``: the
  pipeline's DataQuality report, its examples with base features and the feature extractor)."""
  report, examples, extractor = training
  with open(os.path.join(report.uri, data_quality.REPORT_FILE)) as f:
    trained = json.load(f)
  training_images = data_quality.read_image_set(examples.uri, [data_quality.TRAIN],
                                                trained['class_names'], trained['views'])
  new_images = quality_of_new_data.read_new_images(
      examples_path, path_utils.serving_model_path(extractor.uri), trained['class_names'],
      trained['views'])
  return quality_of_new_data.check(training_images, new_images)


def check_embeddings(model, sample_path: str, thresholds):
  """The embedding check of the sampled new images against ``model``'s baseline."""
  images = [record.numpy() for record in tf.data.TFRecordDataset(sample_path)]
  return embedding_check.check_images(model, images, thresholds)


class NoImagesError(ValueError):
  pass


def validate(images: NewImages, baseline: Tuple[Any, Any, str], thresholds, output_dir: str,
             model=None, model_line: str = '', training=None) -> Tuple[bool, str]:
  """Checks the new images against ``baseline`` (statistics, schema, where they came from), the
  embeddings against ``model``'s (a LoadedEmbeddingModel, or None), and repeats and labels against
  ``training`` (or None); writes the report into ``output_dir``. Returns (whether anything was
  found, the report)."""
  baseline_statistics, schema, source = baseline
  os.makedirs(output_dir, exist_ok=True)
  sample_path = os.path.join(output_dir, 'embedding_sample.tfrecord')
  examples_path = os.path.join(output_dir, 'new_examples.tfrecord')
  new_statistics, seen, skipped = generate_statistics(
      images, os.path.join(output_dir, 'statistics.pb'),
      sample_path if model is not None else None, examples_path if training else None)
  if seen == skipped:  # no images is no evidence of drift
    raise NoImagesError(f'data root {images.data_root!r} yields no images: {seen} file(s) found, '
                        'none a decodable image within the image budget')
  anomalies = tfdv.validate_statistics(
      new_statistics, drift_comparison.with_drift_comparators(schema, thresholds),
      previous_statistics=baseline_statistics)
  rows = drift_comparison.findings(anomalies, drift_comparison.COMPARED_FEATURES)
  embedding_lines, picture = [model_line], None
  if model is not None:
    if seen - skipped < embedding_check.MIN_NEW_IMAGES:
      embedding_lines.append(f'embedding and prediction drift: not checked ({seen - skipped} '
                             f'image(s); the test needs {embedding_check.MIN_NEW_IMAGES})')
    else:
      check = check_embeddings(model, sample_path, thresholds)
      rows = sorted(rows + check.findings, key=lambda f: not f.flagged)
      embedding_lines.append(embedding_check.summary_line(check))
      picture = embedding_check.picture_png(check, model)
    os.remove(sample_path)
  flagged = [row for row in rows if row.flagged]
  quality_lines: List[str] = [
      'data quality: not checked (the pipeline computed no base features: a base trained from '
      'scratch, or pass --pipeline-root)']
  repeats = 0
  if training:
    quality = check_data_quality(training, examples_path)
    os.remove(examples_path)
    quality_lines = quality.lines()
    repeats = int(bool(quality.duplicates_of_training))
  budget = images.budget
  report = '\n'.join([
      f'new data: {images.data_root} ({seen} files, {skipped} skipped as not decodable images or '
      f'over the image budget of {budget.max_pixels} pixels, {budget.max_bytes} bytes)',
      f'baseline: {source}', *embedding_lines, *quality_lines, '',
      drift_comparison.format_report(rows), '',
      f'{len(flagged) + repeats} finding(s): the new data differs from the baseline'
      + (' or repeats its training images' if repeats else '') if flagged or repeats else
      'no drift and no anomalies: the new data looks like the baseline'])
  validation_report.write_outputs(output_dir, new_statistics, baseline_statistics, anomalies,
                                  report, picture)
  return bool(flagged or repeats), report
