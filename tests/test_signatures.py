"""Both serving signatures of a saved model, on encoded JPEG and PNG bytes whose classes are known
(tests/serving_checks.py): the answers are checked against the labels, not only their shapes."""
import numpy as np
import pytest
import tensorflow as tf

from components.modules import embedding
from components.modules import features
from components.modules import model_variants
from components.modules import signatures
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


def test_a_large_request_is_served_a_chunk_at_a_time(transform_output, monkeypatch):
  """Six images with chunks of 4: the model never sees more than 4 images in one pass (what the
  served model holds at once does not grow with the request), and the rows of both chunks, the
  remainder included, come back in order for every signature."""
  monkeypatch.setattr(embedding, 'SERVING_CHUNK', 4)
  model = serving_checks.brightness_classifier(model_variants.SMALL_CNN, TEST_IMAGE_SIZE)
  whole_batch = embedding.embedding_and_logits_function(model)

  @tf.function
  def at_most_a_chunk(images):
    tf.debugging.assert_less_equal(tf.shape(images)[0], 4, message='more than a chunk at once')
    return whole_batch(images)

  model.embedding_and_logits = at_most_a_chunk
  served = signatures.make_serving_signatures(model, transform_output, serving_checks.CLASS_NAMES)
  width = model.get_layer(embedding.LOGITS_LAYER).input.shape[-1]
  served.update(embedding.make_embedding_signature(model, embedding.EmbeddingBaseline(
      np.ones([20, width], np.float32), np.full([8, 2], 0.5, np.float32), ood_threshold=0.5)))
  images, labels = serving_checks.dark_and_bright_images()
  serving_checks.assert_outputs_match_labels(
      served[features.IMAGE_BYTES_SIGNATURE](image_bytes=tf.constant(images)), labels)
  serving_checks.assert_outputs_match_labels(
      served['serving_default'](examples=tf.constant(serving_checks.tf_examples(images))), labels)
  embedded = served[embedding.EMBEDDING_SIGNATURE](image_bytes=tf.constant(images))
  serving_checks.assert_outputs_match_labels(embedded, labels)
  assert embedded[embedding.EMBEDDING_OUTPUT].shape == (len(images), width)
