"""What an image file is: its size, format, colour mode and tones, or why it is not a usable image.

The ExampleGen records these properties beside the bytes so that TFDV can describe the images;
``predict.py`` runs the same check before it classifies a file, and its TFLite engine decodes with
``upright_pixels``. Importing this module does not import TensorFlow (only ``inspect_image`` runs
it), so that predict.py's TFLite engine starts in a fraction of a second.
"""
import contextlib
import io
import re
from typing import Iterator, NamedTuple, Tuple

from PIL import Image
from PIL import ImageOps
from PIL import ImageStat
import numpy as np

# Formats that both Pillow (here) and tf.io.decode_image (in the Transform graph) decode.
SUPPORTED_FORMATS = ('jpeg', 'png', 'gif', 'bmp')
# Tone statistics are averages, within a grey level of the full image's on a thumbnail this small,
# and JPEG's DCT scaling (Image.draft) makes decoding one several times cheaper than a full decode.
TONE_THUMBNAIL_SIDE = 128


class UnreadableImageError(ValueError):
  """A file that is not a decodable image of a supported format."""


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
def opened_image(data: bytes) -> Iterator[Image.Image]:
  """``data`` opened by Pillow, of a supported format; UnreadableImageError otherwise, also for a
  file that fails while the block decodes it (a truncated JPEG)."""
  if not data:
    raise UnreadableImageError('empty file')
  try:
    with Image.open(io.BytesIO(data)) as image:
      image_format = (image.format or '').lower()
      if image_format not in SUPPORTED_FORMATS:
        raise UnreadableImageError(f'unsupported image format {image_format or "unknown"!r}')
      yield image
  except UnreadableImageError:
    raise
  except Image.UnidentifiedImageError as e:
    raise UnreadableImageError('not a decodable image: unknown file type') from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(f'not a decodable image: {e}') from e


def upright_pixels(data: bytes) -> np.ndarray:
  """The Transform graph's decode without TensorFlow: uint8 RGB [height, width, 3], a JPEG turned
  upright by its EXIF orientation (Pillow's exif_transpose, which exif_orientation's tests hold the
  graph to; like the graph, other formats' rare EXIF chunks are not read)."""
  with opened_image(data) as image:
    if image.format == 'JPEG':
      image = ImageOps.exif_transpose(image)
    return np.asarray(image.convert('RGB'))


def inspect_image(data: bytes) -> ImageProperties:
  """Returns the properties of an image that the Transform graph will decode.

  Pillow reads the header (format, size, mode) and a thumbnail for the tone statistics;
  TensorFlow's own decoder, the one the Transform graph runs, decodes the whole image, so whatever
  passes here also decodes in training and serving. Raises UnreadableImageError otherwise.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from components.modules import exif_orientation
  with opened_image(data) as image:
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
