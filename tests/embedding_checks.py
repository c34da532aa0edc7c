"""A served model whose embedding and out-of-distribution answers are known.

Its embedding is an image's mean colour (the Transform graph's [-1, 1] pixels, global average
pooling) and its logits say 'cats' for red, 'dogs' for green pictures. Its baseline is made, by the
Trainer's own ``embedding.fit_baseline``, of noisy red and green pictures, so a blue picture is out
of distribution and a batch of blue pictures is embedding drift.
"""
from typing import List

from PIL import Image
import numpy as np
import tensorflow as tf

from components.modules import embedding
from components.modules import features
from components.modules import signatures
from tests.trees import encode

CLASS_NAMES = ['cats', 'dogs']
RED, GREEN, BLUE = (0, 1, 2)


def pictures(colour: int, count: int, seed: int, image_format: str = 'JPEG') -> List[bytes]:
  """Noisy pictures dominated by one colour channel (sizes vary)."""
  rng = np.random.RandomState(seed)
  result = []
  for i in range(count):
    pixels = rng.randint(0, 90, (36 + i % 5, 44, 3)).astype(np.uint8)
    pixels[..., colour] = rng.randint(150, 255, pixels.shape[:2])
    result.append(encode(Image.fromarray(pixels), image_format))
  return result


def held_out_pictures() -> List[bytes]:
  return pictures(RED, 50, 3) + pictures(GREEN, 50, 4)


def colour_model(image_size: int) -> tf.keras.Model:
  images = tf.keras.Input((image_size, image_size, 3), name=features.TRANSFORMED_IMAGE_KEY)
  pooled = tf.keras.layers.GlobalAveragePooling2D()(images)
  logits = tf.keras.layers.Dense(2, name=embedding.LOGITS_LAYER)(pooled)
  model = tf.keras.Model(images, logits)
  kernel = np.zeros((3, 2), np.float32)
  kernel[RED] = [10, -10]
  kernel[GREEN] = [-10, 10]
  model.get_layer(embedding.LOGITS_LAYER).set_weights([kernel, np.zeros(2, np.float32)])
  return model


def dataset(transform_output, images: List[bytes]) -> tf.data.Dataset:
  layer = transform_output.transform_features_layer()
  raw = {features.IMAGE_KEY: tf.constant(images)[:, tf.newaxis]}
  transformed = layer(raw)[features.TRANSFORMED_IMAGE_KEY]
  return tf.data.Dataset.from_tensor_slices((transformed, tf.zeros(len(images)))).batch(8)


def save_colour_model(transform_output, image_size: int, export_dir: str,
                      train_count: int = 40) -> str:
  """The colour model, saved with every signature and a baseline of red and green pictures."""
  model = colour_model(image_size)
  train = pictures(RED, train_count // 2, 1) + pictures(GREEN, train_count // 2, 2)
  held_out = held_out_pictures()
  baseline = embedding.fit_baseline(model, dataset(transform_output, train),
                                    dataset(transform_output, held_out))
  signatures.save_served(model, export_dir, {
      **signatures.make_serving_signatures(model, transform_output, CLASS_NAMES),
      **embedding.make_embedding_signature(model, baseline)})
  return export_dir
