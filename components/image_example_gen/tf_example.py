"""One image file -> one tf.Example: the encoded bytes, the label, and the image's properties."""
import tensorflow as tf

from components.image_example_gen.image_properties import ImageProperties
from components.modules import features


def make_example(data: bytes, label: int, class_name: str, relative_path: str,
                 properties: ImageProperties) -> tf.train.Example:

  def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  def _float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: _bytes(data),
      features.LABEL_KEY: _int(label),
      features.LABEL_NAME_KEY: _bytes(class_name.encode('utf-8')),
      features.FILENAME_KEY: _bytes(relative_path.encode('utf-8')),
      features.HEIGHT_KEY: _int(properties.height),
      features.WIDTH_KEY: _int(properties.width),
      features.FORMAT_KEY: _bytes(properties.format.encode('utf-8')),
      features.FILE_SIZE_KEY: _int(len(data)),
      features.ASPECT_RATIO_KEY: _float(properties.width / properties.height),
      features.COLOR_MODE_KEY: _bytes(properties.color_mode.encode('utf-8')),
      features.BRIGHTNESS_KEY: _float(properties.mean_brightness),
      features.CONTRAST_KEY: _float(properties.contrast),
      features.SATURATION_KEY: _float(properties.mean_saturation),
  }))
