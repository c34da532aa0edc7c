"""The inputs of the data-quality checks: one row per image, and what they share (its spectrum)."""
import dataclasses
import functools
import hashlib
from typing import Sequence, Tuple

import numpy as np
import scipy.linalg

# Principal directions that ImageSet.spectrum keeps: the near-duplicate descriptors flatten the top
# checks.DESCRIPTOR_COMPONENTS (64) and the label probe reads probe.PROBE_COMPONENTS (256).
SPECTRUM_COMPONENTS = 256


def content_hash(encoded: bytes) -> str:
  """sha256 of an image's encoded bytes: equal for byte-identical files, whatever their names."""
  return hashlib.sha256(encoded).hexdigest()


@dataclasses.dataclass(frozen=True)
class ImageSet:
  """The images of every split, as the checks read them.

  paths: relative paths (what the report names); splits: 'train', 'eval', 'test'...; labels: class
  ids (negative: unlabelled); hashes: ``content_hash`` of each file; embeddings [N, V, D] float32,
  view 0 the image as is, view 1 (when V > 1) its mirror image, then any other views.
  """
  paths: Sequence[str]
  splits: Sequence[str]
  labels: np.ndarray
  class_names: Sequence[str]
  hashes: Sequence[str]
  embeddings: np.ndarray

  def __post_init__(self):
    n = len(self.paths)
    if not len(self.splits) == len(self.labels) == len(self.hashes) == n:
      raise ValueError('paths, splits, labels and hashes must have one entry per image')
    if self.embeddings.ndim != 3 or len(self.embeddings) != n:
      raise ValueError(f'embeddings must be [N={n}, views, dims], got {self.embeddings.shape}')

  @functools.cached_property
  def spectrum(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean [D], variances [K] largest first, directions [D, K] as columns) of views 0 and 1 of
    every image, the top K = ``SPECTRUM_COMPONENTS``: computed once, read by ``descriptors`` and
    the label probe. Only the top K: 0.4-0.9 s against 0.9-2 s for all 1280 (2 CPUs, shared)."""
    flat = self.embeddings[:, :2].reshape(-1, self.embeddings.shape[-1])
    mean = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
    covariance = np.zeros((flat.shape[1],) * 2)
    for start in range(0, len(flat), 8192):  # centred a chunk at a time, not N x D at once
      chunk = flat[start:start + 8192] - mean
      covariance += chunk.T @ chunk
    dims = len(covariance)
    variances, directions = scipy.linalg.eigh(
        covariance / max(len(flat), 1), subset_by_index=[max(0, dims - SPECTRUM_COMPONENTS),
                                                         dims - 1], driver='evr')
    return mean, variances[::-1].copy(), directions[:, ::-1].astype(np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
  """Each vector (last axis) over its length, float32: cosine similarity as a dot product."""
  return (vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)).astype(
      np.float32)
