"""The pixel and byte budget of encoded images, checked from their headers before they are decoded.

A PNG of 20000 x 20000 grey pixels is 388 KB and a JPEG header of 300 bytes can declare 23170 x
23170 pixels: TensorFlow's decoder allocates 3 bytes per pixel for either (1.2-1.6 GB) before it
reads one. The Transform graph (so training, the Evaluator and every serving signature),
ImageExampleGen, predict.py and validate.py refuse a file over ``max_bytes`` bytes, or whose header
declares over ``max_pixels`` pixels, before it is decoded.

The size is what TensorFlow's decoder (``tf.io.decode_image``, TF 2.16) allocates, read with
TensorFlow string ops (a batch at a time), so that the check serializes into the Transform graph:

* JPEG: the first SOFn frame header (0xC0-0xCF but DHT 0xC4, JPG 0xC8 and DAC 0xCC), its markers
  found as libjpeg finds them: bytes before a marker skipped, 0xFF fill, RSTn and TEM standalone.
* PNG: IHDR, the first chunk.
* GIF: the decoder reads every frame (giflib's DGifSlurp, a byte per pixel) even when it returns
  the first, on a canvas of the largest frame width x height (not the logical screen size). Its
  pixels are the larger of that canvas and the sum of the frames' areas.
* BMP: width and height as the decoder reads them, int32 at bytes 18 and 22 (a negative height is
  a top-down image).

Other files are not decoded by TensorFlow: they pass here, and the decoder refuses them as before.
Every read is bounds-checked and every loop bounded (as in exif_orientation). A JPEG whose frame
header is not found within ``MAX_JPEG_STEPS`` markers, or a GIF not walked to its end within
``MAX_GIF_STEPS`` steps, is refused: the decoder might still find a size there. Real photos need
5-20 JPEG steps, and a GIF 4 per frame (so up to 4096 frames).
"""
from typing import NamedTuple, Optional

import tensorflow as tf

# The limits and their messages, shared with the checks that run without TensorFlow.
from components.modules.image_limits import (  # pylint: disable=unused-import
    MAX_BYTES_NAME, MAX_PIXELS_NAME, SAVED_ATTRIBUTES, TOO_LARGE_BYTES, TOO_LARGE_FRAMES,
    TOO_LARGE_PIXELS, TOO_LONG_HEADER, ImageBudget, as_settings, file_size_reason, from_settings)

MAX_JPEG_STEPS = 1024
MAX_GIF_STEPS = 16384

_UNKNOWN, _JPEG, _PNG, _GIF, _BMP = range(5)
# The first bytes by which the decoder tells the formats apart: FF D8 FF, PNG's signature, GIF8, BM.
_SIGNATURES = ((_JPEG, (0xFF, 0xD8, 0xFF)), (_PNG, (0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A)),
               (_GIF, (0x47, 0x49, 0x46, 0x38)), (_BMP, (0x42, 0x4D)))
_IHDR = (0x49, 0x48, 0x44, 0x52)
_SOF_MARKERS = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
_JPEG_WINDOW = 512  # bytes searched for the next marker per step
_GIF_WINDOW = 64  # 255-byte sub-blocks skipped per step (16 KB)


class HeaderSizes(NamedTuple):
  """What the decoder would allocate for each image of a batch, from the headers; [N] tensors."""
  width: tf.Tensor
  height: tf.Tensor
  pixels: tf.Tensor  # width x height; for a GIF, the larger of that and the frames' areas summed
  frames: tf.Tensor
  known: tf.Tensor  # False: not a format TensorFlow decodes, or no size in it (the decoder decides)
  exhausted: tf.Tensor  # True: the size was not found within the bounded walk: refused
  format: tf.Tensor


def _read(data: tf.Tensor, size: tf.Tensor, position: tf.Tensor, length: int) -> tf.Tensor:
  """[N, length] int64: ``length`` bytes of each of ``data`` [N] at ``position``, 0 past its end."""
  position = tf.clip_by_value(position, 0, size)
  chunk = tf.strings.substr(data, position,
                            tf.fill(tf.shape(position), tf.constant(length, tf.int64)))
  return tf.cast(tf.io.decode_raw(chunk, tf.uint8, fixed_length=length), tf.int64)


def _number(chunk: tf.Tensor, big_endian: bool) -> tf.Tensor:
  """Unsigned integers of the last axis's bytes."""
  weights = [256**k for k in range(chunk.shape[-1])]
  return tf.reduce_sum(chunk * (weights[::-1] if big_endian else weights), -1)


def _first(mask: tf.Tensor) -> tf.Tensor:
  """Index of the first True along the last axis; its length where there is none."""
  length = tf.shape(mask, out_type=tf.int64)[-1]
  return tf.minimum(tf.reduce_min(tf.where(mask, tf.range(length), length), axis=-1), length)


def _jpeg_sizes(data: tf.Tensor, size: tf.Tensor):
  """(width, height, found, exhausted) [N] from each JPEG's first SOFn."""
  zero = tf.zeros_like(size)
  running, found, failed, two = (tf.constant(n, tf.int64) for n in range(4))

  def step(position, width, height, state):
    window = _read(data, size, position, _JPEG_WINDOW + 10)
    # A marker: 0xFF, then a code that is neither fill (0xFF) nor a stuffed zero.
    codes = window[:, 1:_JPEG_WINDOW + 1]
    offset = _first(tf.equal(window[:, :_JPEG_WINDOW], 0xFF) & tf.not_equal(codes, 0xFF)
                    & tf.not_equal(codes, 0))
    header = tf.gather(window, offset[:, None] + tf.range(9, dtype=tf.int64), batch_dims=1)
    code, marker = header[:, 1], position + offset
    in_window = offset < _JPEG_WINDOW
    is_sof = tf.reduce_any(tf.equal(code[:, None], _SOF_MARKERS), -1)
    standalone = ((code >= 0xD0) & (code <= 0xD7)) | tf.equal(code, 0x01)
    # libjpeg fails on SOS or EOI before a frame header, on a second SOI and at the end of the file.
    fails = tf.reduce_any(tf.equal(code[:, None], [0xDA, 0xD9, 0xD8]), -1)
    sof = in_window & is_sof & (marker + 9 <= size)
    ends = (position >= size) | (in_window & (fails | (is_sof & ~sof)))
    length = tf.maximum(header[:, 2] * 256 + header[:, 3], 2)
    on = tf.equal(state, running)
    return (tf.where(on, tf.where(in_window, marker + tf.where(standalone, two, 2 + length),
                                  position + _JPEG_WINDOW), position),
            tf.where(on & sof, _number(header[:, 7:9], True), width),
            tf.where(on & sof, _number(header[:, 5:7], True), height),
            tf.where(on, tf.where(sof, found, tf.where(ends, failed, running)), state))

  _, width, height, state = tf.while_loop(
      lambda *loop: tf.reduce_any(tf.equal(loop[-1], running)), step,
      (zero + 2, zero, zero, zero + running), maximum_iterations=MAX_JPEG_STEPS)
  return width, height, tf.equal(state, found), tf.equal(state, running)


def _gif_sizes(data: tf.Tensor, size: tf.Tensor):
  """(largest frame width, height, frames, frames' areas summed, exhausted) [N], walked as giflib
  does: after the screen descriptor and its colour table, records (image 0x2C: descriptor,
  colour table, LZW code size, sub-blocks; extension 0x21: label, sub-blocks; trailer 0x3B)."""
  zero = tf.zeros_like(size)
  screen = _read(data, size, zero, 13)
  colour_table = 3 * tf.bitwise.left_shift(zero + 2, screen[:, 10] % 8)
  start = 13 + tf.where(screen[:, 10] >= 128, colour_table, 0)

  def step(position, in_blocks, width, height, frames, area, done):
    record = _read(data, size, position, 10)
    is_image = ~in_blocks & tf.equal(record[:, 0], 0x2C) & (position + 10 <= size)
    is_extension = ~in_blocks & tf.equal(record[:, 0], 0x21)
    frame_width, frame_height = _number(record[:, 5:7], False), _number(record[:, 7:9], False)
    local_table = tf.where(record[:, 9] >= 128,
                           3 * tf.bitwise.left_shift(zero + 2, record[:, 9] % 8), 0)
    # In a chain of sub-blocks: skip the 255-byte ones (all but the chain's last, as encoders
    # write them) _GIF_WINDOW at a time, then the first shorter one and, when it is next, the
    # length 0 that ends the chain.
    lengths = tf.reshape(_read(data, size, position, 256 * _GIF_WINDOW), [-1, _GIF_WINDOW, 256])
    full = _first(tf.not_equal(lengths[:, :, 0], 255))
    block = position + 256 * full
    block_length = tf.gather(lengths[:, :, 0], tf.minimum(full, _GIF_WINDOW - 1), batch_dims=1)
    short = full < _GIF_WINDOW
    after = block + 1 + block_length
    last = tf.equal(block_length, 0) | tf.equal(_read(data, size, after, 1)[:, 0], 0)
    chain_ends = in_blocks & short & last
    on = ~done
    image = on & is_image
    return (
        tf.where(on, tf.where(is_image, position + 11 + local_table,  # + LZW code size
                              tf.where(is_extension, position + 2,  # + label
                                       tf.where(short, tf.where(chain_ends & (block_length > 0),
                                                                after + 1, after), block))),
                 position),
        tf.where(on, (is_image | is_extension | in_blocks) & ~chain_ends, in_blocks),
        tf.where(image, tf.maximum(width, frame_width), width),
        tf.where(image, tf.maximum(height, frame_height), height),
        frames + tf.cast(image, tf.int64),
        area + tf.where(image, frame_width * frame_height, 0),
        done | ~(in_blocks | is_image | is_extension) | (position >= size))

  _, _, width, height, frames, area, done = tf.while_loop(
      lambda *loop: ~tf.reduce_all(loop[-1]), step,
      (start, tf.zeros_like(size, tf.bool), zero, zero, zero, zero, tf.zeros_like(size, tf.bool)),
      maximum_iterations=MAX_GIF_STEPS)
  return width, height, frames, area, ~done


def _of_format(image_bytes: tf.Tensor, formats: tf.Tensor, image_format: int, sizes_fn):
  """``sizes_fn`` on the images of ``image_format`` only, its results scattered back to [N]."""
  where = tf.where(tf.equal(formats, image_format))
  subset = tf.gather(image_bytes, where[:, 0])
  results = sizes_fn(subset, tf.cast(tf.strings.length(subset), tf.int64))
  shape = tf.shape(formats, out_type=tf.int64)
  scatter = lambda result: tf.scatter_nd(where, result, shape)
  return [tf.cast(scatter(tf.cast(result, tf.int64)), tf.bool) if result.dtype == tf.bool
          else scatter(result) for result in results]


def header_sizes(image_bytes: tf.Tensor, skip: Optional[tf.Tensor] = None) -> HeaderSizes:
  """The sizes each of the encoded images ``image_bytes`` [N] declares, for the format TensorFlow
  decodes it as (told by its first bytes, as ``tf.io.decode_image`` does); images where ``skip``
  [N] is True are not read."""
  size = tf.cast(tf.strings.length(image_bytes), tf.int64)
  head = _read(image_bytes, size, tf.zeros_like(size), 26)
  formats = tf.zeros_like(size)
  for image_format, signature in reversed(_SIGNATURES):
    formats = tf.where(tf.reduce_all(tf.equal(head[:, :len(signature)], signature), -1),
                       tf.constant(image_format, tf.int64), formats)
  if skip is not None:
    formats = tf.where(skip, tf.constant(_UNKNOWN, tf.int64), formats)
  is_format = lambda image_format: tf.equal(formats, image_format)
  one = tf.ones_like(size)

  jpeg_width, jpeg_height, jpeg_found, jpeg_exhausted = _of_format(
      image_bytes, formats, _JPEG, _jpeg_sizes)
  gif_width, gif_height, gif_frames, gif_area, gif_exhausted = _of_format(
      image_bytes, formats, _GIF, _gif_sizes)
  png_width, png_height = _number(head[:, 16:20], True), _number(head[:, 20:24], True)
  png_known = tf.reduce_all(tf.equal(head[:, 12:16], _IHDR), -1) & (size >= 24)
  bmp_width, bmp_height = (tf.abs(tf.bitwise.bitwise_xor(_number(head[:, k:k + 4], False), 2**31)
                                  - 2**31) for k in (18, 22))  # int32
  select = lambda jpeg, png, gif, bmp, other: tf.where(
      is_format(_JPEG), jpeg, tf.where(is_format(_PNG), png, tf.where(
          is_format(_GIF), gif, tf.where(is_format(_BMP), bmp, other))))
  width = select(jpeg_width, png_width, gif_width, bmp_width, 0)
  height = select(jpeg_height, png_height, gif_height, bmp_height, 0)
  return HeaderSizes(
      width=width, height=height,
      pixels=tf.where(is_format(_GIF), tf.maximum(width * height, gif_area), width * height),
      frames=select(one, one, gif_frames, one, 0),
      known=select(jpeg_found, png_known, gif_frames > 0, size >= 26, False),
      exhausted=(is_format(_JPEG) & jpeg_exhausted) | (is_format(_GIF) & gif_exhausted),
      format=formats)


def _format(template: str, *values) -> tf.Tensor:
  """``template.format(*values)`` for [N] tensors (or numbers) of values, element by element."""
  pieces = template.split('{}')
  parts = [pieces[0]]
  for value, piece in zip(values, pieces[1:]):
    parts += [str(value) if isinstance(value, (int, str)) else tf.strings.as_string(value), piece]
  return tf.strings.join(parts)


def too_large_reasons(image_bytes: tf.Tensor, budget: ImageBudget) -> tf.Tensor:
  """Why each of the encoded images ``image_bytes`` [N] is over ``budget`` (tensors or numbers),
  e.g. 'too large: 20000×20000 pixels (limit 200000000)'; '' for those within it."""
  max_pixels = tf.convert_to_tensor(budget.max_pixels, tf.int64)  # numbers, constants or variables
  max_bytes = tf.convert_to_tensor(budget.max_bytes, tf.int64)
  length = tf.cast(tf.strings.length(image_bytes), tf.int64)
  too_long = length > max_bytes
  sizes = header_sizes(image_bytes, skip=too_long)  # a file over the byte budget is not walked
  too_many = sizes.known & (sizes.pixels > max_pixels)
  kind = tf.where(tf.equal(sizes.format, _GIF), 'GIF', 'JPEG')
  return tf.where(too_long, _format(TOO_LARGE_BYTES, length, max_bytes), tf.where(
      sizes.exhausted, _format(TOO_LONG_HEADER, tf.where(tf.equal(sizes.format, _GIF),
                                                         MAX_GIF_STEPS, MAX_JPEG_STEPS), kind),
      tf.where(too_many & (sizes.frames > 1), _format(
          TOO_LARGE_FRAMES, sizes.frames, sizes.width, sizes.height, sizes.pixels, max_pixels),
               tf.where(too_many, _format(TOO_LARGE_PIXELS, sizes.width, sizes.height, max_pixels),
                        ''))))


def checked(image_bytes: tf.Tensor, budget: ImageBudget, batch: str) -> tf.Tensor:
  """``image_bytes`` [N] once every image is within ``budget``; else an InvalidArgumentError that
  names the first image over it, 'image 3 of the <batch>: too large: 20000×20000 pixels (limit
  200000000)'. Nothing that uses the result runs before the check, so nothing is decoded."""
  reasons = too_large_reasons(image_bytes, budget)
  first = _first(tf.not_equal(reasons, ''))
  message = tf.strings.join(['image ', tf.strings.as_string(first), f' of the {batch}: ',
                             tf.concat([reasons, ['']], 0)[first]])
  assertion = tf.debugging.Assert(tf.equal(first, tf.size(reasons, out_type=tf.int64)), [message])
  with tf.control_dependencies([assertion]):
    return tf.identity(image_bytes)


@tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int64),
                              tf.TensorSpec([], tf.int64)])
def _reasons_of(image_bytes, max_pixels, max_bytes):
  return too_large_reasons(image_bytes, ImageBudget(max_pixels, max_bytes))


def reason_of(data: bytes, budget: ImageBudget) -> str:
  """``too_large_reasons`` of one file for Python callers (ImageExampleGen, predict.py): the
  same graph, so the same sizes and words; '' when the file is within ``budget``."""
  return _reasons_of(tf.constant([data]), budget.max_pixels,
                     budget.max_bytes).numpy()[0].decode('utf-8')


def graph_constants(budget: ImageBudget) -> ImageBudget:
  """``budget`` as named int64 constants, where ``of_transform_graph`` finds them once saved."""
  return ImageBudget(tf.constant(budget.max_pixels, tf.int64, name=MAX_PIXELS_NAME),
                     tf.constant(budget.max_bytes, tf.int64, name=MAX_BYTES_NAME))


def of_transform_graph(transform_savedmodel_dir: str) -> Optional[ImageBudget]:
  """The budget that the Transform graph saved at ``transform_savedmodel_dir`` enforces (its
  ``graph_constants``); None for a graph made before it had one."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(f'{transform_savedmodel_dir}/saved_model.pb', 'rb') as f:
    saved_model.ParseFromString(f.read())
  found = {}
  for meta_graph in saved_model.meta_graphs:
    for nodes in [meta_graph.graph_def.node] + [
        function.node_def for function in meta_graph.graph_def.library.function]:
      for node in nodes:
        if node.op == 'Const' and node.name in SAVED_ATTRIBUTES:
          found.setdefault(node.name, set()).update(node.attr['value'].tensor.int64_val)
  if not found:
    return None
  if sorted(found) != sorted(SAVED_ATTRIBUTES) or any(len(v) != 1 for v in found.values()):
    raise ValueError(f'{transform_savedmodel_dir}: ambiguous image budget constants {found}')
  return ImageBudget(*(found[name].pop() for name in SAVED_ATTRIBUTES))


def attach(model: tf.Module, budget: ImageBudget) -> None:
  """Keeps ``budget`` on ``model`` as variables, which are saved with it (``of_model``)."""
  for name, value in zip(SAVED_ATTRIBUTES, budget):
    setattr(model, name, tf.Variable(value, trainable=False, dtype=tf.int64, name=name))


def of_model(model: object, as_numbers: bool = True) -> Optional[ImageBudget]:
  """The budget ``attach`` put on a model, or that a loaded served model carries: numbers, or its
  variables for the model's graphs; None for a model saved before models carried one."""
  if not all(hasattr(model, name) for name in SAVED_ATTRIBUTES):
    return None
  variables = [getattr(model, name) for name in SAVED_ATTRIBUTES]
  return ImageBudget(*[int(v.numpy()) for v in variables] if as_numbers else variables)
