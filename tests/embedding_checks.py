"""A served model whose embedding and out-of-distribution answers are known.

Its embedding is an image's mean colour (the Transform graph's [-1, 1] pixels, global average
pooling) and its logits say 'cats' for red, 'dogs' for green pictures. Its baseline is made, by the
Trainer's own ``embedding.fit_baseline``, of noisy red and green pictures, so a blue picture is out
of distribution and a batch of blue pictures is embedding drift. Its three-class sibling
(``THREE_CLASSES``) also knows blue pictures, as 'birds'.
"""
from typing import Dict, List, Optional, Sequence

from PIL import Image
import numpy as np
import tensorflow as tf

from components.modules import embedding
from components.modules import features
from components.modules import signatures
from components.modules import tflite_export
from tests.trees import encode

CLASS_NAMES = ['cats', 'dogs']
RED, GREEN, BLUE = (0, 1, 2)
# Class name -> its colour, for the three-class model (sorted: label id i is the i-th name).
THREE_CLASSES = {'birds': BLUE, 'cats': RED, 'dogs': GREEN}


def pictures(colour: int, count: int, seed: int, image_format: str = 'JPEG') -> List[bytes]:
  """Noisy pictures dominated by one colour channel (sizes vary)."""
  rng = np.random.RandomState(seed)
  result = []
  for i in range(count):
    pixels = rng.randint(0, 90, (36 + i % 5, 44, 3)).astype(np.uint8)
    pixels[..., colour] = rng.randint(150, 255, pixels.shape[:2])
    result.append(encode(Image.fromarray(pixels), image_format))
  return result


def tinted_pictures(colour: int, tint: int, levels: Sequence[int], seed: int) -> List[bytes]:
  """Pictures like ``pictures(colour)`` whose channel ``tint`` is around each of ``levels`` (0 to
  255) instead of 0 to 90: one per level, further from the plain ones the higher the level."""
  rng = np.random.RandomState(seed)
  result = []
  for level in levels:
    pixels = rng.randint(0, 90, (40, 44, 3)).astype(np.uint8)
    pixels[..., colour] = rng.randint(150, 255, pixels.shape[:2])
    pixels[..., tint] = np.clip(rng.randint(level - 20, level + 20, pixels.shape[:2]), 0, 255)
    result.append(encode(Image.fromarray(pixels)))
  return result


def held_out_pictures(colours: Sequence[int] = (RED, GREEN)) -> List[bytes]:
  return [data for i, colour in enumerate(colours) for data in pictures(colour, 50, 3 + i)]


def colour_model(image_size: int, colours: Sequence[int] = (RED, GREEN)) -> tf.keras.Model:
  """Class i is the pictures of colours[i]."""
  images = tf.keras.Input((image_size, image_size, 3), name=features.TRANSFORMED_IMAGE_KEY)
  pooled = tf.keras.layers.GlobalAveragePooling2D()(images)
  logits = tf.keras.layers.Dense(len(colours), name=embedding.LOGITS_LAYER)(pooled)
  model = tf.keras.Model(images, logits)
  kernel = np.full((3, len(colours)), -10, np.float32)
  for class_id, colour in enumerate(colours):
    kernel[colour, class_id] = 10
  model.get_layer(embedding.LOGITS_LAYER).set_weights([kernel, np.zeros(len(colours), np.float32)])
  return model


def dataset(transform_output, images: List[bytes]) -> tf.data.Dataset:
  layer = transform_output.transform_features_layer()
  raw = {features.IMAGE_KEY: tf.constant(images)[:, tf.newaxis]}
  transformed = layer(raw)[features.TRANSFORMED_IMAGE_KEY]
  return tf.data.Dataset.from_tensor_slices((transformed, tf.zeros(len(images)))).batch(8)


def save_with_baseline(model: tf.keras.Model, transform_output, image_size: int,
                       export_dir: str, class_names: List[str], train: List[bytes],
                       held_out: List[bytes], tflite: bool = False) -> str:
  """``model`` saved as the Trainer saves it: every signature and the baseline of ``train`` with
  the threshold of ``held_out`` (the Trainer's ``embedding.fit_baseline``); with ``tflite``, also
  its TFLite copy and out-of-distribution data."""
  baseline = embedding.fit_baseline(model, dataset(transform_output, train),
                                    dataset(transform_output, held_out))
  signatures.save_served(model, export_dir, {
      **signatures.make_serving_signatures(model, transform_output, class_names),
      **embedding.make_embedding_signature(model, baseline)})
  if tflite:
    tflite_export.export(model, export_dir, image_size, class_names, baseline)
  return export_dir


def save_colour_model(transform_output, image_size: int, export_dir: str,
                      train_count: int = 40,
                      classes: Optional[Dict[str, int]] = None, tflite: bool = False) -> str:
  """The colour model of ``classes`` (name -> colour; default cats red, dogs green), saved with
  every signature and a baseline of pictures of its colours (``save_with_baseline``)."""
  classes = classes or dict(zip(CLASS_NAMES, (RED, GREEN)))
  colours = list(classes.values())
  per_class = train_count // len(colours)
  train = [data for i, colour in enumerate(colours)
           for data in pictures(colour, per_class, 1 + i)]
  return save_with_baseline(colour_model(image_size, colours), transform_output, image_size,
                            export_dir, list(classes), train, held_out_pictures(colours), tflite)
