"""The run report's part on data quality: DataQuality's counts, the leak, and thumbnails of the
duplicate pairs, the likely label errors and the outliers, side by side."""
import html
import os
from typing import Dict, Iterable, List

from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf

from components.modules import features
from run_results import run_summary
from run_results.report import charts
from run_results.report import inference
from run_results.report.page import Page

PAIRS_SHOWN, ISSUES_SHOWN = 6, 12


def images_by_path(examples: metadata_store_pb2.Artifact, paths: Iterable[str]) -> Dict[str, bytes]:
  """The encoded images of ``paths`` (relative paths, the ExampleGen's ``filename``), read from
  the run's examples of every split."""
  wanted, found = set(paths), {}
  files = tf.io.gfile.glob(os.path.join(examples.uri, 'Split-*', '*'))
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    example = tf.train.Example.FromString(record.numpy())
    path = inference.feature_value(example, features.FILENAME_KEY).decode('utf-8')
    if path in wanted:
      found[path] = inference.feature_value(example, features.IMAGE_KEY)
      if len(found) == len(wanted):
        break
  return found


def _grid(rows: List[List[tuple]], images: Dict[str, bytes]) -> bytes:
  return charts.image_grid([('', [(inference.thumbnail(images[path]), caption)
                                  for path, caption in row if path in images]) for row in rows])


def data_quality(page: Page, run, examples: metadata_store_pb2.Artifact) -> str:
  """The section's HTML: DataQuality's line, then pictures of what it found (empty without it)."""
  report = run_summary.data_quality(run)
  if not report:
    return ''
  pairs = report['near_duplicates'][:PAIRS_SHOWN]
  issues = report['label_issues'][:ISSUES_SHOWN]
  outliers = report['outliers'][:ISSUES_SHOWN // 2]
  wanted = ({path for pair in pairs for path in pair['paths']} | {i['path'] for i in issues}
            | {o['path'] for o in outliers})
  images = images_by_path(examples, wanted) if wanted else {}
  parts = [f'<h3>Data quality</h3><p>{html.escape(run_summary.data_quality_line(report))}.</p>']
  if pairs:
    rows = [[(path, f"{split} {label}\n{'exact' if pair['exact'] else pair['similarity']}")
             for path, split, label in zip(pair['paths'], pair['splits'], pair['labels'])]
            for pair in pairs]
    parts.append('<p>Duplicate pairs, most alike first (a pair across train and eval/test is a '
                 'leak):</p>' + page.picture('duplicates.png', _grid(rows, images),
                                             'duplicate pairs side by side'))
  if issues:
    rows = [[(i['path'], f"{i['split']}: {i['given_label']}\n-> {i['suggested_label']} "
                         f"({i['score']:.2f})") for i in issues[k:k + 6]]
            for k in range(0, len(issues), 6)]
    parts.append('<p>Likely label errors, most suspicious first (the label given, the one a '
                 "probe on the base's features suggests, and the given label's probability):</p>"
                 + page.picture('label_issues.png', _grid(rows, images), 'likely label errors'))
  if outliers:
    parts.append('<p>Outliers, farthest from the other images first:</p>' + page.picture(
        'outliers.png', _grid([[(o['path'], f"{o['split']} {o['score']:.2f}")
                                for o in outliers]], images), 'outliers'))
  return ''.join(parts)
