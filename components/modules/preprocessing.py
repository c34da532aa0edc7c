"""Transform module: the single preprocessing path shared by training, evaluation and serving.

Refuses a batch with an image over the pixel or byte budget, read from the headers before anything
is decoded (image_budget), decodes the encoded image bytes (JPEG, PNG, GIF, BMP), turns JPEGs
upright by their EXIF orientation (exif_orientation), resizes them bilinearly to a square of
``image_size`` pixels and scales them to [-1, 1] exactly as ``mobilenet_v2.preprocess_input`` does.
The Transform graph is applied inside the Trainer's tf.data pipeline and inside both serving
signatures, and the TFLite model's ``pixels`` signature runs ``resize`` and
``scale_to_unit_range`` on decoded pixels, so no copy of this logic exists anywhere else.
"""
from typing import Any, Dict, Optional

import tensorflow as tf

from components.modules import exif_orientation
from components.modules import features
from components.modules import image_budget


def resize(images: tf.Tensor, image_size: int) -> tf.Tensor:
  """Upright RGB [H, W, 3] or [N, H, W, 3] -> bilinearly resized to a square of ``image_size``,
  float32 in [0, 255]. The TFLite model's ``pixels`` signature runs it too (tflite_export)."""
  return tf.image.resize(images, [image_size, image_size], method='bilinear')


def decode_and_resize(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
  """One encoded image -> upright RGB resized to [image_size, image_size, 3] float32 in [0, 255]."""
  return resize(exif_orientation.decode_upright(image_bytes), image_size)


def scale_to_unit_range(images: tf.Tensor) -> tf.Tensor:
  """[0, 255] -> [-1, 1], the formula of ``tf.keras.applications.mobilenet_v2.preprocess_input``."""
  return images / 127.5 - 1.0


def preprocess_images(image_bytes: tf.Tensor, image_size: int,
                      budget: Optional[image_budget.ImageBudget] = None) -> tf.Tensor:
  """A batch of encoded images, any shape [N] or [N, 1], -> float32 [N, size, size, 3] in [-1, 1].

  With a ``budget``, an image over it fails the batch (InvalidArgumentError) before any is
  decoded; without one (images that passed ImageExampleGen's check), nothing is checked.
  """
  image_bytes = tf.reshape(image_bytes, [-1])
  if budget is not None:
    image_bytes = image_budget.checked(image_bytes, budget, 'batch')
  images = tf.map_fn(
      lambda encoded: decode_and_resize(encoded, image_size),
      image_bytes,
      fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))
  return scale_to_unit_range(images)


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
  """TFT entry point; ``custom_config``'s image_size, max_image_pixels and max_image_bytes come from
  PipelineConfig. The budget is saved in the graph as named constants, which the Trainer copies
  into the served model (image_budget.of_transform_graph)."""
  image_size = int(custom_config['image_size'])
  budget = image_budget.graph_constants(image_budget.from_settings(custom_config))
  return {
      features.TRANSFORMED_IMAGE_KEY: preprocess_images(inputs[features.IMAGE_KEY], image_size,
                                                        budget),
      features.TRANSFORMED_LABEL_KEY: tf.reshape(inputs[features.LABEL_KEY], [-1]),
  }
