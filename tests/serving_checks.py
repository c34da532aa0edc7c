"""A served model whose right answers are known, to test the serving signatures against labels.

The tutorial's small CNN gets weights that make it measure brightness: every convolution and the
dense layer average their inputs, and the logits compare the mean with one half. Dark images are
then class 0 ('cats'), bright ones class 1 ('dogs'), through the real Transform graph and the
real signatures. A signature that ignores its input, or mixes up rows or classes, fails.
"""
from typing import List, Tuple

from PIL import Image
import numpy as np
import tensorflow as tf

from components.modules import features
from components.modules import model as model_lib
from components.modules import signatures
from tests.trees import encode

CLASS_NAMES = ['cats', 'dogs']
_LOGIT_SCALE = 20.0


def brightness_classifier(model_name: str, image_size: int) -> tf.keras.Model:
  """One of the tutorial's CNNs on [0, 1] inputs, weighted to say 'dogs' for bright images."""
  model = model_lib.build_model(num_classes=2, image_size=image_size, alpha=1.0, weights='none',
                                dropout=0.2, learning_rate=1e-3, model=model_name)
  for layer in model.layers:
    if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Dense)):
      kernel, bias = layer.get_weights()
      fan_in = int(np.prod(kernel.shape[:-1]))
      kernel = np.full(kernel.shape, 1.0 / fan_in, np.float32)  # the mean of the inputs
      if layer.name == 'logits':
        kernel[..., 0] *= -_LOGIT_SCALE
        kernel[..., 1] *= _LOGIT_SCALE
        bias = np.array([0.5, -0.5], np.float32) * _LOGIT_SCALE
      else:
        bias = np.zeros_like(bias)
      layer.set_weights([kernel, bias])
  return model


def save_with_signatures(model: tf.keras.Model, transform_output, export_dir: str) -> str:
  signatures.save_served(model, export_dir, signatures.make_serving_signatures(
      model, transform_output, CLASS_NAMES))
  return export_dir


def dark_and_bright_images() -> Tuple[List[bytes], List[int]]:
  """Noisy dark (label 0) and bright (label 1) pictures, JPEG and PNG, not square, interleaved."""
  rng = np.random.RandomState(0)
  images, labels = [], []
  for i, (label, image_format) in enumerate([(0, 'JPEG'), (1, 'JPEG'), (1, 'PNG'), (0, 'PNG'),
                                             (1, 'JPEG'), (0, 'JPEG')]):
    low = 190 if label else 5
    pixels = rng.randint(low, low + 60, (40 + 4 * i, 56, 3)).astype(np.uint8)
    images.append(encode(Image.fromarray(pixels), image_format))
    labels.append(label)
  return images, labels


def tf_examples(images: List[bytes]) -> List[bytes]:
  """Serialized tf.Examples as TFMA and TF Serving send them: the image bytes, no label."""
  return [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
  })).SerializeToString() for data in images]


def assert_outputs_match_labels(outputs, labels: List[int]) -> None:
  """Each row names its label's class, with a confident probability that sums to one."""
  probabilities = outputs[features.PROBABILITIES_OUTPUT].numpy()
  assert probabilities.shape == (len(labels), 2), probabilities.shape
  assert probabilities.dtype == np.float32, probabilities.dtype
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  class_ids = outputs[features.CLASS_IDS_OUTPUT].numpy().tolist()
  assert class_ids == labels, f'class ids {class_ids}, labels {labels}'
  names = [name.decode() for name in outputs[features.CLASS_NAMES_OUTPUT].numpy()]
  assert names == [CLASS_NAMES[label] for label in labels], names
  confidence = probabilities[np.arange(len(labels)), labels]
  assert (confidence > 0.9).all(), f'probabilities of the right classes {confidence}'


def assert_both_signatures_classify(loaded) -> None:
  """serving_image_bytes on encoded files and serving_default on tf.Examples, against labels."""
  images, labels = dark_and_bright_images()
  assert_outputs_match_labels(
      loaded.signatures[features.IMAGE_BYTES_SIGNATURE](image_bytes=tf.constant(images)), labels)
  assert_outputs_match_labels(
      loaded.signatures['serving_default'](examples=tf.constant(tf_examples(images))), labels)
