"""TFLiteCheck: the TFLite model's accuracy on the test split against its SavedModel's, and a gate.

TFMA 0.47 evaluates TFLite models (model_type 'tf_lite'), but it cannot serve here: it feeds a
TFLite model the raw tf.Example features by name, and this model's inputs are the Transform
graph's output or decoded pixels (``components/modules/tflite_export.py`` says why), which the
examples do not hold; and it refuses to evaluate a TFLite model together with a SavedModel
("mixing tf_lite and non-tf_lite models is not implemented"), so no TFMA threshold can compare
the two. This component does what TFMA's TFLite extractor does, on the same test split as the
Evaluator: it runs every test image through the Transform graph into the TFLite model's
``images`` signature, and through predict.py's own decoding (Pillow, EXIF upright:
``image_properties.upright_pixels``) into its ``pixels`` signature, and the serialized examples
through the SavedModel's ``serving_default`` (what TFMA and TF Serving call), and compares. The
run fails (and so nothing is pushed: the Pusher runs after it) when the Evaluator blessed the
model and either signature is more than ``max_accuracy_drop`` below the SavedModel.
"""
import json
import os
from typing import Dict, List, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact
from tfx.utils import path_utils

from components.image_example_gen import image_properties
from components.modules import features
from components.modules import tflite_export
from components.modules import tflite_model

RESULT_FILE = 'tflite_evaluation.json'
# The result's keys of the TFLite model's signatures: images (the Transform graph's output), pixels.
TFLITE_SIGNATURES = ('tflite', 'tflite_pixels')
_BATCH = 32


class TFLiteEvaluation(Artifact):
  """The TFLite model's and the SavedModel's test metrics and sizes (``tflite_evaluation.json``)."""
  # Kubeflow V2 imports the class by '<module>.<Class>'; the ``components`` package re-exports it.
  TYPE_NAME = 'components.TFLiteEvaluation'


class TFLiteAccuracyError(ValueError):
  """The TFLite model is less accurate than its SavedModel by more than allowed."""


def _folder_bytes(folder: str, exclude: Sequence[str] = ()) -> int:
  """Bytes of the files below ``folder``, except in its subfolders named in ``exclude``."""
  return sum(tf.io.gfile.stat(os.path.join(root, name)).length
             for root, _, names in tf.io.gfile.walk(folder)
             for name in names if os.path.relpath(root, folder).split(os.sep)[0] not in exclude)


def measure(model_dir: str, transform_dir: str, example_files: List[str]) -> Dict[str, object]:
  """Both models' predictions on the examples in ``example_files`` (gzipped tf.Examples), and the
  accuracy overall and per class (recall) of the SavedModel and of each TFLite signature, their
  agreement with the SavedModel, the larger accuracy drop, and the files' sizes."""
  tft_output = tft.TFTransformOutput(transform_dir)
  tft_layer = tft_output.transform_features_layer()
  serve = tf.saved_model.load(model_dir).signatures['serving_default']
  with tf.io.gfile.GFile(tflite_model.tflite_path(model_dir), 'rb') as f:
    tflite_bytes = f.read()
  tflite = tflite_export.TFLiteClassifier(tflite_bytes)
  spec = {features.IMAGE_KEY: tft_output.raw_feature_spec()[features.IMAGE_KEY],
          features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}
  predicted = {name: [] for name in ('saved_model', *TFLITE_SIGNATURES)}
  labels = []
  for batch in tf.data.TFRecordDataset(example_files, compression_type='GZIP').batch(_BATCH):
    parsed = tf.io.parse_example(batch, spec)
    images = tft_layer({features.IMAGE_KEY: parsed[features.IMAGE_KEY]})
    predicted['tflite'].append(np.argmax(tflite.probabilities(
        images[features.TRANSFORMED_IMAGE_KEY].numpy()), axis=-1))
    predicted['tflite_pixels'].append(
        [np.argmax(tflite.of_pixels(image_properties.upright_pixels(data))[0])
         for data in parsed[features.IMAGE_KEY].numpy().reshape(-1)])
    predicted['saved_model'].append(serve(examples=batch)[features.CLASS_IDS_OUTPUT].numpy())
    labels.append(parsed[features.LABEL_KEY].numpy().reshape(-1))
  if not labels:
    raise ValueError(f'no examples in {example_files}: nothing to measure the TFLite model on')
  labels = np.concatenate(labels)
  predicted = {name: np.concatenate(ids) for name, ids in predicted.items()}
  per_model = {}
  for name, ids in predicted.items():
    right = ids == labels
    per_model[name] = {
        'accuracy': float(right.mean()),
        # Per class: the share of its test images classified right (its recall).
        'per_class': {str(label): float(right[labels == label].mean())
                      for label in sorted(set(labels.tolist()))}}
    if name != 'saved_model':
      per_model[name]['agreement'] = float(np.mean(ids == predicted['saved_model']))
  return {
      'example_count': int(len(labels)),
      **per_model,
      'agreement': per_model['tflite']['agreement'],
      'accuracy_drop': max(per_model['saved_model']['accuracy'] - per_model[name]['accuracy']
                           for name in TFLITE_SIGNATURES),
      'tflite_bytes': len(tflite_bytes),
      'saved_model_bytes': _folder_bytes(model_dir, exclude=(tflite_model.TFLITE_DIR,)),
      'quantization': tflite_model.QUANTIZATION,
  }


def check(result: Dict[str, object], max_accuracy_drop: float, blessed: bool) -> None:
  """Raises TFLiteAccuracyError when a blessed model's TFLite copy lost too much accuracy."""
  drop = result['accuracy_drop']
  if blessed and drop > max_accuracy_drop + 1e-9:
    worse = min(TFLITE_SIGNATURES, key=lambda name: result[name]['accuracy'])
    signature = ('its pixels signature, as predict.py feeds it' if worse == 'tflite_pixels' else
                 "its images signature, fed the Transform graph's output")
    raise TFLiteAccuracyError(
        f"the TFLite model's test accuracy {result[worse]['accuracy']:.4f} is {drop:.4f} below "
        f"the SavedModel's {result['saved_model']['accuracy']:.4f} on {result['example_count']} "
        f'test images ({signature}; at most {max_accuracy_drop} allowed, '
        '--tflite-max-accuracy-drop); nothing is pushed.')


@component
def TFLiteCheck(  # pylint: disable=invalid-name
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    transform_graph: InputArtifact[standard_artifacts.TransformGraph],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    evaluation: OutputArtifact[TFLiteEvaluation],
    max_accuracy_drop: Parameter[float],
    split: Parameter[str] = 'test',
) -> None:
  """Measures the Trainer's TFLite model against its SavedModel on ``split``; fails the run when
  the Evaluator blessed the model and the TFLite copy is more than ``max_accuracy_drop`` worse."""
  split_uri = artifact_utils.get_split_uri([examples], split)
  result = measure(path_utils.serving_model_path(model.uri), transform_graph.uri,
                   tf.io.gfile.glob(os.path.join(split_uri, '*')))
  with tf.io.gfile.GFile(os.path.join(evaluation.uri, RESULT_FILE), 'w') as f:
    json.dump({**result, 'split': split, 'max_accuracy_drop': max_accuracy_drop}, f, indent=1)
  for name in ('example_count', 'tflite_bytes', 'saved_model_bytes'):
    evaluation.set_int_custom_property(name, result[name])
  for name in ('saved_model', *TFLITE_SIGNATURES):
    evaluation.set_float_custom_property(f'{name}_accuracy', result[name]['accuracy'])
  evaluation.set_float_custom_property('accuracy_drop', result['accuracy_drop'])
  logging.info('TFLite model on %d %s images: accuracy %.4f, from decoded pixels %.4f (SavedModel '
               '%.4f), %d bytes (%s)', result['example_count'], split,
               result['tflite']['accuracy'], result['tflite_pixels']['accuracy'],
               result['saved_model']['accuracy'], result['tflite_bytes'], result['quantization'])
  check(result, max_accuracy_drop, blessed=bool(blessing.get_int_custom_property('blessed')))
