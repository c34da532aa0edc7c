"""The TFLite model beside the SavedModel: its input contract, its quantisation, and the check that
compares it with the SavedModel on labelled images and refuses a damaged conversion."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components import tflite_check
from components.modules import exif_orientation
from components.modules import features
from components.modules import model_variants
from components.modules import tflite_export
from components.modules import model as model_lib
from tests.conftest import TEST_IMAGE_SIZE, WEIGHTS_035, require_shared
from tests.serving_checks import CLASS_NAMES, dark_and_bright_images, save_with_signatures


def _mobilenet(weights: str, swap_classes: bool = False) -> tf.keras.Model:
  """MobileNetV2 0.35 at the test size with a fixed random head (an untrained head scores every
  image 50/50); ``swap_classes`` exchanges its two logits, as a conversion gone wrong would."""
  model = model_lib.build_model(num_classes=2, image_size=TEST_IMAGE_SIZE, alpha=0.35,
                                weights=weights, dropout=0.0, learning_rate=1e-3,
                                model=model_variants.MOBILENET_V2)
  kernel = np.random.RandomState(0).normal(0, 1, model.get_layer('logits').kernel.shape)
  model.get_layer('logits').set_weights([kernel[:, ::-1] if swap_classes else kernel,
                                         np.zeros(2)])
  return model


def _labelled_examples(path: str, labels) -> str:
  """The dark and bright test images as gzipped tf.Examples with ``labels``, as the ExampleGen
  writes a split."""
  images, _ = dark_and_bright_images()
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for image, label in zip(images, labels):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
          features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      })).SerializeToString())
  return path


@pytest.fixture(scope='module')
def model_with_tflite(transform_output, tmp_path_factory):
  """(Keras model, SavedModel folder with its TFLite copy, the SavedModel's class per test image)."""
  model = _mobilenet(require_shared(WEIGHTS_035))
  model_dir = save_with_signatures(model, transform_output, str(tmp_path_factory.mktemp('model')))
  tflite_export.export(model, model_dir, TEST_IMAGE_SIZE, CLASS_NAMES)
  images, _ = dark_and_bright_images()
  classes = tf.saved_model.load(model_dir).signatures[features.IMAGE_BYTES_SIGNATURE](
      image_bytes=tf.constant(images))[features.CLASS_IDS_OUTPUT].numpy().tolist()
  assert 0 < sum(classes) < len(classes), 'the test needs both classes answered'
  return model, model_dir, classes


def test_input_contract_is_the_interpreters(model_with_tflite):
  _, model_dir, _ = model_with_tflite
  with open(tflite_export.tflite_path(model_dir), 'rb') as f:
    interpreter = tf.lite.Interpreter(model_content=f.read())
  [model_input], [output] = interpreter.get_input_details(), interpreter.get_output_details()
  with open(os.path.join(model_dir, tflite_export.TFLITE_DIR, tflite_export.CONTRACT_FILE)) as f:
    contract = json.load(f)
  assert tflite_export.INPUT_NAME in model_input['name']
  assert model_input['dtype'] == np.float32 and output['dtype'] == np.float32
  assert list(model_input['shape_signature']) == [-1, TEST_IMAGE_SIZE, TEST_IMAGE_SIZE, 3]
  assert contract['input']['shape'] == [None, TEST_IMAGE_SIZE, TEST_IMAGE_SIZE, 3]
  assert contract['input']['value_range'] == [-1.0, 1.0]
  assert list(output['shape_signature']) == [-1, 2]
  assert contract['class_names'] == CLASS_NAMES
  assert contract['quantization'] == 'float16'


def test_weights_are_stored_as_float16(model_with_tflite):
  """float16 quantisation halves the weights: the file is about half of the float32 weights
  (dynamic range would be about a quarter, no quantisation all of them)."""
  model, model_dir, _ = model_with_tflite
  float32_bytes = 4 * model.count_params()
  assert 0.4 * float32_bytes < os.path.getsize(tflite_export.tflite_path(model_dir)) < (
      0.6 * float32_bytes)


def test_tflite_matches_the_keras_model_on_transformed_images(model_with_tflite, transform_output):
  model, model_dir, _ = model_with_tflite
  images, _ = dark_and_bright_images()
  transformed = transform_output.transform_features_layer()(
      {features.IMAGE_KEY: tf.reshape(tf.constant(images), [-1, 1])})[
          features.TRANSFORMED_IMAGE_KEY].numpy()
  with open(tflite_export.tflite_path(model_dir), 'rb') as f:
    tflite = tflite_export.TFLiteClassifier(f.read())
  expected = tf.nn.softmax(model(transformed)).numpy()
  got = tflite.probabilities(transformed)
  np.testing.assert_allclose(got, expected, atol=0.01)  # float16 weights: a rounding error


def test_pixels_signature_resizes_and_scales_as_the_transform_graph(model_with_tflite,
                                                                   transform_output):
  """The second signature takes decoded upright pixels of any size and does the Transform graph's
  resize and scaling itself: the same probabilities as the first on the Transform's output, and
  the embedding the contract describes."""
  _, model_dir, _ = model_with_tflite
  with open(tflite_export.tflite_path(model_dir), 'rb') as f:
    content = f.read()
  signatures = tf.lite.Interpreter(model_content=content).get_signature_list()
  assert signatures == {'images': {'inputs': ['images'], 'outputs': ['probabilities']},
                        'pixels': {'inputs': ['pixels'], 'outputs': ['embedding', 'probabilities']}}
  with open(os.path.join(model_dir, tflite_export.TFLITE_DIR, tflite_export.CONTRACT_FILE)) as f:
    contract = json.load(f)['pixels_signature']
  assert contract['input']['dtype'] == 'uint8' and contract['input']['shape'] == [1, None, None, 3]
  tflite = tflite_export.TFLiteClassifier(content)
  images, _ = dark_and_bright_images()
  transformed = transform_output.transform_features_layer()(
      {features.IMAGE_KEY: tf.reshape(tf.constant(images), [-1, 1])})[
          features.TRANSFORMED_IMAGE_KEY].numpy()
  for data, expected in zip(images, tflite.probabilities(transformed)):
    probabilities, embedding = tflite.of_pixels(
        exif_orientation.decode_upright(tf.constant(data)).numpy())
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert list(embedding.shape) == contract['outputs']['embedding']['shape'][1:]


def test_check_measures_both_models_on_the_labelled_split(model_with_tflite, transform_output,
                                                          tmp_path):
  _, model_dir, classes = model_with_tflite
  result = tflite_check.measure(model_dir, os.path.dirname(transform_output.transform_savedmodel_dir),
                                [_labelled_examples(str(tmp_path / 'test.gz'), classes)])
  assert result['example_count'] == 6
  assert result['saved_model']['accuracy'] == result['tflite']['accuracy'] == 1.0
  assert result['tflite']['per_class'] == {'0': 1.0, '1': 1.0}
  assert result['agreement'] == 1.0 and result['accuracy_drop'] == 0.0
  assert result['tflite_pixels']['accuracy'] == result['tflite_pixels']['agreement'] == 1.0
  assert 0 < result['tflite_bytes'] < result['saved_model_bytes']
  tflite_check.check(result, max_accuracy_drop=0.01, blessed=True)  # passes


def test_a_damaged_conversion_fails_the_run(model_with_tflite, transform_output, tmp_path):
  """The TFLiteCheck component, run by its executor on a SavedModel whose TFLite copy answers the
  opposite class: it records both accuracies, then refuses, since the model was blessed."""
  _, good_dir, classes = model_with_tflite
  model_dir = str(tmp_path / 'model' / 'Format-Serving')
  tf.io.gfile.makedirs(model_dir)
  for root, _, names in tf.io.gfile.walk(good_dir):
    for name in names:
      target = os.path.join(model_dir, os.path.relpath(os.path.join(root, name), good_dir))
      tf.io.gfile.makedirs(os.path.dirname(target))
      tf.io.gfile.copy(os.path.join(root, name), target)
  tflite_export.export(_mobilenet(WEIGHTS_035, swap_classes=True), model_dir, TEST_IMAGE_SIZE, CLASS_NAMES)
  examples_dir = tmp_path / 'examples' / 'Split-test'
  examples_dir.mkdir(parents=True)
  _labelled_examples(str(examples_dir / 'data.gz'), classes)

  def artifact(artifact_type, uri, **properties):
    instance = artifact_type()
    instance.uri = str(uri)
    for name, value in properties.items():
      setattr(instance, name, value)
    return instance

  blessing = artifact(standard_artifacts.ModelBlessing, tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', 1)
  evaluation = artifact(tflite_check.TFLiteEvaluation, tmp_path / 'evaluation')
  (tmp_path / 'evaluation').mkdir()
  inputs = {
      'model': [artifact(standard_artifacts.Model, tmp_path / 'model')],
      'examples': [artifact(standard_artifacts.Examples, tmp_path / 'examples',
                            split_names='["test"]')],
      'transform_graph': [artifact(standard_artifacts.TransformGraph,
                                   os.path.dirname(transform_output.transform_savedmodel_dir))],
      'blessing': [blessing]}
  executor = tflite_check.TFLiteCheck.EXECUTOR_SPEC.executor_class()
  with pytest.raises(tflite_check.TFLiteAccuracyError, match=r'accuracy 0\.0000 is 1\.0000 below'):
    executor.Do(inputs, {'evaluation': [evaluation]},
                {'max_accuracy_drop': 0.01, 'split': 'test'})
  with open(tmp_path / 'evaluation' / tflite_check.RESULT_FILE) as f:
    recorded = json.load(f)
  assert recorded['saved_model']['accuracy'] == 1.0 and recorded['tflite']['accuracy'] == 0.0
  assert evaluation.get_float_custom_property('accuracy_drop') == 1.0

  blessing.set_int_custom_property('blessed', 0)  # not blessed: nothing to push, nothing to refuse
  executor.Do(inputs, {'evaluation': [evaluation]}, {'max_accuracy_drop': 0.01, 'split': 'test'})
