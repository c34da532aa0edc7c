"""Checks a MobileNetV2 no_top weights file against the model it is meant for, in milliseconds.

Keras loads a weights file layer by layer, by position, only when the Trainer builds the model:
minutes into a run, a file for another width fails there with "Shape mismatch" and a file with the
ImageNet classifier ("include_top") with a layer-count error. This reads the file's HDF5 structure
with h5py instead (no model is built, no TensorFlow is imported):

* it must be HDF5 at all (Keras' legacy .h5 weights, or a whole model saved as .h5);
* it must hold MobileNetV2's first and last convolutions (``Conv1``, ``Conv_1``);
* ``alpha`` sets the number of filters: ``Conv1`` has ``_make_divisible(32 * alpha)`` and
  ``block_16_project`` ``_make_divisible(320 * alpha)`` (Keras' rule), so the file's width is read
  off those two kernels and compared;
* it must be no_top: no ``predictions`` (the 1000-class ImageNet classifier) layer.

The image size cannot be checked: convolution weights do not depend on it (a no_top file built at
224 px loads at 96 or 160 px alike) and the file does not record the size it was trained at.
"""
from typing import List, Optional, Tuple

# Keras' MobileNetV2 widths (the ones it has ImageNet weights for); others build but have none.
KNOWN_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
TOP_LAYER = 'predictions'
FIRST_CONV, LAST_CONV, LAST_PROJECT = 'Conv1', 'Conv_1', 'block_16_project'


class WeightsFileError(ValueError):
  """The weights file does not fit the model; the message says what it is and what was expected."""


def make_divisible(value: float, divisor: int = 8) -> int:
  """Keras' MobileNetV2 channel rounding (tf_keras.applications.mobilenet_v2._make_divisible)."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * value else rounded


def expected_filters(alpha: float) -> Tuple[int, int]:
  """(Conv1 filters, block_16_project filters) of a MobileNetV2 of width ``alpha``."""
  return make_divisible(32 * alpha), make_divisible(320 * alpha)


def _layer_names(weights_group) -> List[str]:
  return [n.decode('utf-8') if isinstance(n, bytes) else str(n)
          for n in weights_group.attrs.get('layer_names', [])]


def _kernel_shape(weights_group, layer: str) -> Tuple[int, ...]:
  group = weights_group[layer]
  names = [n.decode('utf-8') if isinstance(n, bytes) else str(n)
           for n in group.attrs.get('weight_names', [])]
  kernels = [n for n in names if 'kernel' in n.split('/')[-1]]
  if not kernels:
    raise WeightsFileError(f'layer {layer!r} holds no kernel')
  return tuple(group[kernels[0]].shape)


def inspect_file(path: str) -> Tuple[bool, int, int]:
  """(has the ImageNet classifier, Conv1 filters, block_16_project filters) of a MobileNetV2
  weights file; raises WeightsFileError when it is not one at all."""
  import h5py  # pylint: disable=g-import-not-at-top
  with open(path, 'rb') as f:
    head = f.read(64)
  if not h5py.is_hdf5(path):
    kind = ('an empty file' if not head else 'text' if all(32 <= b < 127 or b in b'\t\r\n' for b in head)
            else 'binary data')
    raise WeightsFileError(f'is not an HDF5 file (it is {kind}, starting {head[:16]!r})')
  try:
    with h5py.File(path, 'r') as h5:
      weights_group = h5['model_weights'] if 'model_weights' in h5 else h5  # a whole saved model
      layers = _layer_names(weights_group)
      missing = [name for name in (FIRST_CONV, LAST_PROJECT, LAST_CONV) if name not in layers]
      if missing:
        raise WeightsFileError(f'is an HDF5 file of {len(layers)} layers {layers[:3]} without '
                               f'MobileNetV2\'s {missing}')
      first = _kernel_shape(weights_group, FIRST_CONV)[-1]
      last = _kernel_shape(weights_group, LAST_PROJECT)[-1]
      top = TOP_LAYER in layers
  except (OSError, KeyError) as e:  # h5py: truncated or damaged
    raise WeightsFileError(f'is a damaged or truncated HDF5 file ({str(e).splitlines()[0]})') from e
  return top, first, last


def describe(top: bool, first: int, last: int) -> str:
  """E.g. 'MobileNetV2 no_top file of alpha 0.35 (Conv1 has 16 filters, block_16_project 112)'."""
  widths = [f'{a:g}' for a in KNOWN_ALPHAS if expected_filters(a) == (first, last)]
  return (f'MobileNetV2 {"include_top (with the ImageNet classifier)" if top else "no_top"} file '
          f'of alpha {widths[0] if widths else "unknown"} ({FIRST_CONV} has {first} filters, '
          f'{LAST_PROJECT} {last})')


def alpha_of(path: str) -> Optional[float]:
  """The width of a MobileNetV2 weights file, so that --weights alone picks --alpha; None when the
  file is not one of a known width (``check`` then says what it is)."""
  try:
    _, first, last = inspect_file(path)
  except WeightsFileError:
    return None
  return next((alpha for alpha in KNOWN_ALPHAS if expected_filters(alpha) == (first, last)), None)


def check(path: str, alpha: float) -> None:
  """Raises WeightsFileError with one line unless the weights option ``path`` is 'imagenet',
  'none', a remote file (read by the Trainer only) or a MobileNetV2 no_top weights file of width
  ``alpha``."""
  if path == 'imagenet' or path.lower() == 'none' or '://' in path:
    return
  expected = f'a MobileNetV2 no_top weights file (Keras .h5) for --alpha {alpha:g}'
  try:
    top, first, last = inspect_file(path)
  except WeightsFileError as e:
    raise WeightsFileError(f'--weights {path} {e}; expected {expected}') from e
  want_first, want_last = expected_filters(alpha)
  if top or (first, last) != (want_first, want_last):
    raise WeightsFileError(
        f'--weights {path} is a {describe(top, first, last)}; expected {expected} ({FIRST_CONV} '
        f'with {want_first} filters, {LAST_PROJECT} {want_last}, no {TOP_LAYER!r} layer)')
