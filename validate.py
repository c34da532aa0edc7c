"""Checks a folder of new images against the pipeline's baseline data, without training.

    python validate.py --data-root NEW --pipeline-root runs/cats_and_dogs_filtered/pipeline_root
    python validate.py --data-root NEW --baseline-stats FeatureStats.pb --schema schema.pbtxt

NEW is read by the ExampleGen's own Beam transform (the same image features, streamed, so tens of
thousands of images need no more memory than a few); TFDV computes its statistics, validates them
against the baseline's schema and compares them with the baseline's training statistics using the
pipeline's drift comparators and thresholds. The baseline is, as in the pipeline, the latest data
that passed the pipeline's drift check, found in the pipeline root's MLMD.

What the photos show is checked too, when a model is at hand (--model, or the latest model the
pipeline pushed): a random sample of up to 1000 new images is embedded by the model's backbone and
compared with the training images' embeddings that the model carries (embedding drift), and its
predictions with those on its held-out images (prediction drift); components/drift/embedding_check.py.

Prints a per-feature report and writes to --output-dir: anomalies.pbtxt (TFDV), statistics.pb
(NEW's TFDV statistics), report.txt, distributions.png (baseline vs new data, feature by feature),
embedding_drift.png (embeddings in 2-D, confidence histograms) and report.html (the report, TFDV's
anomalies table, the pictures, and the Facets comparison). Exit status: 0 clean, 1 anomalies or
drift, 2 usage errors.
"""
import argparse
import os
import sys
from typing import List, Optional, Tuple

from pipeline import configs
from runner import flags

EXIT_CLEAN, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
  """The command cannot run as asked (no data, no baseline); the message says what to pass."""


def build_parser() -> argparse.ArgumentParser:
  parser = flags.FlagParser(description=__doc__)
  parser.add_argument('--data-root', required=True,
                      help='the new images: DIR/train|validation/<class>/*, DIR/<class>/*, or '
                           'DIR/span-<N>/... (the latest span is read)')
  baseline = parser.add_argument_group('baseline (one of)')
  baseline.add_argument('--pipeline-root',
                        help="the pipeline's root: its MLMD (metadata.sqlite) names the statistics "
                             'and schema of the last run that passed the drift check')
  baseline.add_argument('--baseline-stats',
                        help='a TFDV statistics file (FeatureStats.pb of a StatisticsGen split)')
  baseline.add_argument('--schema', help='a TFDV schema file (schema.pbtxt), with --baseline-stats')
  parser.add_argument('--model',
                      help='the model whose embeddings and predictions are compared: a SavedModel '
                           'or a serving dir (its newest version); default: the latest model '
                           'pushed by the pipeline at --pipeline-root')
  parser.add_argument('--output-dir', default='validation_report',
                      help='where the report and anomalies go (default %(default)s)')
  parser.add_argument('--beam-arg', action='append', default=[], metavar='--FLAG=VALUE',
                      help='Beam pipeline argument, repeatable (default: DirectRunner, all cores)')
  flags.add_drift_arguments(parser)
  return parser


def generate_statistics(data_root: str, stats_path: str, beam_args: List[str],
                        sample_path: Optional[str] = None, examples_path: Optional[str] = None,
                        budget=None):
  """TFDV statistics of every image under ``data_root``, written to ``stats_path``: the
  ImageExampleGen's transform, then TFDV's GenerateStatistics, on Beam; with ``sample_path``, a
  random sample of the decodable images' bytes (up to embedding_check.MAX_NEW_IMAGES) in that
  TFRecord file; with ``examples_path``, every image's tf.Example there (the data-quality checks).
  Files over ``budget`` (an image_budget.ImageBudget; default PipelineConfig's) are skipped, as the
  ExampleGen skips them. Returns (statistics, files seen, files skipped)."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from tfx.components.example_gen import input_processor  # pylint: disable=g-import-not-at-top
  from tfx.proto import example_gen_pb2  # pylint: disable=g-import-not-at-top
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  from components.drift import embedding_check  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import executor_config, images_to_examples, layout as layout_lib  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  from pipeline import beam_presets  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import statistics_options  # pylint: disable=g-import-not-at-top
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top

  layout = layout_lib.detect_layout(data_root)
  # The ExampleGen driver's own span resolution: {SPAN} -> the latest span folder.
  splits = [example_gen_pb2.Input.Split(name='images', pattern=layout.file_pattern)]
  processor = input_processor.FileBasedInputProcessor(data_root, splits)
  span, version = processor.resolve_span_and_version()
  pattern = processor.get_pattern_for_span_version(layout.file_pattern, span, version)
  split_names = list(features.SPLIT_NAMES)
  # The transform tags each example with its split; all splits are described together here, so
  # the pipeline's default split settings serve.
  config = {**executor_config.executor_settings(layout, configs.default('test_fraction'),
                                                configs.default('max_skipped_fraction'),
                                                budget or image_budget_of(None)),
            'split_ratios': configs.default('split_ratios')}
  options = PipelineOptions(beam_args or beam_presets.direct(
      input_images=flags.count_files(data_root)))
  pipeline = beam.Pipeline(options=options)
  results = pipeline | 'ToExamples' >> images_to_examples.ImagesToExamples(
      data_root, pattern, config, split_names)
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
       | 'Statistics' >> tfdv.GenerateStatistics(statistics_options())
       | 'Write' >> tfdv.WriteStatisticsToBinaryFile(stats_path))
  result = pipeline.run()
  result.wait_until_finish()
  counters = {c.key.metric.name: c.committed for c in result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace('image_example_gen'))['counters']}
  return (tfdv.load_stats_binary(stats_path), counters.get('files_seen', 0),
          counters.get('files_skipped', 0))


def load_baseline(args: argparse.Namespace) -> Tuple[object, object, str]:
  """(training statistics, schema, where they came from) of the baseline."""
  from google.protobuf import message, text_format  # pylint: disable=g-import-not-at-top
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from components.drift import drift_comparison  # pylint: disable=g-import-not-at-top
  from run_results import mlmd_runs  # pylint: disable=g-import-not-at-top

  if args.baseline_stats or args.schema:
    for path in (args.baseline_stats, args.schema):
      if not path or not os.path.isfile(path):
        raise UsageError(f'{path or "a missing path"} is not a file; pass both --baseline-stats '
                         'FeatureStats.pb and --schema schema.pbtxt.')
    try:
      statistics = tfdv.load_stats_binary(args.baseline_stats)
    except message.DecodeError as e:
      raise UsageError(f'{args.baseline_stats} is not a TFDV statistics file (FeatureStats.pb): '
                       f'{e}') from e
    try:
      schema = tfdv.load_schema_text(args.schema)
    except text_format.ParseError as e:
      raise UsageError(f'{args.schema} is not a TFDV schema (schema.pbtxt): {e}') from e
    return statistics, schema, f'{args.baseline_stats} and {args.schema}'
  if not args.pipeline_root:
    raise UsageError('no baseline: pass --pipeline-root ROOT (of a pipeline that has run) or '
                     '--baseline-stats and --schema.')
  metadata_path = configs.metadata_path_of(args.pipeline_root)
  try:
    store = mlmd_runs.open_store(metadata_path)
  except FileNotFoundError:
    raise UsageError(f'no pipeline run at {args.pipeline_root!r} ({metadata_path} is missing); '
                     'run the pipeline first or pass --baseline-stats and --schema.') from None
  baseline = mlmd_runs.accepted_baseline(store)
  if baseline is None:
    raise UsageError(f'the pipeline at {args.pipeline_root!r} has no run past its drift check '
                     'yet, so there is no baseline; run it first or pass --baseline-stats and '
                     '--schema.')
  statistics, schema = baseline
  train = drift_comparison.COMPARED_SPLIT_PAIRS[0][1]
  return (tfdv.load_stats_binary(os.path.join(statistics.uri, f'Split-{train}', 'FeatureStats.pb')),
          tfdv.load_schema_text(os.path.join(schema.uri, 'schema.pbtxt')),
          f'the {train} split of the last run that passed the drift check ({statistics.uri})')


def load_embedding_model(args: argparse.Namespace):
  """(the model whose embeddings are compared, or None, and a line saying which or why none)."""
  from components.modules.embedding import LoadedEmbeddingModel  # pylint: disable=g-import-not-at-top
  from run_results.served_models import NoModelError, resolve_model  # pylint: disable=g-import-not-at-top
  if not args.model and not args.pipeline_root:
    return None, 'embedding and prediction drift: not checked (pass --model to check them)'
  try:
    model_dir = resolve_model(args.model, args.pipeline_root)
  except NoModelError as e:
    if args.model:
      raise UsageError(str(e)) from e
    return None, f'embedding and prediction drift: not checked ({e})'
  model = LoadedEmbeddingModel.load(model_dir)
  if model is None:
    return None, (f'embedding and prediction drift: not checked ({model_dir} carries no embedding '
                  'baseline: it was saved before the pipeline stored one)')
  return model, f'embedding baseline: the model {model_dir}'


def load_training_features(args: argparse.Namespace):
  """(DataQuality's report, the examples with the base's features, the feature extractor) of the
  pipeline's newest run that computed them, or None (no pipeline root, or a base trained from
  scratch): the training set the new images' duplicates and labels are checked against."""
  from run_results import mlmd_runs  # pylint: disable=g-import-not-at-top
  if not args.pipeline_root:
    return None
  return mlmd_runs.data_quality_inputs(
      mlmd_runs.open_store(configs.metadata_path_of(args.pipeline_root)))


def check_data_quality(training, examples_path: str) -> List[str]:
  """The data-quality checks of the new images against the training set; the report's lines."""
  import json  # pylint: disable=g-import-not-at-top
  from components.data_quality import component, new_data  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  report, examples, extractor = training
  with open(os.path.join(report.uri, component.REPORT_FILE)) as f:
    trained = json.load(f)
  training_images = component.read_image_set(examples.uri, [component.TRAIN],
                                             trained['class_names'], trained['views'])
  new_images = new_data.read_new_images(examples_path, path_utils.serving_model_path(extractor.uri),
                                        trained['class_names'], trained['views'])
  return new_data.check(training_images, new_images)


def check_embeddings(model, sample_path: str, thresholds):
  """The embedding check of the sampled new images against ``model``'s baseline."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.drift import embedding_check  # pylint: disable=g-import-not-at-top
  images = [record.numpy() for record in tf.data.TFRecordDataset(sample_path)]
  return embedding_check.check_images(model, images, thresholds)


def validate(args: argparse.Namespace) -> Tuple[int, str]:
  """Runs the check; returns (exit status, report)."""
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from components.drift import drift_comparison as drift  # pylint: disable=g-import-not-at-top
  from components.drift import validation_report  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import DataLayoutError  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import detect_layout  # pylint: disable=g-import-not-at-top
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top

  thresholds = flags.drift_settings(args)['drift_thresholds']
  data_root = os.path.abspath(args.data_root)
  try:  # names only: a broken tree fails before anything is computed
    detect_layout(data_root)
  except DataLayoutError as e:
    raise UsageError(str(e)) from e
  baseline_statistics, schema, source = load_baseline(args)
  model, model_source = load_embedding_model(args)
  training = load_training_features(args)
  # The model's image budget, so the sample it embeds holds no image it would refuse.
  budget = image_budget_of(model.saved_model if model is not None else None)
  os.makedirs(args.output_dir, exist_ok=True)
  sample_path = os.path.join(args.output_dir, 'embedding_sample.tfrecord')
  examples_path = os.path.join(args.output_dir, 'new_examples.tfrecord')
  new_statistics, seen, skipped = generate_statistics(
      data_root, os.path.join(args.output_dir, 'statistics.pb'), args.beam_arg,
      sample_path if model is not None else None, examples_path if training else None, budget)
  if seen == skipped:  # no images is no evidence of drift
    raise UsageError(f'data root {data_root!r} yields no images: {seen} file(s) found, none a '
                     'decodable image within the image budget')
  anomalies = tfdv.validate_statistics(
      new_statistics, drift.with_drift_comparators(schema, thresholds),
      previous_statistics=baseline_statistics)
  rows = drift.findings(anomalies, drift.COMPARED_FEATURES)
  embedding_lines, picture = [model_source], None
  if model is not None:
    from components.drift import embedding_check  # pylint: disable=g-import-not-at-top
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
  quality_lines = ['data quality: not checked (the pipeline computed no base features: a base '
                   'trained from scratch, or pass --pipeline-root)']
  repeats = 0
  if training:
    quality = check_data_quality(training, examples_path)
    os.remove(examples_path)
    quality_lines = quality.lines()
    repeats = int(bool(quality.duplicates_of_training))
  report = '\n'.join([
      f'new data: {args.data_root} ({seen} files, {skipped} skipped as not decodable images or '
      f'over the image budget of {budget.max_pixels} pixels, {budget.max_bytes} bytes)',
      f'baseline: {source}', *embedding_lines, *quality_lines, '', drift.format_report(rows), '',
      f'{len(flagged) + repeats} finding(s): the new data differs from the baseline'
      + (' or repeats its training images' if repeats else '') if flagged or repeats else
      'no drift and no anomalies: the new data looks like the baseline'])
  validation_report.write_outputs(args.output_dir, new_statistics, baseline_statistics, anomalies,
                                  report, picture)
  return (EXIT_DRIFT if flagged or repeats else EXIT_CLEAN), report


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  from runner import run_logging  # pylint: disable=g-import-not-at-top
  run_logging.configure_logging(verbose=False)  # Beam's and TensorFlow's logs are not the report
  try:
    status, report = validate(args)
  except (UsageError, configs.ConfigError) as e:
    print(f'error: {e}', file=sys.stderr)
    return EXIT_USAGE
  print(report)
  print(f'report, anomalies and statistics: {os.path.abspath(args.output_dir)}')
  return status


if __name__ == '__main__':
  sys.exit(main())
