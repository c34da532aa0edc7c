"""What an image file is: its size, format, colour mode and tones, or why it is not a usable image.

The ExampleGen records these properties beside the bytes so that TFDV can describe the images;
``predict.py`` runs the same check before it classifies a file, and its TFLite engine decodes with
``upright_pixels``. A file over the image budget (components/modules/image_budget.py) is refused
before anything decodes it. Importing this module does not import TensorFlow (only
``inspect_image`` runs it), so that predict.py's TFLite engine starts in a fraction of a second.
"""
import contextlib
import io
import re
from typing import Iterator, NamedTuple, Optional, Tuple

from PIL import Image
from PIL import ImageOps
from PIL import ImageStat
import numpy as np

from components.modules import image_limits

# Formats that both Pillow (here) and tf.io.decode_image (in the Transform graph) decode.
SUPPORTED_FORMATS = ('jpeg', 'png', 'gif', 'bmp')
# Tone statistics are averages, within a grey level of the full image's on a thumbnail this small,
# and JPEG's DCT scaling (Image.draft) makes decoding one several times cheaper than a full decode.
TONE_THUMBNAIL_SIDE = 128


class UnreadableImageError(ValueError):
  """A file that is not a decodable image of a supported format."""


class TooLargeError(UnreadableImageError):
  """An image over the budget: 'too large: 20000×20000 pixels (limit 200000000)'."""


class ImageProperties(NamedTuple):
  """What the ExampleGen records about an image besides its bytes, so that TFDV can describe it."""
  height: int
  width: int
  format: str
  color_mode: str  # Pillow's mode of the file: RGB, L (grey), RGBA, CMYK, P (palette), ...
  mean_brightness: float  # mean grey level (ITU-R 601 luma), 0-255
  contrast: float  # standard deviation of the grey levels
  mean_saturation: float  # mean HSV saturation, 0 (grey) to 1 (pure colours)


def _tone_statistics(image: Image.Image) -> Tuple[float, float, float]:
  """(mean brightness, contrast, mean saturation) of a thumbnail of ``image`` in RGB."""
  image.draft('RGB', (TONE_THUMBNAIL_SIDE, TONE_THUMBNAIL_SIDE))
  rgb = image.convert('RGB')
  rgb.thumbnail((TONE_THUMBNAIL_SIDE, TONE_THUMBNAIL_SIDE))
  grey = ImageStat.Stat(rgb.convert('L'))
  saturation = ImageStat.Stat(rgb.convert('HSV').getchannel('S'))
  return grey.mean[0], grey.stddev[0], saturation.mean[0] / 255.0


@contextlib.contextmanager
def opened_image(data: bytes,
                 budget: Optional[image_limits.ImageBudget] = None) -> Iterator[Image.Image]:
  """``data`` opened by Pillow, of a supported format and within ``budget`` (None: examples that
  ImageExampleGen already admitted) by its file size and the size its header declares (nothing
  decoded yet); TooLargeError or UnreadableImageError otherwise, also for a file that fails while
  the block decodes it (a truncated JPEG)."""
  if not data:
    raise UnreadableImageError('empty file')
  budget = budget or image_limits.ImageBudget(max_pixels=float('inf'), max_bytes=float('inf'))
  if len(data) > budget.max_bytes:
    raise TooLargeError(image_limits.TOO_LARGE_BYTES.format(len(data), budget.max_bytes))
  # The budget decides, not Pillow's own bomb limit (179 Mpx, under a 200 Mpx phone photo): the
  # size Pillow reads lazily from the header is checked against the budget before any decoding.
  Image.MAX_IMAGE_PIXELS = None
  try:
    with Image.open(io.BytesIO(data)) as image:
      image_format = (image.format or '').lower()
      if image_format not in SUPPORTED_FORMATS:
        raise UnreadableImageError(f'unsupported image format {image_format or "unknown"!r}')
      # Pillow draws a GIF on its logical screen, which it reads here; TensorFlow's decoder does
      # not use it (the graph's check reads its frames), so a GIF may be refused here only.
      if image.width * image.height > budget.max_pixels:
        raise TooLargeError(image_limits.TOO_LARGE_PIXELS.format(
            image.width, image.height, budget.max_pixels))
      yield image
  except UnreadableImageError:
    raise
  except Image.UnidentifiedImageError as e:
    raise UnreadableImageError('not a decodable image: unknown file type') from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(f'not a decodable image: {e}') from e


def upright_pixels(data: bytes,
                   budget: Optional[image_limits.ImageBudget] = None) -> np.ndarray:
  """The Transform graph's decode without TensorFlow: uint8 RGB [height, width, 3], a JPEG turned
  upright by its EXIF orientation (Pillow's exif_transpose, which exif_orientation's tests hold the
  graph to; like the graph, other formats' rare EXIF chunks are not read)."""
  with opened_image(data, budget) as image:
    if image.format == 'JPEG':
      image = ImageOps.exif_transpose(image)
    return np.asarray(image.convert('RGB'))


def inspect_image(data: bytes, budget: image_limits.ImageBudget) -> ImageProperties:
  """Returns the properties of an image that the Transform graph will decode.

  The Transform graph's own budget check (the same graph) reads the size from the header first and
  raises TooLargeError for an image over ``budget``. Then Pillow reads the header (format, size,
  mode) and a thumbnail for the tone statistics; TensorFlow's own decoder, the one the Transform
  graph runs, decodes the whole image, so whatever passes here also decodes in training and
  serving. Raises UnreadableImageError otherwise.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from components.modules import exif_orientation
  from components.modules import image_budget
  if data:
    reason = image_budget.reason_of(data, budget)
    if reason:
      raise TooLargeError(reason)
  with opened_image(data, budget) as image:
    image_format = image.format.lower()
    height, width, color_mode = image.height, image.width, image.mode
    tones = _tone_statistics(image)
  try:
    tf.io.decode_image(data, channels=3, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
    # Drop TensorFlow's op and device decorations: '{{function_node ...}} <what> [Op:DecodeImage]'.
    message = re.sub(r'\{\{.*?\}\}\s*|\s*\[Op:\w+\]', '', e.message.splitlines()[0])
    raise UnreadableImageError(f'not a decodable image: {message}') from e
  if exif_orientation.swaps_sides(data):  # the upright size, the one the Transform graph sees
    height, width = width, height
  return ImageProperties(height, width, image_format, color_mode, *tones)
