"""The image budget's limits and messages, without TensorFlow: what image_budget.py checks in the
graph, and what predict.py's TFLite engine checks with Pillow's header size (it never loads
TensorFlow). One definition of the reasons, for Python (str.format) and the graph.
"""
from typing import Any, Dict, Mapping, NamedTuple

TOO_LARGE_BYTES = 'too large: {} bytes (limit {})'
TOO_LARGE_PIXELS = 'too large: {}×{} pixels (limit {})'
TOO_LARGE_FRAMES = 'too large: {} frames of up to {}×{} pixels, {} pixels in all (limit {})'
TOO_LONG_HEADER = 'too large: more than {} {} blocks before its size is known'
# Names of the limits: constants in the Transform graph, variables of the served model, keys of
# the TFLite model's input contract.
MAX_PIXELS_NAME = 'max_image_pixels'
MAX_BYTES_NAME = 'max_image_bytes'
SAVED_ATTRIBUTES = (MAX_PIXELS_NAME, MAX_BYTES_NAME)


class ImageBudget(NamedTuple):
  """The largest image accepted: the pixels its header declares, the bytes of its file."""
  max_pixels: int
  max_bytes: int


def as_settings(budget: ImageBudget) -> Dict[str, int]:
  """``budget`` as the settings of PipelineConfig that hold it (custom_config of the Transform and
  of ImageExampleGen's executor)."""
  return dict(zip(SAVED_ATTRIBUTES, budget))


def from_settings(settings: Mapping[str, Any]) -> ImageBudget:
  """The budget of ``as_settings``' keys (numbers: a Struct proto holds them as floats)."""
  return ImageBudget(*(int(settings[name]) for name in SAVED_ATTRIBUTES))


def file_size_reason(file_size: int, budget: ImageBudget) -> str:
  """Why a file of ``file_size`` bytes is over ``budget``, before it is read; '' when within."""
  return TOO_LARGE_BYTES.format(file_size, budget.max_bytes) if file_size > budget.max_bytes else ''
