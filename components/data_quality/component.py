"""DataQuality: duplicates, train/test leaks, likely label errors and outliers, found in the
pipeline from the base's features that BulkInferrer computed once (no second pass of the network),
written to ``data_quality.json``, and a gate on leaks.

The gate: an eval or test image that duplicates a training image (exactly or nearly) is a leak,
the model is evaluated on what it trained on, and the test accuracy the Evaluator gates on is
inflated by up to the leaked share. Above ``max_leak_fraction`` of the eval and test images the
run stops before training, naming the pairs; at or below it the run warns and goes on. Stopping,
not silently dropping the copies from the test split: which copy is the one to keep is the
user's call (the same photo under two classes also means a wrong label), and a dropped image
would vanish from the test split without anyone looking at it. Label errors and outliers are
reported, never gated: the checks rank them for a person to look at.
"""
import json
import os
from typing import List

from absl import logging
import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact

from components.data_quality import checks
from components.modules import features
from components.modules import frozen_features

REPORT_FILE = 'data_quality.json'
TRAIN = features.SPLIT_NAMES[0]
# How many leaked pairs the error names, and how many the log lists (all are in the report).
NAMED_PAIRS, LISTED_PAIRS = 3, 50


class DataQualityReport(Artifact):
  """``data_quality.json``: near duplicates, label issues, outliers, counts and the leak."""
  # Kubeflow V2 imports the class by '<module>.<Class>'; the ``components`` package re-exports it.
  TYPE_NAME = 'components.DataQualityReport'


class DataLeakError(ValueError):
  """Too many eval or test images duplicate training images; the message names them."""


def read_image_set(examples_uri: str, splits: List[str], class_names: List[str],
                   num_views: int) -> checks.ImageSet:
  """Every example of ``splits`` of BulkInferrer's output at ``examples_uri``: its path, split,
  label, the hash of its encoded bytes and its base features [views, D]."""
  spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
          features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
          features.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string),
          frozen_features.FEATURES_KEY: tf.io.VarLenFeature(tf.float32)}
  paths, split_of, labels, hashes, embeddings = [], [], [], [], []
  for split in splits:
    files = tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}', '*'))
    records = tf.data.TFRecordDataset(files, compression_type='GZIP').batch(256)
    for batch in records.map(lambda serialized: tf.io.parse_example(serialized, spec)):
      values = tf.sparse.to_dense(batch[frozen_features.FEATURES_KEY]).numpy()
      embeddings.append(values.reshape(len(values), num_views, -1))
      labels.append(batch[features.LABEL_KEY].numpy())
      paths += [path.decode('utf-8') for path in batch[features.FILENAME_KEY].numpy()]
      hashes += [checks.content_hash(data) for data in batch[features.IMAGE_KEY].numpy()]
      split_of += [split] * len(values)
  return checks.ImageSet(paths=paths, splits=split_of, labels=np.concatenate(labels),
                         class_names=class_names, hashes=hashes,
                         embeddings=np.concatenate(embeddings))


def leak(report: dict) -> dict:
  """The eval and test images that duplicate a training image: their number, their share of the
  eval and test images, and the pairs."""
  pairs = [pair for pair in report['near_duplicates'] if (TRAIN in pair['splits'])
           and any(split != TRAIN for split in pair['splits'])]
  leaked = {path for pair in pairs for path, split in zip(pair['paths'], pair['splits'])
            if split != TRAIN}
  held_out = report['counts']['held_out_images']
  return {'images': len(leaked), 'held_out_images': held_out,
          'share': len(leaked) / held_out if held_out else 0.0, 'pairs': pairs}


@component
def DataQuality(  # pylint: disable=invalid-name
    examples: InputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[DataQualityReport],
    class_names: Parameter[str],
    rotation_factor: Parameter[float],
    max_leak_fraction: Parameter[float],
) -> None:
  """Checks every split of ``examples`` (BulkInferrer's, with the base's features); fails when
  more than ``max_leak_fraction`` of the eval and test images duplicate training images."""
  num_views = len(frozen_features.augmented_views(rotation_factor))
  images = read_image_set(examples.uri, artifact_utils.decode_split_names(examples.split_names),
                          json.loads(class_names), num_views)
  result = checks.analyse(images)
  result['views'] = num_views
  result['class_names'] = list(images.class_names)
  result['counts']['held_out_images'] = sum(split != TRAIN for split in images.splits)
  found = leak(result)
  result['leak'] = {**{k: v for k, v in found.items() if k != 'pairs'},
                    'max_leak_fraction': max_leak_fraction}
  path = os.path.join(report.uri, REPORT_FILE)
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(result, f, indent=1)
  for key, value in result['counts'].items():
    report.set_int_custom_property(key, int(value))
  report.set_float_custom_property('leak_share', found['share'])
  counts = result['counts']
  logging.info('DataQuality: %d images; %d exact and %d near-duplicate pairs (%d across train and '
               'eval/test, %d under two classes); %d likely label errors; %d outliers (%s)',
               counts['images'], counts['exact_duplicate_pairs'],
               counts['near_duplicate_pairs'] - counts['exact_duplicate_pairs'],
               counts['cross_split_pairs'], counts['conflicting_label_pairs'],
               counts['label_issues'], counts['outliers'], path)
  if not found['images']:
    return
  named = '; '.join(f"{pair['paths'][0]} ~ {pair['paths'][1]} ({pair['similarity']:.2f})"
                    for pair in found['pairs'][:NAMED_PAIRS])
  summary = (f"{found['images']} of {found['held_out_images']} eval/test images "
             f"({found['share']:.1%}) duplicate training images, e.g. {named}")
  for pair in found['pairs'][:LISTED_PAIRS]:
    logging.warning('DataQuality: %s (%s) ~ %s (%s): similarity %.3f%s', pair['paths'][0],
                    pair['splits'][0], pair['paths'][1], pair['splits'][1], pair['similarity'],
                    ', identical files' if pair['exact'] else '')
  if found['share'] <= max_leak_fraction:
    logging.warning('DataQuality: %s; at most %s allowed (--max-leak-fraction): the test metrics '
                    'may be inflated by up to that share. The pairs are in %s.', summary,
                    f'{max_leak_fraction:.1%}', path)
    return
  raise DataLeakError(
      f'{summary}; above --max-leak-fraction {max_leak_fraction:g}: the model would be tested on '
      f'what it trained on. Remove the copies from validation/ or test/ (the pairs are listed above, '
      f'{LISTED_PAIRS} at most; a failed step keeps no output), or raise --max-leak-fraction.')
