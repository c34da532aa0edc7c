"""The image budget: sizes read from headers, and bombs refused before anything decodes them."""
import os
import struct

from PIL import Image
import numpy as np
import psutil
import pytest
import tensorflow as tf

from components.image_example_gen import image_properties
from components.modules import features, image_budget, preprocessing
from tests import bombs
from tests.trees import default_budget, encode

SMALL = image_budget.ImageBudget(max_pixels=10_000, max_bytes=10**8)
DEFAULT = default_budget()
NOISE = Image.effect_noise((300, 200), 40)  # 300 wide, 200 tall: a swapped width/height shows


@pytest.fixture(scope='session')
def png_bomb():
  """20000 x 20000 grey pixels in 0.8 MB: 1.2 GB decoded to RGB."""
  return bombs.png(20000, 20000)


def sizes_of(images):
  sizes = tf.function(image_budget.header_sizes)(tf.constant(images))
  return [tuple(int(field[i]) for field in sizes[:4]) + (bool(sizes.known[i]),)
          for i in range(len(images))]


def reasons_of(images, budget=SMALL):
  return [reason.decode() for reason in tf.function(image_budget.too_large_reasons)(
      tf.constant(images), budget).numpy()]


def _jpeg_segments(data: bytes):
  """(the segments between SOI and SOS, SOS and what follows) of a JPEG as Pillow writes it."""
  segments, position = [], 2
  while data[position + 1] != 0xDA:
    length = struct.unpack('>H', data[position + 2:position + 4])[0]
    segments.append(data[position:position + 2 + length])
    position += 2 + length
  return segments, data[position:]


FORMATS = {
    'jpeg baseline': encode(NOISE.convert('RGB'), 'JPEG'),
    'jpeg progressive': bombs.encode(NOISE.convert('RGB'), 'JPEG', progressive=True),
    'jpeg grey': encode(NOISE, 'JPEG'),
    'png grey': encode(NOISE, 'PNG'),
    'png rgba': encode(NOISE.convert('RGBA'), 'PNG'),
    'png palette': encode(NOISE.convert('P'), 'PNG'),
    'gif': encode(NOISE, 'GIF'),
    'bmp': encode(NOISE.convert('RGB'), 'BMP'),
    'bmp rgba': encode(NOISE.convert('RGBA'), 'BMP'),
    'bmp top-down (negative height)': bombs.bmp_sized(300, -200),
}


def test_each_format_reports_the_size_the_decoder_allocates():
  names = list(FORMATS)
  for name, size in zip(names, sizes_of([FORMATS[name] for name in names])):
    decoded = tf.io.decode_image(FORMATS[name], channels=3, expand_animations=False)
    assert decoded.shape[:2] == (200, 300), name
    assert size == (300, 200, 60_000, 1, True), name
  assert reasons_of([FORMATS[name] for name in names]) == [
      'too large: 300×200 pixels (limit 10000)'] * len(names)
  assert reasons_of([FORMATS[name] for name in names], DEFAULT) == [''] * len(names)


def test_jpeg_frame_header_found_as_libjpeg_finds_it():
  """DHT (0xC4), DAC (0xCC), a restart marker, a comment, fill bytes and stray bytes before the
  frame header: libjpeg decodes it, and none of them is taken for the size."""
  segments, scan = _jpeg_segments(encode(NOISE.convert('RGB'), 'JPEG'))
  tables = [s for s in segments if s[1] == 0xC4]
  frame = [s for s in segments if s[1] == 0xC0]
  others = [s for s in segments if s[1] not in (0xC0, 0xC4)]
  data = (b'\xff\xd8' + b''.join(others + tables) + b'\xff\xcc\x00\x02' + b'\xff\xd0'
          + b'\xff\xfe\x00\x05hi!' + b'\x00\x12\x34' + b'\xff\xff\xff' + frame[0] + scan)
  assert tf.io.decode_image(data).shape == (200, 300, 3)
  assert sizes_of([data]) == [(300, 200, 60_000, 1, True)]
  # A bomb's frame header behind the same segments is found too.
  bomb = data.replace(frame[0], frame[0][:5] + struct.pack('>HH', 20000, 20000) + frame[0][9:])
  assert reasons_of([bomb], DEFAULT) == ['too large: 20000×20000 pixels (limit 200000000)']


def test_a_frame_header_beyond_the_walk_is_refused():
  """libjpeg reads any number of segments; a size the bounded walk does not reach may be a bomb."""
  segments, scan = _jpeg_segments(encode(NOISE.convert('RGB'), 'JPEG'))
  data = b'\xff\xd8' + b'\xff\xfe\x00\x03x' * (image_budget.MAX_JPEG_STEPS + 1) + b''.join(
      segments) + scan
  assert tf.io.decode_image(data).shape == (200, 300, 3)
  assert reasons_of([data], DEFAULT) == [
      f'too large: more than {image_budget.MAX_JPEG_STEPS} JPEG blocks before its size is known']


def test_gif_counts_every_frame_and_the_largest_frame_not_the_screen():
  many = bombs.gif_frames([(50, 40)] * 6)
  assert tf.io.decode_image(many, expand_animations=False).shape == (40, 50, 3)
  large_frame = bombs.gif_frames([(300, 200)], screen=(10, 10))
  assert tf.io.decode_image(large_frame, expand_animations=False).shape == (200, 300, 3)
  assert sizes_of([many, large_frame]) == [(50, 40, 12_000, 6, True), (300, 200, 60_000, 1, True)]
  assert reasons_of([many, large_frame]) == [
      'too large: 6 frames of up to 50×40 pixels, 12000 pixels in all (limit 10000)',
      'too large: 300×200 pixels (limit 10000)']


def test_a_gif_longer_than_the_walk_is_refused(monkeypatch):
  """Comment blocks before the frame: giflib reads them all, the walk stops at its bound."""
  monkeypatch.setattr(image_budget, 'MAX_GIF_STEPS', 64)
  gif = encode(NOISE, 'GIF')
  data = gif[:13 + 3 * 256] + b'\x21\xfe\x01x\x00' * 30 + gif[13 + 3 * 256:]
  assert tf.io.decode_image(data, expand_animations=False).shape == (200, 300, 3)
  assert reasons_of([data, gif], DEFAULT) == [
      'too large: more than 64 GIF blocks before its size is known', '']


@pytest.mark.parametrize('name, bomb', [
    ('png', bombs.png_header(20000, 20000)),
    ('jpeg', bombs.jpeg_sized(20000, 20000)),
    ('gif', bombs.gif_header(20000, 20000)),
])
def test_every_truncation_of_a_bomb_is_refused_by_the_budget_or_by_the_decoder(name, bomb):
  """Nothing slips through: where the size cannot be read, the decoder has nothing to decode."""
  cuts = [bomb[:cut] for cut in range(len(bomb) + 1)]
  for cut, reason in zip(cuts, reasons_of(cuts, DEFAULT)):
    if reason:
      assert reason == 'too large: 20000×20000 pixels (limit 200000000)', (name, len(cut))
    else:
      with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_image(cut, channels=3, expand_animations=False)


def test_garbage_and_truncated_files():
  """No size, no verdict: the decoder refuses these as before. A file cut after its header keeps
  the size it declares."""
  garbage = [b'', b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'GIF89a', b'BM' + bytes(10),
             os.urandom(5000)]
  assert reasons_of(garbage) == [''] * len(garbage)
  assert not any(size[-1] for size in sizes_of(garbage))
  halves = [data[:len(data) // 2] for data in FORMATS.values()]
  assert reasons_of(halves) == ['too large: 300×200 pixels (limit 10000)'] * len(halves)


def test_byte_budget():
  data = FORMATS['png grey']
  budget = image_budget.ImageBudget(max_pixels=10**9, max_bytes=len(data) - 1)
  assert reasons_of([data, data[:100]], budget) == [
      f'too large: {len(data)} bytes (limit {len(data) - 1})', '']
  assert image_budget.file_size_reason(len(data), budget) == reasons_of([data], budget)[0]


def test_transform_function_refuses_a_bomb_before_decoding():
  """A PNG header of 20000 x 20000 and no pixels: decoded first, it would fail as invalid PNG."""
  preprocess = tf.function(lambda images: preprocessing.preprocess_images(images, 16, DEFAULT))
  normal = FORMATS['png grey']
  assert preprocess(tf.constant([normal])).shape == (1, 16, 16, 3)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='image 1 of the batch: too large: 20000×20000 pixels '
                           r'\(limit 200000000\)'):
    preprocess(tf.constant([normal, bombs.png_header(20000, 20000), normal]))


def test_transform_graph_enforces_and_records_the_budget(transform_output):
  assert image_budget.of_transform_graph(transform_output.transform_savedmodel_dir) == DEFAULT
  layer = transform_output.transform_features_layer()
  raw = [FORMATS['jpeg baseline'], bombs.jpeg_sized(30000, 30000, 'RGB')]
  message = r'image 1 of the batch: too large: 30000×30000 pixels \(limit 200000000\)'
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    layer({features.IMAGE_KEY: tf.reshape(tf.constant(raw), [-1, 1]),
           features.LABEL_KEY: tf.zeros([2, 1], tf.int64),
           features.LABEL_NAME_KEY: tf.fill([2, 1], b'cats')})


def _examples(images):
  return [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
  })).SerializeToString() for data in images]


def test_serving_refuses_a_request_with_a_bomb_by_its_index(saved_model_dir, png_bomb):
  loaded = tf.saved_model.load(saved_model_dir)
  assert image_budget.of_model(loaded) == DEFAULT
  photos = [FORMATS['jpeg baseline'], FORMATS['png rgba']] * 10
  by_bytes = loaded.signatures[features.IMAGE_BYTES_SIGNATURE]
  expected = by_bytes(image_bytes=tf.constant(photos))[features.PROBABILITIES_OUTPUT].numpy()
  request = photos[:17] + [png_bomb] + photos[17:]  # in the second chunk of 16
  process = psutil.Process()
  before = process.memory_info().rss
  message = r'image 17 of the request: too large: 20000×20000 pixels \(limit 200000000\)'
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    by_bytes(image_bytes=tf.constant(request))
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    loaded.signatures['serving_default'](examples=tf.constant(_examples(request)))
  assert process.memory_info().rss - before < 100 * 2**20  # decoded, the bomb alone is 1.2 GB
  # The photos' answers do not change with the check.
  np.testing.assert_array_equal(
      by_bytes(image_bytes=tf.constant(photos))[features.PROBABILITIES_OUTPUT].numpy(), expected)


def test_serving_enforces_the_budget_the_model_carries(saved_model_dir, tmp_path):
  """A model's budget variables decide for the request, before its Transform graph's constants."""
  loaded = tf.saved_model.load(saved_model_dir)
  loaded.max_image_pixels.assign(1000)
  strict_dir = str(tmp_path / 'strict')
  tf.saved_model.save(loaded, strict_dir, signatures=loaded.signatures)
  strict = tf.saved_model.load(strict_dir)
  assert image_budget.of_model(strict) == (1000, DEFAULT.max_bytes)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'image 0 of the request: too large: 300×200 pixels \(limit 1000\)'):
    strict.signatures[features.IMAGE_BYTES_SIGNATURE](
        image_bytes=tf.constant([FORMATS['png grey']]))


def test_inspect_image_refuses_bombs_with_the_pipeline_reason(png_bomb):
  with pytest.raises(image_properties.TooLargeError) as raised:
    image_properties.inspect_image(png_bomb, DEFAULT)
  assert str(raised.value) == 'too large: 20000×20000 pixels (limit 200000000)'
  with pytest.raises(image_properties.TooLargeError, match=r'too large: \d+ bytes \(limit 1000\)'):
    image_properties.inspect_image(FORMATS['png grey'], image_budget.ImageBudget(10**9, 1000))


def test_pillows_own_bomb_limit_does_not_decide(monkeypatch):
  """Pillow refuses 179 Mpx and more (a 200 Mpx phone photo): the budget decides instead."""
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10)  # Pillow alone would call this a bomb
  assert image_properties.inspect_image(FORMATS['png grey'], DEFAULT)[:3] == (200, 300, 'png')
  # The logical screen of a GIF, which Pillow draws its frames on, counts on this side too.
  with pytest.raises(image_properties.TooLargeError,
                     match=r'too large: 400×300 pixels \(limit 10000\)'):
    image_properties.inspect_image(bombs.gif_frames([(20, 20)], screen=(400, 300)), SMALL)
