"""EXIF orientation: photos stored sideways with an Orientation tag are seen upright everywhere."""
import io
import struct

from PIL import Image
from PIL import ImageOps
import numpy as np
import pytest
import tensorflow as tf

from components.image_example_gen import image_properties
from components.modules import exif_orientation, features, preprocessing
from run_results.report import inference
from tests.conftest import TEST_IMAGE_SIZE
from tests.trees import default_budget, encode

ORIENTATIONS = range(1, 9)
# The stored pixels of orientation k are these transposes of the upright view (Pillow's names).
_STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
           6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_270}


def _upright_pattern() -> Image.Image:
  """48 wide, 32 tall, no symmetry: every flip or turn of it looks different."""
  pixels = np.zeros((32, 48, 3), np.uint8)
  pixels[:16, :16] = (255, 0, 0)
  pixels[16:, :16] = (0, 255, 0)
  pixels[:16, 16:32] = (0, 0, 255)
  pixels[:, 40:] = (255, 255, 0)
  return Image.fromarray(pixels)


def tagged_like_a_phone(upright: Image.Image, orientation: int, image_format='JPEG') -> bytes:
  """``upright`` stored as a phone would for ``orientation``: pixels turned, tag set."""
  stored = upright if _STORED[orientation] is None else upright.transpose(_STORED[orientation])
  exif = Image.Exif()
  exif[exif_orientation.ORIENTATION_TAG] = orientation
  buffer = io.BytesIO()
  options = {'quality': 95, 'subsampling': 0} if image_format == 'JPEG' else {}
  stored.save(buffer, image_format, exif=exif.tobytes(), **options)
  return buffer.getvalue()


def orientation_of(data: bytes) -> int:
  return int(exif_orientation.jpeg_orientation(tf.constant(data)))


def test_all_eight_orientations_decode_to_the_same_upright_pixels(transform_output):
  upright = _upright_pattern()
  expected = preprocessing.preprocess_images(tf.constant([encode(upright, 'PNG')]),
                                             TEST_IMAGE_SIZE).numpy()[0]
  tagged = [tagged_like_a_phone(upright, k) for k in ORIENTATIONS]
  for k, data in zip(ORIENTATIONS, tagged):
    # Pillow, an independent reader, sees the same upright picture.
    pillow = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))).astype(float)
    assert np.abs(pillow - np.asarray(upright)).mean() < 2, k
    assert orientation_of(data) == k
  transformed = transform_output.transform_features_layer()({
      features.IMAGE_KEY: tf.reshape(tf.constant(tagged), [-1, 1]),
      features.LABEL_KEY: tf.zeros([8, 1], tf.int64),
      features.LABEL_NAME_KEY: tf.fill([8, 1], b'cats'),
  })[features.TRANSFORMED_IMAGE_KEY].numpy()
  for k, image in zip(ORIENTATIONS, transformed):
    assert np.abs(image - expected).max() < 0.1, f'orientation {k}'


def _tiff(orientation: int, order: str = '<') -> bytes:
  """A TIFF block in Intel ('<', II) or Motorola ('>', MM) order; IFD0: Make, then Orientation."""
  entries = [struct.pack(order + 'HHI4s', 0x010F, 2, 4, b'Cam\0'),
             struct.pack(order + 'HHIHH', exif_orientation.ORIENTATION_TAG, 3, 1, orientation, 0)]
  header = b'II' if order == '<' else b'MM'
  return header + struct.pack(order + 'HIH', 42, 8, len(entries)) + b''.join(entries) + b'\0' * 4


@pytest.mark.parametrize('order', ['<', '>'])
def test_both_byte_orders_after_other_segments(order):
  upright = _upright_pattern()
  stored = encode(upright.transpose(Image.Transpose.ROTATE_90))  # SOI, JFIF APP0, ...
  app1 = b'Exif\0\0' + _tiff(6, order)
  data = (stored[:20] + b'\xff\xfe\0\x05hi\0' + b'\xff\xe1' + struct.pack('>H', len(app1) + 2)
          + app1 + stored[20:])
  assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (48, 32)
  assert orientation_of(data) == 6
  assert exif_orientation.decode_upright(tf.constant(data)).shape == (32, 48, 3)


def test_every_truncation_reads_orientation_1_until_the_tag_is_complete():
  data = tagged_like_a_phone(_upright_pattern(), 6)  # Pillow: MM, IFD0 = Orientation alone
  tag_end = data.index(struct.pack('>HHIH', exif_orientation.ORIENTATION_TAG, 3, 1, 6)) + 12
  orientation = tf.function(exif_orientation.jpeg_orientation,
                            input_signature=[tf.TensorSpec([], tf.string)])
  found = [int(orientation(data[:cut])) for cut in range(tag_end + 8)]
  assert found == [1] * tag_end + [6] * 8


def _exif_jpeg(tiff: bytes) -> bytes:
  return encode(_upright_pattern(), 'JPEG')[:2] + b'\xff\xe1' + struct.pack('>H', len(tiff) + 8) \
      + b'Exif\0\0' + tiff + encode(_upright_pattern(), 'JPEG')[2:]


@pytest.mark.parametrize('name, data', [
    ('no exif', encode(_upright_pattern(), 'JPEG')),
    ('value 9', _exif_jpeg(_tiff(9))),
    ('bad byte order', _exif_jpeg(b'XX' + _tiff(6)[2:])),
    ('IFD beyond the file', _exif_jpeg(b'MM\0\x2a\x7f\xff\xff\xff')),
    ('65535 entries', _exif_jpeg(_tiff(6)[:8] + b'\xff\xff' + _tiff(6)[10:])),
    ('segment length 0', b'\xff\xd8\xff\xe1\0\0' + b'\0' * 40),
    ('garbage', bytes(range(256)) * 4),
    ('empty', b''),
    ('PNG with eXIf 6', tagged_like_a_phone(_upright_pattern(), 6, 'PNG')),
    ('GIF', encode(_upright_pattern(), 'GIF')),
    ('BMP', encode(_upright_pattern(), 'BMP')),
])
def test_unreadable_or_other_formats_stay_as_stored(name, data):
  assert orientation_of(data) == 1, name
  if name not in ('segment length 0', 'garbage', 'empty'):
    stored = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))  # decoded, not turned
    np.testing.assert_array_equal(exif_orientation.decode_upright(tf.constant(data)), stored)


@pytest.mark.parametrize('orientation', ORIENTATIONS)
def test_image_properties_and_report_thumbnail_are_upright(orientation):
  data = tagged_like_a_phone(_upright_pattern(), orientation)
  properties = image_properties.inspect_image(data, default_budget())
  assert (properties.height, properties.width) == (32, 48)
  thumbnail = inference.thumbnail(data)
  expected = inference.thumbnail(
      encode(_upright_pattern(), 'PNG'))
  assert np.abs(thumbnail.astype(float) - expected).mean() < 2


def test_both_serving_signatures_see_tagged_images_upright(saved_model_dir):
  serving = tf.saved_model.load(saved_model_dir).signatures
  tagged = [tagged_like_a_phone(_upright_pattern(), k) for k in ORIENTATIONS]
  examples = [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
  })).SerializeToString() for data in tagged]
  for probabilities in (
      serving[features.IMAGE_BYTES_SIGNATURE](image_bytes=tf.constant(tagged)),
      serving['serving_default'](examples=tf.constant(examples))):
    probabilities = probabilities[features.PROBABILITIES_OUTPUT].numpy()
    np.testing.assert_allclose(probabilities, np.repeat(probabilities[:1], 8, axis=0), atol=0.02)


def test_real_photos_tagged_like_a_phone_match_the_originals(real_images):
  """A phone's copy of a photo (any orientation) gives the Transform output of the original."""
  for path in real_images['cats'][:2] + real_images['dogs'][:2]:
    with open(path, 'rb') as f:
      original = f.read()
    copies = [tagged_like_a_phone(Image.open(io.BytesIO(original)), k) for k in ORIENTATIONS]
    images = preprocessing.preprocess_images(tf.constant([original] + copies), 160).numpy()
    for k, image in zip(ORIENTATIONS, images[1:]):
      # Re-encoding at quality 95 moves pixels by ~1 % of the range; a wrong turn by ~30 %.
      assert np.abs(image - images[0]).mean() < 0.03, f'{path} orientation {k}'
