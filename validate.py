"""Checks a folder of new images against the pipeline's baseline data, without training.

    python validate.py --data-root NEW --pipeline-root runs/cats_and_dogs_filtered/pipeline_root
    python validate.py --data-root NEW --baseline-stats FeatureStats.pb --schema schema.pbtxt

NEW is read by the ExampleGen's own Beam transform (the same image features, streamed, so tens of
thousands of images need no more memory than a few); TFDV computes its statistics, validates them
against the baseline's schema and compares them with the baseline's training statistics using the
pipeline's drift comparators and thresholds. The baseline is, as in the pipeline, the latest data
that passed the pipeline's drift check, found in the pipeline root's MLMD.

Prints a per-feature report and writes to --output-dir: anomalies.pbtxt (TFDV), statistics.pb
(NEW's TFDV statistics), report.txt, distributions.png (baseline vs new data, feature by feature)
and report.html (the report, TFDV's anomalies table, the picture, and the Facets comparison). Exit status: 0 clean, 1 anomalies or drift, 2 usage
errors.
"""
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # pylint: disable=g-import-not-at-top,wrong-import-position
import sys
from typing import List, Optional, Tuple

from pipeline import drift as drift_settings

EXIT_CLEAN, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
  """The command cannot run as asked (no data, no baseline); the message says what to pass."""


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
  parser.add_argument('--output-dir', default='validation_report',
                      help='where the report and anomalies go (default %(default)s)')
  parser.add_argument('--beam-arg', action='append', default=[], metavar='--FLAG=VALUE',
                      help='Beam pipeline argument, repeatable (default: DirectRunner, all cores)')
  drift_settings.add_arguments(parser)
  return parser


def generate_statistics(data_root: str, stats_path: str, beam_args: List[str]):
  """TFDV statistics of every image under ``data_root``, written to ``stats_path``: the
  ImageExampleGen's transform, then TFDV's GenerateStatistics, on Beam. Returns (statistics, files
  seen, files skipped)."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from tfx.components.example_gen import input_processor  # pylint: disable=g-import-not-at-top
  from tfx.proto import example_gen_pb2  # pylint: disable=g-import-not-at-top
  from tfx_bsl.public import tfxio  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import component, executor, layout as layout_lib  # pylint: disable=g-import-not-at-top
  from pipeline import beam_presets  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import statistics_options  # pylint: disable=g-import-not-at-top

  layout = layout_lib.detect_layout(data_root)
  # The ExampleGen driver's own span resolution: {SPAN} -> the latest span folder.
  splits = [example_gen_pb2.Input.Split(name='images', pattern=layout.file_pattern)]
  processor = input_processor.FileBasedInputProcessor(data_root, splits)
  span, version = processor.resolve_span_and_version()
  pattern = processor.get_pattern_for_span_version(layout.file_pattern, span, version)
  split_names = list(component.DEFAULT_SPLIT_RATIOS)
  # The transform tags each example with its split; all splits are described together here.
  config = {'class_names': list(layout.class_names), 'train_folder': layout_lib.TRAIN_FOLDER,
            'test_fraction': 0.2, 'split_ratios': component.DEFAULT_SPLIT_RATIOS}
  options = PipelineOptions(beam_args or beam_presets.direct())
  pipeline = beam.Pipeline(options=options)
  results = pipeline | 'ToExamples' >> executor.ImagesToExamples(
      data_root, pattern, config, split_names)
  _ = ([results[split] for split in split_names]
       | 'AllSplits' >> beam.Flatten()
       | 'Serialize' >> beam.Map(lambda example: example.SerializeToString())
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
  from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from components import drift  # pylint: disable=g-import-not-at-top

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
  metadata_path = os.path.join(args.pipeline_root, 'metadata.sqlite')
  if not os.path.isfile(metadata_path):
    raise UsageError(f'no pipeline run at {args.pipeline_root!r} ({metadata_path} is missing); '
                     'run the pipeline first or pass --baseline-stats and --schema.')
  store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
  baseline = drift.accepted_baseline(store)
  if baseline is None:
    raise UsageError(f'the pipeline at {args.pipeline_root!r} has no run past its drift check '
                     'yet, so there is no baseline; run it first or pass --baseline-stats and '
                     '--schema.')
  statistics, schema = baseline
  train = drift.COMPARED_SPLIT_PAIRS[0][1]
  return (tfdv.load_stats_binary(os.path.join(statistics.uri, f'Split-{train}', 'FeatureStats.pb')),
          tfdv.load_schema_text(os.path.join(schema.uri, 'schema.pbtxt')),
          f'the {train} split of the last run that passed the drift check ({statistics.uri})')


def _feature_stats(statistics, name: str):
  """The FeatureNameStatistics of ``name`` in the first data set of ``statistics``, or None."""
  for feature in statistics.datasets[0].features:
    if feature.path.step and feature.path.step[-1] == name:
      return feature
  return None


def distributions_png(new_statistics, baseline_statistics, feature_names) -> bytes:
  """One panel per feature: baseline vs new data, as shares of the examples (histogram buckets
  of numeric features, values of categorical ones), from the TFDV statistics alone."""
  import io  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  columns = 4
  rows = -(-len(feature_names) // columns)
  figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
  for axis, name in zip(axes.flat, feature_names):
    axis.set_title(name, fontsize=9)
    categories = sorted({b.label for statistics in (baseline_statistics, new_statistics)
                         for feature in [_feature_stats(statistics, name)] if feature
                         for b in feature.string_stats.rank_histogram.buckets})
    for offset, (statistics, label) in zip((-0.2, 0.2), ((baseline_statistics, 'baseline'),
                                                         (new_statistics, 'new data'))):
      feature = _feature_stats(statistics, name)
      if feature is None:
        continue
      if feature.HasField('num_stats'):
        histogram = next((h for h in feature.num_stats.histograms if h.type == h.STANDARD), None)
        if histogram and histogram.buckets:
          total = sum(b.sample_count for b in histogram.buckets) or 1
          axis.stairs([b.sample_count / total for b in histogram.buckets],
                      [histogram.buckets[0].low_value] + [b.high_value for b in histogram.buckets],
                      label=label, fill=label == 'baseline', alpha=0.6)
      else:
        counts = {b.label: b.sample_count for b in feature.string_stats.rank_histogram.buckets}
        total = sum(counts.values()) or 1
        axis.bar([i + offset for i in range(len(categories))],
                 [counts.get(c, 0) / total for c in categories], width=0.4, label=label)
        axis.set_xticks(range(len(categories)), categories)
    axis.tick_params(labelsize=7)
  for axis in list(axes.flat)[len(feature_names):]:
    axis.axis('off')
  axes.flat[0].legend(fontsize=8)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=80)
  plt.close(figure)
  return buffer.getvalue()


def write_outputs(output_dir: str, new_statistics, baseline_statistics, anomalies,
                  report: str) -> None:
  """anomalies.pbtxt, report.txt, distributions.png and report.html in ``output_dir``."""
  import html  # pylint: disable=g-import-not-at-top
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from tensorflow_data_validation.utils import display_util  # pylint: disable=g-import-not-at-top

  from components import drift  # pylint: disable=g-import-not-at-top

  tfdv.write_anomalies_text(anomalies, os.path.join(output_dir, 'anomalies.pbtxt'))
  with open(os.path.join(output_dir, 'distributions.png'), 'wb') as f:
    f.write(distributions_png(new_statistics, baseline_statistics, drift.COMPARED_FEATURES))
  with open(os.path.join(output_dir, 'report.txt'), 'w') as f:
    f.write(report + '\n')
  page = [
      '<html><head><meta charset="utf-8"><title>Image data validation</title></head><body>',
      '<h1>New data against the baseline</h1>', f'<pre>{html.escape(report)}</pre>',
      '<h2>TFDV anomalies</h2>', display_util.get_anomalies_dataframe(anomalies).to_html(),
      '<h2>Distributions</h2><img src="distributions.png" alt="baseline vs new data">',
      # Facets Overview: loads its scripts from the web when the page is opened.
      '<h2>Facets Overview (needs a network: loads its scripts from the web)</h2>',
      display_util.get_statistics_html(new_statistics, baseline_statistics,
                                       lhs_name='new data', rhs_name='baseline'),
      '</body></html>']
  with open(os.path.join(output_dir, 'report.html'), 'w') as f:
    f.write('\n'.join(page))


def validate(args: argparse.Namespace) -> Tuple[int, str]:
  """Runs the check; returns (exit status, report)."""
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  from components import drift  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import DataLayoutError  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import detect_layout  # pylint: disable=g-import-not-at-top

  data_root = os.path.abspath(args.data_root)
  try:  # names only: a broken tree fails before anything is computed
    detect_layout(data_root)
  except DataLayoutError as e:
    raise UsageError(str(e)) from e
  baseline_statistics, schema, source = load_baseline(args)
  os.makedirs(args.output_dir, exist_ok=True)
  new_statistics, seen, skipped = generate_statistics(
      data_root, os.path.join(args.output_dir, 'statistics.pb'), args.beam_arg)
  if seen == skipped:  # no images is no evidence of drift
    raise UsageError(f'data root {data_root!r} yields no images: {seen} file(s) found, none a '
                     'decodable image')
  thresholds = drift_settings.thresholds_from_args(args)
  anomalies = tfdv.validate_statistics(
      new_statistics, drift.with_drift_comparators(schema, thresholds),
      previous_statistics=baseline_statistics)
  rows = drift.findings(anomalies, drift.COMPARED_FEATURES)
  flagged = [row for row in rows if row.flagged]
  report = '\n'.join([
      f'new data: {args.data_root} ({seen} files, {skipped} skipped as not decodable images)',
      f'baseline: {source}', '', drift.format_report(rows), '',
      f'{len(flagged)} finding(s): the new data differs from the baseline' if flagged else
      'no drift and no anomalies: the new data looks like the baseline'])
  write_outputs(args.output_dir, new_statistics, baseline_statistics, anomalies, report)
  return (EXIT_DRIFT if flagged else EXIT_CLEAN), report


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  try:
    status, report = validate(args)
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return EXIT_USAGE
  print(report)
  print(f'report, anomalies and statistics: {os.path.abspath(args.output_dir)}')
  return status


if __name__ == '__main__':
  sys.exit(main())
