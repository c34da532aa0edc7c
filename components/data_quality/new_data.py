"""validate.py's data-quality checks of new images against the training set: new images that
duplicate training images (or each other), and likely label errors among the new images.

The new images go through the same feature extractor that the pipeline's run saved (the frozen
base behind the Transform graph, every view), so their features compare with the training images'
features that BulkInferrer wrote; the checks are DataQuality's (checks.py).
"""
import dataclasses
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from components.data_quality import checks
from components.data_quality import component
from components.modules import features
from components.modules import frozen_features

NEW = 'new'
_BATCH = 32


def read_new_images(examples_path: str, extractor_dir: str, class_names: Sequence[str],
                    num_views: int) -> checks.ImageSet:
  """The new images (serialized raw tf.Examples at ``examples_path``) with their features from the
  extractor SavedModel at ``extractor_dir``, labelled by ``class_names``, the training set's
  (-1, unlabelled, for a class the training set does not have)."""
  serve = tf.saved_model.load(extractor_dir).signatures['serving_default']
  spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
          features.LABEL_NAME_KEY: tf.io.FixedLenFeature([], tf.string),
          features.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string)}
  # The training set's label ids: the new data's own ids follow its own class folders.
  label_of = {name: i for i, name in enumerate(class_names)}
  paths, labels, hashes, embeddings = [], [], [], []
  for serialized in tf.data.TFRecordDataset(examples_path).batch(_BATCH):
    parsed = tf.io.parse_example(serialized, spec)
    values = serve(examples=serialized)[frozen_features.FEATURES_KEY].numpy()
    embeddings.append(values.reshape(len(values), num_views, -1))
    labels.append(np.array([label_of.get(name.decode('utf-8'), -1)
                            for name in parsed[features.LABEL_NAME_KEY].numpy()]))
    paths += [path.decode('utf-8') for path in parsed[features.FILENAME_KEY].numpy()]
    hashes += [checks.content_hash(data) for data in parsed[features.IMAGE_KEY].numpy()]
  return checks.ImageSet(paths=paths, splits=[NEW] * len(paths), labels=np.concatenate(labels),
                         class_names=list(class_names), hashes=hashes,
                         embeddings=np.concatenate(embeddings))


def combined(training: checks.ImageSet, new: checks.ImageSet) -> checks.ImageSet:
  return checks.ImageSet(
      paths=[f'training: {p}' for p in training.paths] + [f'new: {p}' for p in new.paths],
      splits=list(training.splits) + list(new.splits),
      labels=np.concatenate([training.labels, new.labels]), class_names=training.class_names,
      hashes=list(training.hashes) + list(new.hashes),
      embeddings=np.concatenate([training.embeddings, new.embeddings]))


@dataclasses.dataclass
class NewDataQuality:
  """What the checks found among the new images."""
  new_images: int
  duplicates_of_training: List[Dict[str, object]]
  duplicates_within_new: List[Dict[str, object]]
  label_issues: List[Dict[str, object]]

  def lines(self) -> List[str]:
    """The report's lines."""
    named = '; '.join(f"{pair['paths'][0]} ~ {pair['paths'][1]} ({pair['similarity']:.2f})"
                      for pair in self.duplicates_of_training[:3])
    copied = {path for pair in self.duplicates_of_training for path in pair['paths']
              if path.startswith(f'{NEW}: ')}
    return [f'data quality: {len(copied)} of {self.new_images} new images duplicate training '
            f'images' + (f', e.g. {named}' if named else ''),
            f'data quality: {len(self.duplicates_within_new)} duplicate pairs among the new '
            f'images; {len(self.label_issues)} likely label errors among them' + (
                ', e.g. ' + '; '.join(f"{i['path']} labelled {i['given_label']}, looks like "
                                      f"{i['suggested_label']}" for i in self.label_issues[:3])
                if self.label_issues else '')]


def check(training: checks.ImageSet, new: checks.ImageSet) -> NewDataQuality:
  """The checks of the training images and the new ones together, reported for the new ones."""
  report = checks.analyse(combined(training, new))
  involves_new = lambda pair: NEW in pair['splits']
  return NewDataQuality(
      new_images=len(new.paths),
      duplicates_of_training=[p for p in report['near_duplicates']
                              if involves_new(p) and component.TRAIN in p['splits']],
      duplicates_within_new=[p for p in report['near_duplicates'] if p['splits'] == [NEW, NEW]],
      label_issues=[i for i in report['label_issues'] if i['split'] == NEW])
