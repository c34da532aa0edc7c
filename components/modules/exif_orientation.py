"""EXIF orientation of JPEG files, read and applied with TensorFlow ops only.

Phones store many photos with their pixels sideways and an EXIF ``Orientation`` tag (0x0112) that
every viewer applies. ``tf.io.decode_image`` ignores it, so the Transform graph applies it here; the
ops serialize into the Transform graph and so into both serving signatures (no tf.py_function).

The parser walks the JPEG's APPn and COM segments from SOI (JFIF and Exif put them there, before
any table or frame; the walk stops at the first other marker) to the first APP1 segment that
starts with ``Exif\\0\\0``, reads the TIFF header's byte order and IFD0 offset, and looks up the
Orientation entry of IFD0.
Every read is bounds-checked and every loop bounded, so a truncated or garbage file, a file without
EXIF, or any other format (PNG, GIF, BMP: their rare EXIF chunks are not read) gets orientation 1,
the pixels as stored.
"""
import tensorflow as tf

ORIENTATION_TAG = 0x0112
_SHORT = 3  # TIFF field type of the Orientation value
# Bounds that keep the graph finite on any input; real files need 1-3 segments and ~10-20 entries.
MAX_SEGMENTS = 32
MAX_IFD_ENTRIES = 128
_EXIF_HEADER = (0x45, 0x78, 0x69, 0x66, 0, 0)  # b'Exif\0\0'


def read_bytes(data: tf.Tensor, size: tf.Tensor, position: tf.Tensor, length: int) -> tf.Tensor:
  """``length`` bytes of ``data`` at ``position`` as int64, zero-padded past the end of the file."""
  position = tf.clip_by_value(position, 0, size)
  chunk = tf.io.decode_raw(tf.strings.substr(data, position, tf.constant(length, tf.int64)),
                           tf.uint8)
  padded = tf.pad(tf.cast(chunk, tf.int64), [[0, length - tf.shape(chunk)[0]]])
  return tf.ensure_shape(padded, [length])


def _find_exif(data: tf.Tensor, size: tf.Tensor):
  """(start of the TIFF header, end of its APP1 segment), or (-1, -1) when there is none."""

  def step(position, tiff_start, segment_end):
    header = read_bytes(data, size, position, 10)
    marker = header[1]
    length = header[2] * 256 + header[3]
    readable = (position + 4 <= size) & tf.equal(header[0], 0xFF)
    is_fill = tf.equal(marker, 0xFF)
    is_app_or_comment = ((marker >= 0xE0) & (marker <= 0xEF)) | tf.equal(marker, 0xFE)
    walks_on = readable & (is_fill | (is_app_or_comment & (length >= 2)))
    found = (walks_on & tf.equal(marker, 0xE1) & (position + 10 <= size)
             & tf.reduce_all(tf.equal(header[4:10], _EXIF_HEADER)))
    next_position = tf.where(is_fill, position + 1, position + 2 + length)
    return (tf.where(walks_on & ~found, next_position, minus_one),
            tf.where(found, position + 10, tiff_start),
            tf.where(found, position + 2 + length, segment_end))

  minus_one = tf.constant(-1, tf.int64)
  is_jpeg = tf.reduce_all(tf.equal(read_bytes(data, size, tf.constant(0, tf.int64), 2),
                                   [0xFF, 0xD8]))
  _, tiff_start, segment_end = tf.while_loop(
      lambda position, *_: position >= 0, step,
      (tf.where(is_jpeg, tf.constant(2, tf.int64), minus_one), minus_one, minus_one),
      maximum_iterations=MAX_SEGMENTS)
  return tiff_start, segment_end


def _ifd0_orientation(image_bytes: tf.Tensor, size: tf.Tensor, tiff_start: tf.Tensor,
                      segment_end: tf.Tensor) -> tf.Tensor:
  """The Orientation entry of the IFD0 of the TIFF block at ``tiff_start``; 1 if none is valid."""
  header = read_bytes(image_bytes, size, tiff_start, 8)
  little_endian = tf.reduce_all(tf.equal(header[:4], [0x49, 0x49, 0x2A, 0]))
  big_endian = tf.reduce_all(tf.equal(header[:4], [0x4D, 0x4D, 0, 0x2A]))

  def number(bytes_: tf.Tensor) -> tf.Tensor:
    """Unsigned integer of the last axis's bytes, in the file's byte order."""
    weights = [256**k for k in range(bytes_.shape[-1])]
    return tf.where(little_endian, tf.reduce_sum(bytes_ * weights, -1),
                    tf.reduce_sum(bytes_ * weights[::-1], -1))

  ifd_start = tiff_start + number(header[4:8])
  entry_count = number(read_bytes(image_bytes, size, ifd_start, 2))
  entries = tf.reshape(read_bytes(image_bytes, size, ifd_start + 2, 12 * MAX_IFD_ENTRIES),
                       [MAX_IFD_ENTRIES, 12])
  is_orientation = (
      (tf.range(MAX_IFD_ENTRIES, dtype=tf.int64) < entry_count)
      & tf.equal(number(entries[:, 0:2]), ORIENTATION_TAG)
      & tf.equal(number(entries[:, 2:4]), _SHORT)
      & tf.equal(number(entries[:, 4:8]), 1))
  values = tf.boolean_mask(number(entries[:, 8:10]), is_orientation)
  value = tf.concat([values, [1]], 0)[0]
  # An IFD that runs past its segment or the file is corrupt: its entries are not trusted.
  ifd_fits = ifd_start + 2 + 12 * entry_count <= tf.minimum(segment_end, size)
  valid = (little_endian | big_endian) & ifd_fits & (value >= 1) & (value <= 8)
  return tf.cast(tf.where(valid, value, 1), tf.int32)


def jpeg_orientation(image_bytes: tf.Tensor) -> tf.Tensor:
  """EXIF Orientation (1-8) of one encoded image (a scalar string); 1 when absent or unreadable."""
  size = tf.cast(tf.strings.length(image_bytes), tf.int64)
  tiff_start, segment_end = _find_exif(image_bytes, size)
  return tf.cond(tiff_start >= 0,
                 lambda: _ifd0_orientation(image_bytes, size, tiff_start, segment_end),
                 lambda: tf.constant(1, tf.int32))


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
  """An [H, W, C] image as stored -> upright, as viewers show it (as PIL.ImageOps.exif_transpose).

  Each of the eight orientations is an optional transpose, then an optional left-right and an
  optional up-down flip: 6 (turn 90 clockwise) is transpose + left-right, 8 transpose + up-down.
  """
  image = tf.cond(orientation >= 5, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
  flip_left_right = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
  flip_up_down = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
  image = tf.cond(flip_left_right, lambda: tf.reverse(image, [1]), lambda: image)
  return tf.cond(flip_up_down, lambda: tf.reverse(image, [0]), lambda: image)


def decode_upright(image_bytes: tf.Tensor, channels: int = 3) -> tf.Tensor:
  """Decodes one encoded image (JPEG, PNG, GIF, BMP; first frame) and turns it upright.

  JPEGs with libjpeg's accurate integer DCT, not TensorFlow's default fast one: Pillow decodes
  them so, to the same pixels, and predict.py's TFLite engine decodes with Pillow. With the fast
  DCT every validation photo differed by up to 5 grey levels and 3 of 1 000 changed class
  (benchmarks/results/predict_cold_start.md).
  """
  image = tf.cond(
      tf.io.is_jpeg(image_bytes),
      lambda: tf.io.decode_jpeg(image_bytes, channels=channels, dct_method='INTEGER_ACCURATE'),
      lambda: tf.io.decode_image(image_bytes, channels=channels, expand_animations=False))
  image.set_shape([None, None, channels])
  return apply_orientation(image, jpeg_orientation(image_bytes))


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _orientation_of(image_bytes: tf.Tensor) -> tf.Tensor:
  return jpeg_orientation(image_bytes)


def swaps_sides(data: bytes) -> bool:
  """Whether ``data`` is stored sideways (orientations 5-8): upright height = stored width.

  For Python code that reads the stored size with another library (Pillow in ImageExampleGen), so
  that it reports the size the Transform graph sees.
  """
  return int(_orientation_of(tf.constant(data))) >= 5
