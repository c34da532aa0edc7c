"""The report's pictures as PNG bytes (matplotlib, no display): image grids, class counts, training
curves, the confusion matrix, and the Trainer's augmentation on one image."""
import io
from typing import Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # no display: PNGs only
# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import pyplot as plt
import numpy as np
import tensorflow as tf

from components.modules import model as model_lib
from components.modules import preprocessing


def _png(figure) -> bytes:
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=80, bbox_inches='tight')
  plt.close(figure)
  return buffer.getvalue()


def image_grid(rows: Sequence[Tuple[str, Sequence[Tuple[np.ndarray, str]]]]) -> bytes:
  """One row per (row title, [(image, caption), ...]), e.g. cats on top, dogs below."""
  columns = max(len(images) for _, images in rows)
  figure, axes = plt.subplots(len(rows), columns, figsize=(2 * columns, 2.2 * len(rows)),
                              squeeze=False)
  for row, (title, images) in enumerate(rows):
    for column in range(columns):
      axis = axes[row][column]
      axis.axis('off')
      if column < len(images):
        image, caption = images[column]
        axis.imshow(image)
        axis.set_title(caption if column else f'{title}\n{caption}'.strip(), fontsize=8)
  return _png(figure)


def label_counts_chart(counts: Dict[str, Dict[str, int]]) -> bytes:
  """Grouped bars: images per class in each split."""
  splits = sorted(counts)
  class_names = sorted({name for per_class in counts.values() for name in per_class})
  figure, axis = plt.subplots(figsize=(6, 3))
  width = 0.8 / max(len(class_names), 1)
  for i, name in enumerate(class_names):
    positions = [s + i * width for s in range(len(splits))]
    bars = axis.bar(positions, [counts[split].get(name, 0) for split in splits], width, label=name)
    axis.bar_label(bars, fontsize=7)
  axis.set_xticks([s + width * (len(class_names) - 1) / 2 for s in range(len(splits))], splits)
  axis.set_ylabel('images')
  axis.legend()
  return _png(figure)


def training_curves(history: Dict[str, List[float]]) -> bytes:
  """Loss and accuracy per epoch, training vs eval split."""
  figure, axes = plt.subplots(1, 2, figsize=(9, 3))
  for axis, metric in zip(axes, ('loss', 'accuracy')):
    for key, label in ((metric, 'train'), (f'val_{metric}', 'eval')):
      if key in history:
        axis.plot(range(1, len(history[key]) + 1), history[key], marker='.', label=label)
    axis.set_xlabel('epoch')
    axis.set_title(metric)
    axis.legend()
  return _png(figure)


def confusion_matrix_chart(matrix: np.ndarray, class_names: Sequence[str]) -> bytes:
  figure, axis = plt.subplots(figsize=(3.5, 3))
  axis.imshow(matrix, cmap='Blues')
  for (actual, predicted), count in np.ndenumerate(matrix):
    axis.text(predicted, actual, int(count), ha='center', va='center',
              color='white' if count > matrix.max() / 2 else 'black')
  axis.set_xticks(range(len(class_names)), class_names)
  axis.set_yticks(range(len(class_names)), class_names)
  axis.set_xlabel('predicted')
  axis.set_ylabel('actual')
  return _png(figure)


def augmentation_preview(image: bytes, image_size: int, rotation_factor: float) -> bytes:
  """One training image and five random flips/rotations, by the Trainer's own augmentation."""
  decoded = preprocessing.preprocess_images(tf.constant([image]), image_size)[0]
  augment = model_lib.augmentation(rotation_factor)
  # One batch of five copies: each image of a batch gets its own random flip and rotation.
  augmented = augment(tf.repeat(decoded[tf.newaxis], 5, axis=0), training=True)
  views = [(decoded, 'original')] + [(view, f'random {i + 1}') for i, view in enumerate(augmented)]
  return image_grid([('', [(((view.numpy() + 1) * 127.5).clip(0, 255).astype('uint8'), caption)
                           for view, caption in views])])
