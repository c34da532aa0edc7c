"""Benchmark: accuracy on phone-style copies of the validation photos, with and without EXIF.

A cheap stand-in for the pipeline's model: the frozen pretrained MobileNetV2 0.35 base (160 px,
average pooled, ../shared/weights) and a logistic-regression head fitted on the 2000 training
photos, all through ``preprocessing.preprocess_images``, the Transform function. It then classifies
the 1000 validation photos as they are, and copies of them saved the way a phone saves a photo
(pixels turned, EXIF ``Orientation`` 2-8 in turn, quality 95), once through the Transform function
and once with the tag ignored (``tf.io.decode_image`` + resize, the function before the fix).
Writes benchmarks/results/exif_orientation_accuracy.{json,md}. Skips when ../shared is absent.

    python -m benchmarks.exif_orientation_accuracy
"""
import io
import os
import sys

import bootstrap  # pylint: disable=unused-import

# pylint: disable=wrong-import-position
from PIL import Image
import numpy as np
from sklearn.linear_model import LogisticRegression
import tensorflow as tf

from benchmarks import common
from benchmarks.common import DATA, SHARED
from components.modules import exif_orientation, model as model_lib, preprocessing

IMAGE_SIZE = 160
WEIGHTS = os.path.join(SHARED, 'weights', 'mobilenet_v2_0.35_no_top_imagenet.h5')
CLASSES = ('cats', 'dogs')
# The stored pixels of orientation k are these transposes of the upright photo.
STORED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


def _read(split: str):
  files, labels = [], []
  for label, class_name in enumerate(CLASSES):
    folder = os.path.join(DATA, split, class_name)
    for name in sorted(os.listdir(folder)):
      with open(os.path.join(folder, name), 'rb') as f:
        files.append(f.read())
      labels.append(label)
  return files, np.array(labels)


def phone_copy(data: bytes, orientation: int) -> bytes:
  """``data`` as a phone would store it with ``orientation``: pixels turned, tag set."""
  exif = Image.Exif()
  exif[exif_orientation.ORIENTATION_TAG] = orientation
  buffer = io.BytesIO()
  Image.open(io.BytesIO(data)).transpose(STORED[orientation]).save(
      buffer, 'JPEG', quality=95, exif=exif.tobytes())
  return buffer.getvalue()


def decode_and_resize_ignoring_orientation(data: tf.Tensor, image_size: int) -> tf.Tensor:
  """``preprocessing.decode_and_resize`` as it was before the fix: the stored pixels."""
  image = tf.io.decode_image(data, channels=3, expand_animations=False)
  return tf.image.resize(image, [image_size, image_size])


def main() -> int:
  if not (os.path.isdir(DATA) and os.path.exists(WEIGHTS)):
    print(f'skipped: {DATA} or {WEIGHTS} is absent')
    return 0
  base = model_lib.build_base(IMAGE_SIZE, alpha=0.35, weights=WEIGHTS)
  pool = tf.keras.layers.GlobalAveragePooling2D()
  transform = tf.function(lambda batch: preprocessing.preprocess_images(batch, IMAGE_SIZE))
  tag_ignored = tf.function(lambda batch: preprocessing.scale_to_unit_range(tf.map_fn(
      lambda data: decode_and_resize_ignoring_orientation(data, IMAGE_SIZE), batch,
      fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32))))

  def features(files, preprocess):
    return np.concatenate([pool(base(preprocess(tf.constant(files[i:i + 50])), training=False))
                           for i in range(0, len(files), 50)])

  train_files, train_labels = _read('train')
  head = LogisticRegression(max_iter=2000).fit(features(train_files, transform), train_labels)
  files, labels = _read('validation')
  copies = [phone_copy(data, 2 + i % 7) for i, data in enumerate(files)]
  cases = {'validation photos as they are': (files, transform),
           'phone copies (Orientation 2-8), through the Transform function': (copies, transform),
           'phone copies, tag ignored (the function before the fix)': (copies, tag_ignored)}
  correct = {name: int((head.predict(features(data, fn)) == labels).sum())
             for name, (data, fn) in cases.items()}
  lines = [f'# Accuracy on phone-style copies ({len(files)} validation photos; frozen MobileNetV2 '
           '0.35 at 160 px + logistic regression fitted on the 2000 training photos)', '',
           '| images | correct | accuracy |', '|---|---|---|']
  lines += [f'| {name} | {n} | {n / len(files):.3f} |' for name, n in correct.items()]
  common.write_results('exif_orientation_accuracy', {'images': len(files), 'correct': correct},
                       '\n'.join(lines) + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
