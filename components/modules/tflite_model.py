"""The pushed TFLite model without TensorFlow: its files, signatures and out-of-distribution data.

``tflite_export.py`` (with TensorFlow, in the Trainer) writes the folder ``<version>/tflite/``;
this module reads it with numpy alone, so that ``predict.py`` classifies in an interpreter that
does not load TensorFlow (ai-edge-litert's). The pipeline's TFLiteCheck passes TensorFlow's own
interpreter (tf.lite), which the Kubeflow image has; both run the same flatbuffer.

* ``model.tflite``: two signatures sharing one set of float16 weights.
  ``images``: float32 [N, size, size, 3] in [-1, 1], the Transform graph's output ->
  ``probabilities`` [N, C] (the device decodes, turns upright, resizes and scales; a fixed shape,
  as GPU delegates want). ``pixels``: uint8 [1, H, W, 3], one decoded upright RGB image of any
  size -> ``probabilities`` [1, C] and ``embedding`` [1, D] (the input of the logits layer): the
  model resizes and scales with the Transform graph's own ops (preprocessing.resize_and_scale).
* ``input_contract.json``: both signatures, the class names, the quantisation.
* ``ood_baseline.npz``: what the SavedModel's ``serving_image_embedding`` scores with
  (embedding.py): the training embeddings sample, the threshold and k. The score is the cosine
  distance to the k-th nearest training embedding, ``knn_distance`` below.
"""
import contextlib
import dataclasses
import os
import sys
from typing import Iterator, Tuple

import numpy as np

TFLITE_DIR = 'tflite'
TFLITE_FILE = 'model.tflite'
CONTRACT_FILE = 'input_contract.json'
OOD_BASELINE_FILE = 'ood_baseline.npz'
IMAGES_SIGNATURE = 'images'
INPUT_NAME = 'images'  # of the images signature
PIXELS_SIGNATURE = 'pixels'
PIXELS_INPUT = 'pixels'
OUTPUT_NAME = 'probabilities'
EMBEDDING_OUTPUT = 'embedding'
QUANTIZATION = 'float16'
# ood_baseline.npz's arrays.
BASELINE_EMBEDDINGS, OOD_THRESHOLD, NEIGHBOURS = 'embeddings', 'ood_threshold', 'neighbours'


def folder_file(model_dir: str, name: str) -> str:
  """A file of the TFLite folder of the SavedModel at ``model_dir``."""
  return os.path.join(model_dir, TFLITE_DIR, name)


def tflite_path(model_dir: str) -> str:
  """Where the TFLite model of the SavedModel at ``model_dir`` is."""
  return folder_file(model_dir, TFLITE_FILE)


@contextlib.contextmanager
def native_logs_silenced() -> Iterator[None]:
  """TFLite's converter and interpreter log from C++ straight to file descriptor 2 ("All log
  messages before absl::InitializeLog()", "Ignored output_format", "Created TensorFlow Lite
  XNNPACK delegate"), past Python's logging and TF_CPP_MIN_LOG_LEVEL: a run's output would carry
  them. Their failures still raise Python exceptions, with the message."""
  sys.stderr.flush()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
  """Rows scaled to length 1, as tf.math.l2_normalize (epsilon 1e-12 on the squared norm)."""
  vectors = np.asarray(vectors, np.float32)
  squared = np.maximum(np.sum(vectors * vectors, axis=-1, keepdims=True), np.float32(1e-12))
  return vectors / np.sqrt(squared)


def knn_distance(unit_embeddings: np.ndarray, unit_reference: np.ndarray, k: int) -> np.ndarray:
  """Cosine distance [N] of each embedding to its k-th nearest row of the reference [R, D], both
  given as ``unit_rows``: embedding.knn_distance, the SavedModel's score, in numpy."""
  similarities = unit_embeddings @ unit_reference.T
  return 1.0 - np.sort(similarities, axis=-1)[:, -min(k, len(unit_reference))]


@dataclasses.dataclass(frozen=True)
class OODBaseline:
  """The SavedModel's embedding baseline and threshold, as ``ood_baseline.npz`` holds them; the
  training embeddings scaled to length 1 once, not for every image."""
  unit_embeddings: np.ndarray
  threshold: float
  neighbours: int

  @classmethod
  def load(cls, path: str) -> 'OODBaseline':
    with np.load(path) as saved:
      return cls(unit_rows(saved[BASELINE_EMBEDDINGS]), float(saved[OOD_THRESHOLD]),
                 int(saved[NEIGHBOURS]))

  def scores(self, embeddings: np.ndarray) -> np.ndarray:
    """The out-of-distribution score [N] of embeddings [N, D]."""
    return knn_distance(unit_rows(embeddings), self.unit_embeddings, self.neighbours)


class TFLiteModel:
  """The flatbuffer's two signatures in an interpreter: ``interpreter_class`` is ai-edge-litert's
  or TensorFlow's ``Interpreter`` (the same Python API)."""

  def __init__(self, model_content: bytes, interpreter_class, num_threads: int = 1):
    with native_logs_silenced():
      interpreter = interpreter_class(model_content=model_content, num_threads=num_threads)
      self._images = interpreter.get_signature_runner(IMAGES_SIGNATURE)
      self._pixels = interpreter.get_signature_runner(PIXELS_SIGNATURE)
    self._interpreter = interpreter  # the runners need it alive

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    """float32 [N, size, size, 3] in [-1, 1] (the Transform graph's output) -> [N, C]."""
    with native_logs_silenced():  # the first call creates the XNNPACK delegate, and says so
      return self._images(**{INPUT_NAME: images})[OUTPUT_NAME]

  def of_pixels(self, pixels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """One decoded upright image, uint8 [H, W, 3] -> (probabilities [C], embedding [D])."""
    with native_logs_silenced():
      out = self._pixels(**{PIXELS_INPUT: pixels[np.newaxis]})
    return out[OUTPUT_NAME][0], out[EMBEDDING_OUTPUT][0]
