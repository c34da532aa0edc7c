"""TF Serving warm-up requests written into the SavedModel, as TFX's InfraValidator writes them.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` (TFRecords of
``tensorflow_serving.apis.PredictionLog``) when it loads a version, before that version takes
traffic, so the first real request does not pay for TensorFlow's lazy initialisation (graph
optimisation, kernel selection, the Transform graph's decode ops). One ``PredictRequest`` per
serving signature, each with a few real images of the eval split: ``serving_default`` gets them
as tf.Examples holding only the image bytes (as a client sends them), ``serving_image_bytes`` as
encoded files. The file is written with TFX's own helpers (``path_utils.warmup_file_path``,
``io_utils.write_tfrecord_file``), the same calls as InfraValidator's ``make_warmup``.
"""
from typing import Dict, Iterator, List, Sequence

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tfx.utils import io_utils
from tfx.utils import path_utils
from tfx_bsl.public import tfxio

from components.modules import features

WARMUP_IMAGES = 4


def image_examples(images: Sequence[bytes]) -> List[bytes]:
  """Serialized tf.Examples as a client of ``serving_default`` sends them: the image bytes only."""
  return [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
  })).SerializeToString() for image in images]


def requests(images: Sequence[bytes]) -> List[prediction_log_pb2.PredictionLog]:
  """One PredictionLog with a PredictRequest per serving signature, over ``images``."""
  inputs_per_signature: Dict[str, Dict[str, List[bytes]]] = {
      'serving_default': {'examples': image_examples(images)},
      features.IMAGE_BYTES_SIGNATURE: {features.IMAGE_BYTES_INPUT: list(images)},
  }
  logs = []
  for signature, inputs in inputs_per_signature.items():
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = signature
    for name, values in inputs.items():
      request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    logs.append(prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)))
  return logs


def first_images(data_accessor, file_patterns: Sequence[str], schema,
                 count: int = WARMUP_IMAGES) -> List[bytes]:
  """The image bytes of the first ``count`` examples of ``file_patterns``, read through TFX's
  data accessor as the Trainer reads its splits (whatever their compression)."""
  dataset = data_accessor.tf_dataset_factory(
      file_patterns, tfxio.TensorFlowDatasetOptions(batch_size=count, num_epochs=1, shuffle=False),
      schema=schema)
  batch = next(iter(dataset))
  return [bytes(image) for image in tf.reshape(batch[features.IMAGE_KEY], [-1]).numpy()]


def write(model_dir: str, images: Sequence[bytes]) -> str:
  """Writes the warm-up file of the SavedModel at ``model_dir``; returns its path."""
  if not images:
    raise ValueError('no images to write warm-up requests with')
  path = path_utils.warmup_file_path(model_dir)
  io_utils.write_tfrecord_file(path, *requests(images))
  return path


def read(model_dir: str) -> Iterator[prediction_log_pb2.PredictionLog]:
  """The warm-up records of the SavedModel at ``model_dir``, parsed."""
  for record in tf.data.TFRecordDataset(path_utils.warmup_file_path(model_dir)):
    yield prediction_log_pb2.PredictionLog.FromString(record.numpy())


def replay(loaded, log: prediction_log_pb2.PredictionLog) -> Dict[str, tf.Tensor]:
  """Runs one warm-up request through a loaded SavedModel's signature, as TF Serving does."""
  request = log.predict_log.request
  inputs = {name: tf.constant(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
  return loaded.signatures[request.model_spec.signature_name](**inputs)
