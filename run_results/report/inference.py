"""The run's examples, read back from its Examples artifact, and its model's worst mistakes on the
test split: the one computation of the report, through the ``serving_default`` signature, as TF
Serving would run it."""
import os
from typing import List, Sequence, Tuple

from ml_metadata.proto import metadata_store_pb2
import numpy as np
import tensorflow as tf
from tfx.utils import path_utils

from components.modules import exif_orientation
from components.modules import features

THUMBNAIL = 160
MISTAKES_SHOWN = 12


def read_examples(examples: metadata_store_pb2.Artifact, split: str,
                  limit: int) -> List[tf.train.Example]:
  split_uri = os.path.join(examples.uri, f'Split-{split}')
  files = sorted(tf.io.gfile.glob(os.path.join(split_uri, '*')))
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').take(limit)
  return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def examples_per_class(examples: metadata_store_pb2.Artifact, split: str, num_classes: int,
                       per_class: int) -> List[List[tf.train.Example]]:
  """The first ``per_class`` examples of every class of ``split``, read until each class has them
  (the examples are not in random order: the first few hundred may all be of one class)."""
  split_uri = os.path.join(examples.uri, f'Split-{split}')
  files = sorted(tf.io.gfile.glob(os.path.join(split_uri, '*')))
  chosen = [[] for _ in range(num_classes)]
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    example = tf.train.Example.FromString(record.numpy())
    of_class = chosen[feature_value(example, features.LABEL_KEY)]
    if len(of_class) < per_class:
      of_class.append(example)
      if all(len(c) == per_class for c in chosen):
        break
  return chosen


def feature_value(example: tf.train.Example, key: str):
  feature = example.features.feature[key]
  return (feature.bytes_list.value or feature.int64_list.value or feature.float_list.value)[0]


def thumbnail(data: bytes) -> np.ndarray:
  image = exif_orientation.decode_upright(tf.constant(data))
  return tf.image.resize_with_pad(image, THUMBNAIL, THUMBNAIL).numpy().astype('uint8')


def worst_mistakes(model_uri: str, examples: List[tf.train.Example], class_names: Sequence[str],
                   shown: int = MISTAKES_SHOWN) -> List[Tuple[np.ndarray, str]]:
  """Misclassified examples, most confident first, with what the model said."""
  model = tf.saved_model.load(path_utils.serving_model_path(model_uri))
  serve = model.signatures['serving_default']
  probabilities = np.concatenate([
      serve(examples=tf.constant([e.SerializeToString() for e in examples[i:i + 64]]))[
          features.PROBABILITIES_OUTPUT].numpy() for i in range(0, len(examples), 64)])
  labels = np.array([feature_value(e, features.LABEL_KEY) for e in examples])
  predicted = probabilities.argmax(axis=1)
  wrong = np.flatnonzero(predicted != labels)
  wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:shown]
  return [(thumbnail(feature_value(examples[i], features.IMAGE_KEY)),
           f'{class_names[predicted[i]]} {probabilities[i, predicted[i]]:.2f}\n'
           f'(is {class_names[labels[i]]})') for i in wrong]
