"""Both serving signatures of a saved model, on encoded JPEG and PNG bytes whose classes are known
(tests/serving_checks.py): the answers are checked against the labels, not only their shapes."""
import numpy as np
import pytest
import tensorflow as tf

from components.modules import features
from components.modules import model_variants
from tests import serving_checks
from tests.conftest import TEST_IMAGE_SIZE


@pytest.fixture(scope='module')
def saved_model(transform_output, tmp_path_factory):
  model = serving_checks.brightness_classifier(model_variants.SMALL_CNN, TEST_IMAGE_SIZE)
  return tf.saved_model.load(serving_checks.save_with_signatures(
      model, transform_output, str(tmp_path_factory.mktemp('model'))))


def test_image_bytes_signature(saved_model):
  serve = saved_model.signatures[features.IMAGE_BYTES_SIGNATURE]
  assert list(serve.structured_input_signature[1]) == [features.IMAGE_BYTES_INPUT]
  images, labels = serving_checks.dark_and_bright_images()
  serving_checks.assert_outputs_match_labels(serve(image_bytes=tf.constant(images)), labels)


def test_tf_example_signature(saved_model):
  serve = saved_model.signatures['serving_default']
  assert list(serve.structured_input_signature[1]) == ['examples']
  images, labels = serving_checks.dark_and_bright_images()
  from_examples = serve(examples=tf.constant(serving_checks.tf_examples(images)))
  serving_checks.assert_outputs_match_labels(from_examples, labels)
  from_bytes = saved_model.signatures[features.IMAGE_BYTES_SIGNATURE](
      image_bytes=tf.constant(images))
  np.testing.assert_allclose(from_examples[features.PROBABILITIES_OUTPUT].numpy(),
                             from_bytes[features.PROBABILITIES_OUTPUT].numpy(), rtol=1e-6)
