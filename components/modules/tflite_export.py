"""The on-device model: the trained Keras model as TFLite, beside the SavedModel it came from.

``<model_dir>/tflite/`` gets the model, its contract and its out-of-distribution data; the names,
and the reader that needs no TensorFlow, are tflite_model.py's. The model has two signatures
sharing one set of weights. ``images`` (``tflite/input_contract.json``): float32 [N, size, size,
3], RGB, upright, bilinearly resized, scaled to [-1, 1] (x / 127.5 - 1), the output of the
pipeline's Transform graph (components/modules/preprocessing.py) -> ``probabilities`` float32
[N, C], class i being ``class_names[i]``; the device decodes, turns upright (EXIF), resizes and
scales. ``pixels``: uint8 [1, H, W, 3], one decoded upright RGB image of any size ->
``probabilities`` [1, C] and ``embedding`` [1, D]; the model resizes and scales with the Transform
graph's own functions (TFLite builtins: RESIZE_BILINEAR with half-pixel centres, as
tf.image.resize, the same values to 1e-7), so a device or predict.py decodes and turns upright
only; float16 quantisation stores the scaling's 1 / 127.5 as float16 too, which moves a scaled
pixel by at most 3e-5, far less than the weights' own rounding. Raw JPEG bytes are
not an input because TFLite's builtin ops cannot decode images (DecodeJpeg/DecodePng need the
Select TF ops, i.e. the Flex delegate, several MB in every app), and a phone's camera hands over
pixels, not files. ``ood_baseline.npz`` holds the SavedModel's embedding baseline and OOD
threshold (embedding.py), so the ``embedding`` output gets the same out-of-distribution score
outside TensorFlow.

Quantisation: float16 (weights stored as float16; computed in float32 on CPUs, in float16 by GPU
delegates). It halves the file and, on the real test split, changes no prediction (224 of 224
agree with the SavedModel; benchmarks/results/tflite_benchmark.md). Dynamic range (int8 weights)
makes the file 1.8x smaller still, but it changed 2 of the 224 predictions (-0.89 points, most of
the gate's allowance of 1 point, which a retrain could then exceed by chance) and reduced a
hand-weighted test model to a constant answer. On this machine's x86 CPU float16 and float32 ran
equally fast (2.0 ms per image, batch 1; the benchmark). The pipeline measures the TFLite model on
the test split anyway (components/tflite_check.py) and refuses to push one that loses more than
the allowed drop.
"""
import io
import json
import os
import tempfile
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
# Not TensorFlow's public API, but what its TFLite converter freezes a function with.
from tensorflow.python.framework import convert_to_constants

from components.modules import embedding
from components.modules import image_budget
from components.modules import preprocessing
from components.modules.tflite_model import (BASELINE_EMBEDDINGS, CONTRACT_FILE, EMBEDDING_OUTPUT,
                                             IMAGES_SIGNATURE, INPUT_NAME, NEIGHBOURS,
                                             OOD_BASELINE_FILE, OOD_THRESHOLD, OUTPUT_NAME,
                                             PIXELS_INPUT, PIXELS_SIGNATURE, QUANTIZATION,
                                             TFLITE_DIR, TFLiteModel, folder_file,
                                             native_logs_silenced, tflite_path)


def convert(model: tf.keras.Model, image_size: int, quantization: str = QUANTIZATION) -> bytes:
  """The model as a TFLite flatbuffer with the ``images`` and ``pixels`` signatures;
  ``quantization`` 'float16' (the pipeline's), 'dynamic_range' or 'float32' (none; the last two
  for comparison in benchmarks/tflite_benchmark.py)."""
  embedding_and_logits = embedding.embedding_and_logits_model(model)

  @tf.function(input_signature=[
      tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=INPUT_NAME)])
  def images(images):
    return {OUTPUT_NAME: tf.nn.softmax(model(images, training=False))}

  @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name=PIXELS_INPUT)])
  def pixels(pixels):
    # Cast first: TFLite's RESIZE_BILINEAR returns its input's type, while TensorFlow's resizes
    # the Transform graph's uint8 pixels in float32; on float32 pixels both compute the same.
    resized = preprocessing.resize(tf.cast(pixels, tf.float32), image_size)
    embeddings, logits = embedding_and_logits(preprocessing.scale_to_unit_range(resized),
                                              training=False)
    return {OUTPUT_NAME: tf.nn.softmax(logits), EMBEDDING_OUTPUT: embeddings}

  # Two named signatures are converted from a SavedModel (the converter freezes only a single
  # function in memory); frozen first, it holds no variables to write, and saving and converting
  # take half the time that the converter's own lowering of the model's variables takes.
  with tempfile.TemporaryDirectory() as saved_model_dir:
    tf.saved_model.save(tf.Module(), saved_model_dir, signatures={
        IMAGES_SIGNATURE: _frozen(images), PIXELS_SIGNATURE: _frozen(pixels)})
    # The first signature is the interpreter's primary subgraph (get_input_details and the like).
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[IMAGES_SIGNATURE, PIXELS_SIGNATURE])
    if quantization != 'float32':
      converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic range
    if quantization == 'float16':
      converter.target_spec.supported_types = [tf.float16]
    with native_logs_silenced():
      return converter.convert()


def _frozen(function: tf.types.experimental.GenericFunction
            ) -> tf.types.experimental.ConcreteFunction:
  """``function`` (one input signature) with the variables it reads as constants, as the TFLite
  converter freezes a function, and its outputs by name."""
  concrete = function.get_concrete_function()
  constant = convert_to_constants.convert_variables_to_constants_v2(concrete)

  @tf.function(input_signature=function.input_signature)
  def named_outputs(inputs):
    return tf.nest.pack_sequence_as(concrete.structured_outputs, constant(inputs))

  return named_outputs.get_concrete_function()


def input_contract(model: tf.keras.Model, image_size: int, class_names: Sequence[str],
                   with_ood_baseline: bool) -> dict:
  """What a device (and predict.py) feeds each signature, and what it gets back."""
  probabilities = {'dtype': 'float32', 'meaning': 'softmax probability of class_names[i]'}
  contract = {
      'signature': IMAGES_SIGNATURE,
      'input': {'name': INPUT_NAME, 'dtype': 'float32', 'shape': [None, image_size, image_size, 3],
                'value_range': [-1.0, 1.0], 'channels': 'RGB'},
      'preprocessing_on_device': [
          'decode the image (JPEG, PNG, ...) to RGB',
          'turn it upright by its EXIF orientation',
          f'resize to {image_size}x{image_size} pixels, bilinear, aspect ratio not kept',
          'scale to [-1, 1]: x / 127.5 - 1'],
      'output': {'name': OUTPUT_NAME, 'shape': [None, len(class_names)], **probabilities},
      'pixels_signature': {
          'signature': PIXELS_SIGNATURE,
          'input': {'name': PIXELS_INPUT, 'dtype': 'uint8', 'shape': [1, None, None, 3],
                    'value_range': [0, 255], 'channels': 'RGB'},
          'preprocessing_on_device': ['decode the image (JPEG, PNG, ...) to RGB',
                                      'turn it upright by its EXIF orientation'],
          'preprocessing_in_model': [
              f'resize to {image_size}x{image_size} pixels, bilinear with half-pixel centres '
              '(tf.image.resize), aspect ratio not kept',
              'scale to [-1, 1]: x / 127.5 - 1'],
          'outputs': {
              OUTPUT_NAME: {'shape': [1, len(class_names)], **probabilities},
              EMBEDDING_OUTPUT: {
                  'dtype': 'float32',
                  'shape': [1, model.get_layer(embedding.LOGITS_LAYER).input.shape[-1]],
                  'meaning': 'the input of the logits layer, for the out-of-distribution score'}},
      },
      'class_names': list(class_names),
      'quantization': QUANTIZATION,
  }
  # The image budget the model was built with (signatures.make_serving_signatures attached it):
  # predict.py's TFLite engine refuses what the SavedModel would refuse.
  budget = image_budget.of_model(model)
  if budget is not None:
    contract.update(image_budget.as_settings(budget))
  if with_ood_baseline:
    contract['out_of_distribution'] = {
        'file': OOD_BASELINE_FILE,
        'score': f'cosine distance of the {EMBEDDING_OUTPUT} output to its k-th nearest row of '
                 f"the file's {BASELINE_EMBEDDINGS} (k: its {NEIGHBOURS})",
        'out_of_distribution': f"score > the file's {OOD_THRESHOLD}"}
  return contract


def export(model: tf.keras.Model, model_dir: str, image_size: int, class_names: Sequence[str],
           baseline: Optional[embedding.EmbeddingBaseline] = None) -> str:
  """Writes ``<model_dir>/tflite/``: the model, its input contract and, given the SavedModel's
  ``baseline``, its out-of-distribution data; returns the model's path."""
  tf.io.gfile.makedirs(os.path.join(model_dir, TFLITE_DIR))
  with tf.io.gfile.GFile(tflite_path(model_dir), 'wb') as f:
    f.write(convert(model, image_size))
  if baseline is not None:
    saved = io.BytesIO()
    np.savez(saved, **{BASELINE_EMBEDDINGS: baseline.embeddings,
                       # float32, as the SavedModel's variable: the same comparison
                       OOD_THRESHOLD: np.float32(baseline.ood_threshold),
                       NEIGHBOURS: embedding.NEIGHBOURS})
    with tf.io.gfile.GFile(folder_file(model_dir, OOD_BASELINE_FILE), 'wb') as f:
      f.write(saved.getvalue())
  with tf.io.gfile.GFile(folder_file(model_dir, CONTRACT_FILE), 'w') as f:
    json.dump(input_contract(model, image_size, class_names, baseline is not None), f, indent=1)
  return tflite_path(model_dir)


class TFLiteClassifier(TFLiteModel):
  """The TFLite model in TensorFlow's interpreter (tf.lite), for the pipeline's TFLiteCheck and
  the benchmarks: the Kubeflow image has TensorFlow, not ai-edge-litert."""

  def __init__(self, model_content: bytes, num_threads: int = 1):
    super().__init__(model_content, tf.lite.Interpreter, num_threads)
