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
import bootstrap  # pylint: disable=unused-import  # first: the Keras switch, before TensorFlow
import argparse
import os
import sys
from typing import List, Optional, Tuple

from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import message, text_format
import tensorflow_data_validation as tfdv

from components.drift import drift_comparison
from components.drift import new_data
from components.image_example_gen import DataLayoutError, detect_layout, executor_config
from components.modules.embedding import LoadedEmbeddingModel
from pipeline import beam_presets
from pipeline import configs
from pipeline.pipeline import statistics_options
from run_results import mlmd_runs
from run_results.served_models import NoModelError, image_budget_of, resolve_model
from runner import flags
from runner import local_resources
from runner import run_logging

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


def load_baseline(args: argparse.Namespace) -> Tuple[object, object, str]:
  """(training statistics, schema, where they came from) of the baseline."""

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
  if not args.pipeline_root:
    return None
  return mlmd_runs.data_quality_inputs(
      mlmd_runs.open_store(configs.metadata_path_of(args.pipeline_root)))


def new_images(data_root: str, beam_args: List[str], budget) -> new_data.NewImages:
  """The new images with the settings the pipeline reads images with (its default splits: all
  splits are described together here) and the Beam options of --beam-arg or the local preset."""
  settings = {**executor_config.executor_settings(
      detect_layout(data_root), configs.default('test_fraction'),
      configs.default('max_skipped_fraction'), budget),
              'split_ratios': configs.default('split_ratios')}
  options = PipelineOptions(beam_args or beam_presets.direct(
      input_images=local_resources.count_files(data_root)))
  return new_data.NewImages(data_root, settings, budget, options, statistics_options())


def validate(args: argparse.Namespace) -> Tuple[int, str]:
  """Runs the check; returns (exit status, report)."""
  thresholds = flags.drift_settings(args)['drift_thresholds']
  data_root = os.path.abspath(args.data_root)
  try:  # names only: a broken tree fails before anything is computed
    detect_layout(data_root)
  except DataLayoutError as e:
    raise UsageError(str(e)) from e
  baseline = load_baseline(args)
  model, model_line = load_embedding_model(args)
  training = load_training_features(args)
  # The model's image budget, so the sample it embeds holds no image it would refuse.
  budget = image_budget_of(model.saved_model if model is not None else None)
  try:
    found, report = new_data.validate(new_images(data_root, args.beam_arg, budget), baseline,
                                      thresholds, args.output_dir, model, model_line, training)
  except new_data.NoImagesError as e:
    raise UsageError(str(e)) from e
  return (EXIT_DRIFT if found else EXIT_CLEAN), report


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
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
