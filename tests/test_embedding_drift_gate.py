"""EmbeddingDriftGate on a real Examples artifact, with a model whose answers are known
(tests/embedding_checks.py: trained on red and green pictures)."""
import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components.drift import embedding_drift_gate
from components.modules import features
from components.modules import model_variants
from tests import embedding_checks
from tests import serving_checks
from tests.conftest import TEST_IMAGE_SIZE

THRESHOLDS = dict(embedding_p_value=0.01, embedding_auc=0.6, label_linf=0.1, confidence_js=0.1)


def _examples(root, images):
  """An Examples artifact whose train split holds ``images`` as the ExampleGen writes them."""
  examples = standard_artifacts.Examples()
  examples.uri = str(root)
  examples.split_names = '["train"]'
  os.makedirs(root / 'Split-train')
  with tf.io.TFRecordWriter(str(root / 'Split-train' / 'data_tfrecord-00000-of-00001.gz'),
                            options='GZIP') as writer:
    for data in images:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
      })).SerializeToString())
  return examples


def _model(uri):
  model = standard_artifacts.Model()
  model.uri = str(uri)
  return model


@pytest.fixture(scope='module')
def colour_model(transform_output, tmp_path_factory):
  root = tmp_path_factory.mktemp('model')
  embedding_checks.save_colour_model(transform_output, TEST_IMAGE_SIZE,
                                     str(root / 'Format-Serving'))
  return _model(root)


def _gate(tmp_path, examples, model, on_drift='fail'):
  report = embedding_drift_gate.EmbeddingDriftReport()
  report.uri = str(tmp_path / 'report')
  os.makedirs(report.uri, exist_ok=True)
  embedding_drift_gate.EmbeddingDriftGate.test_call(
      examples=examples, model=model, report=report, on_drift=on_drift, **THRESHOLDS)
  with open(os.path.join(report.uri, embedding_drift_gate.REPORT_FILE)) as f:
    return report, json.load(f)


def test_training_images_like_the_models_pass(tmp_path, colour_model):
  examples = _examples(tmp_path / 'examples',
                       embedding_checks.pictures(embedding_checks.RED, 30, 40)
                       + embedding_checks.pictures(embedding_checks.GREEN, 30, 41))
  report, content = _gate(tmp_path, examples, colour_model)
  assert report.get_int_custom_property('has_baseline') == 1
  assert report.get_int_custom_property('drifted') == 0
  rows = {row['feature']: row for row in content['findings']}
  assert set(rows) == {'embedding', 'predicted class', 'confidence'}
  assert not rows['embedding']['flagged'] and rows['embedding']['score'] < 0.75
  assert '60 new images embedded' in content['summary']
  assert os.path.getsize(os.path.join(report.uri, 'embedding_drift.png')) > 1000


def test_new_content_stops_the_run_or_warns(tmp_path, colour_model):
  examples = _examples(tmp_path / 'examples',
                       embedding_checks.pictures(embedding_checks.BLUE, 30, 42)
                       + embedding_checks.pictures(embedding_checks.GREEN, 30, 43))
  with pytest.raises(embedding_drift_gate.EmbeddingDriftError,
                     match=r'domain classifier ROC AUC 0\.\d+ >= 0\.6, MMD p-value 0\.00'):
    _gate(tmp_path / 'fail', examples, colour_model)
  report, content = _gate(tmp_path / 'warn', examples, colour_model, on_drift='warn')
  assert report.get_int_custom_property('drifted') == 1 and content['drifted']


def test_cold_start_and_older_models_pass_with_a_note(tmp_path, transform_output):
  examples = _examples(tmp_path / 'examples', embedding_checks.pictures(embedding_checks.BLUE, 4, 44))
  report, content = _gate(tmp_path / 'cold', examples, None)
  assert report.get_int_custom_property('has_baseline') == 0
  assert 'no blessed model yet' in content['note'] and content['findings'] == []
  older = tmp_path / 'older'
  serving_checks.save_with_signatures(
      serving_checks.brightness_classifier(model_variants.SMALL_CNN, TEST_IMAGE_SIZE),
      transform_output, str(older / 'Format-Serving'))
  report, content = _gate(tmp_path / 'older_gate', examples, _model(older))
  assert report.get_int_custom_property('has_baseline') == 0
  assert 'carries no embedding baseline' in content['note']
