"""Both serving signatures of the saved model, on real encoded JPEG and PNG bytes."""
from PIL import Image
import numpy as np
import pytest
import tensorflow as tf

from components.modules import features
from tests.trees import encode


@pytest.fixture(scope='module')
def saved_model(saved_model_dir):
  return tf.saved_model.load(saved_model_dir)


def _images(real_images):
  jpegs = [open(path, 'rb').read() for path in (real_images['cats'][0], real_images['dogs'][0])]
  png = encode(Image.open(real_images['dogs'][1]), 'PNG')
  return jpegs + [png]


def test_image_bytes_signature(saved_model, real_images):
  serve = saved_model.signatures[features.IMAGE_BYTES_SIGNATURE]
  assert list(serve.structured_input_signature[1]) == [features.IMAGE_BYTES_INPUT]
  out = serve(image_bytes=tf.constant(_images(real_images)))
  probabilities = out[features.PROBABILITIES_OUTPUT].numpy()
  assert probabilities.shape == (3, 2) and probabilities.dtype == np.float32
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  class_ids = out[features.CLASS_IDS_OUTPUT].numpy()
  assert class_ids.tolist() == probabilities.argmax(axis=1).tolist()
  names = [n.decode() for n in out[features.CLASS_NAMES_OUTPUT].numpy()]
  assert names == [['cats', 'dogs'][i] for i in class_ids]


def test_tf_example_signature_matches_image_bytes(saved_model, real_images):
  images = _images(real_images)
  serialized = [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
      features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
  })).SerializeToString() for data in images]
  from_examples = saved_model.signatures['serving_default'](tf.constant(serialized))
  from_bytes = saved_model.signatures[features.IMAGE_BYTES_SIGNATURE](
      image_bytes=tf.constant(images))
  np.testing.assert_allclose(from_examples[features.PROBABILITIES_OUTPUT].numpy(),
                             from_bytes[features.PROBABILITIES_OUTPUT].numpy(), rtol=1e-6)
