"""The Transform module: decode, resize, scale exactly like mobilenet_v2.preprocess_input."""
from PIL import Image
import numpy as np
import tensorflow as tf

from components.modules import features, preprocessing
from tests.conftest import TEST_IMAGE_SIZE
from tests.trees import encode


def _reference(encoded: bytes, size: int) -> np.ndarray:
  """The tutorial's path: decode (a JPEG with the accurate integer DCT, as the Transform graph
  and Pillow decode it), resize, then Keras' own preprocess_input."""
  image = tf.image.resize(tf.io.decode_jpeg(encoded, channels=3, dct_method='INTEGER_ACCURATE'),
                          [size, size])
  return tf.keras.applications.mobilenet_v2.preprocess_input(image).numpy()


def test_jpeg_and_png_decode_to_the_unit_range():
  image = Image.effect_noise((50, 30), 80).convert('RGB')
  batch = tf.constant([encode(image, 'JPEG'), encode(image, 'PNG')])
  images = preprocessing.preprocess_images(batch, 24).numpy()
  assert images.shape == (2, 24, 24, 3) and images.dtype == np.float32
  assert images.min() >= -1.0 and images.max() <= 1.0


def test_equal_to_keras_preprocess_input(real_images):
  encoded = [open(path, 'rb').read() for path in real_images['cats'][:2] + real_images['dogs'][:2]]
  images = preprocessing.preprocess_images(tf.constant(encoded), 160).numpy()
  for image, data in zip(images, encoded):
    np.testing.assert_array_equal(image, _reference(data, 160))
  assert images.min() < -0.9 and images.max() > 0.9  # real photos span the range


def test_grayscale_png_becomes_three_channels():
  gray = Image.linear_gradient('L').resize((40, 40))
  image = preprocessing.preprocess_images(tf.constant([encode(gray, 'PNG')]), 16).numpy()[0]
  assert image.shape == (16, 16, 3)
  np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_transform_graph_applies_the_same_function(transform_output):
  raw = tf.constant([encode(Image.effect_noise((40, 60), 50).convert('RGB'))])
  transformed = transform_output.transform_features_layer()({
      features.IMAGE_KEY: tf.reshape(raw, [-1, 1]),
      features.LABEL_KEY: tf.constant([[1]], tf.int64),
      features.LABEL_NAME_KEY: tf.constant([[b'dogs']]),
  })
  np.testing.assert_allclose(transformed[features.TRANSFORMED_IMAGE_KEY].numpy(),
                             preprocessing.preprocess_images(raw, TEST_IMAGE_SIZE).numpy(),
                             atol=1e-6)
  assert transformed[features.TRANSFORMED_LABEL_KEY].numpy().tolist() == [1]
