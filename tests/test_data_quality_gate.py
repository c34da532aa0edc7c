"""DataQuality on a real Examples artifact as BulkInferrer writes it (the images' bytes and their
base features): the report it writes, and its gate on eval and test images that duplicate
training images. The checks themselves: tests/test_data_quality_checks.py."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components.data_quality import component
from components.modules import features
from components.modules import frozen_features

VIEWS, DIMS = 4, 96  # rotation_factor > 0: four views
CLASS_NAMES = ['cats', 'dogs']


def _examples(root, rows):
  """An Examples artifact of (split, path, label, image bytes, features [VIEWS, DIMS]) rows."""
  examples = standard_artifacts.Examples()
  examples.uri = str(root)
  splits = sorted({row[0] for row in rows})
  examples.split_names = json.dumps(splits)
  for split in splits:
    os.makedirs(root / f'Split-{split}')
    with tf.io.TFRecordWriter(str(root / f'Split-{split}' / 'examples-00000-of-00001.gz'),
                              options='GZIP') as writer:
      for _, path, label, data, values in (row for row in rows if row[0] == split):
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            features.FILENAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[path.encode()])),
            frozen_features.FEATURES_KEY: tf.train.Feature(float_list=tf.train.FloatList(
                value=values.reshape(-1))),
        })).SerializeToString())
  return examples


def _data(leaked: int):
  """60 training and 40 held-out 'photos' of two well-separated classes; the first ``leaked``
  test images are byte-for-byte copies of training images (same bytes, same features)."""
  rng = np.random.default_rng(0)
  centres = 4.0 * rng.normal(size=(2, DIMS))
  rows = []
  for i in range(100):
    split = 'train' if i < 60 else ('eval' if i < 80 else 'test')
    label = i % 2
    view0 = centres[label] + rng.normal(size=DIMS)
    values = np.stack([view0 + 0.05 * rng.normal(size=DIMS) for _ in range(VIEWS)])
    rows.append([split, f'{split}/{CLASS_NAMES[label]}/{i}.jpg', label, f'photo {i}'.encode(),
                 values.astype(np.float32)])
  for k in range(leaked):
    copy = rows[80 + k]
    copy[2:] = rows[k][2:]
  return rows


def _run(tmp_path, leaked, max_leak_fraction):
  examples = _examples(tmp_path / 'examples', _data(leaked))
  report = component.DataQualityReport()
  report.uri = str(tmp_path / 'report')
  os.makedirs(report.uri)
  component.DataQuality.test_call(
      examples=examples, report=report, class_names=json.dumps(CLASS_NAMES), rotation_factor=0.1,
      max_leak_fraction=max_leak_fraction)
  with open(os.path.join(report.uri, component.REPORT_FILE)) as f:
    return report, json.load(f)


def test_a_leak_above_the_allowed_share_stops_the_run_naming_the_pairs(tmp_path):
  with pytest.raises(component.DataLeakError) as raised:
    _run(tmp_path, leaked=3, max_leak_fraction=0.05)
  message = str(raised.value)
  assert message.startswith('3 of 40 eval/test images (7.5%) duplicate training images, e.g. ')
  named = re.findall(r'(test/\w+/\d+\.jpg) ~ (train/\w+/\d+\.jpg) \(1\.00\)', message)
  assert sorted(named) == sorted((f'test/{CLASS_NAMES[k % 2]}/{80 + k}.jpg',
                                  f'train/{CLASS_NAMES[k % 2]}/{k}.jpg') for k in range(3))
  assert 'above --max-leak-fraction 0.05' in message and '\n' not in message
  with open(tmp_path / 'report' / component.REPORT_FILE) as f:  # written before the gate
    leak = json.load(f)['leak']
  assert (leak['images'], leak['held_out_images'], leak['share']) == (3, 40, 0.075)


def test_a_leak_within_the_allowed_share_is_reported_and_the_run_goes_on(tmp_path):
  report, content = _run(tmp_path, leaked=3, max_leak_fraction=0.1)
  assert content['counts']['exact_duplicate_pairs'] == 3
  assert content['counts']['cross_split_pairs'] == 3
  assert report.get_float_custom_property('leak_share') == 0.075
  assert report.get_int_custom_property('images') == 100
  assert content['views'] == VIEWS and content['class_names'] == CLASS_NAMES
  leaked_pairs = [p for p in content['near_duplicates'] if p['exact']]
  assert sorted(sorted(p['splits']) for p in leaked_pairs) == [['test', 'train']] * 3


def test_clean_data_passes_with_every_check_written(tmp_path):
  report, content = _run(tmp_path, leaked=0, max_leak_fraction=0.0)
  assert content['leak']['images'] == 0
  assert set(content) >= {'near_duplicates', 'label_issues', 'outliers', 'counts', 'thresholds'}
  assert report.get_int_custom_property('cross_split_pairs') == 0
