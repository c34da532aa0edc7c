"""Image properties that the ExampleGen records for TFDV, and that the model never sees."""
import io

from PIL import Image
from PIL import ImageEnhance
import pytest
import tensorflow as tf

from components.image_example_gen import image_properties, tf_example
from components.modules import features, image_budget, preprocessing
from tests.trees import default_budget, encode

_BUDGET_SETTINGS = image_budget.as_settings(default_budget())


def inspect_image(data: bytes) -> image_properties.ImageProperties:
  return image_properties.inspect_image(data, default_budget())


def test_tone_statistics_of_known_images():
  grey = inspect_image(encode(Image.new('RGB', (300, 200), (128, 128, 128)), 'PNG'))
  assert grey.mean_brightness == pytest.approx(128, abs=0.5)
  assert grey.contrast == pytest.approx(0, abs=0.5) and grey.mean_saturation == 0
  red = inspect_image(encode(Image.new('RGB', (40, 40), (255, 0, 0)), 'PNG'))
  assert red.mean_saturation == pytest.approx(1.0)
  halves = Image.new('L', (200, 100), 0)
  halves.paste(255, (100, 0, 200, 100))
  black_white = inspect_image(encode(halves, 'PNG'))
  assert black_white.mean_brightness == pytest.approx(127.5, abs=1)
  assert black_white.contrast == pytest.approx(127.5, abs=1)


@pytest.mark.parametrize('mode, image_format', [
    ('RGB', 'JPEG'), ('L', 'JPEG'), ('CMYK', 'JPEG'), ('RGBA', 'PNG'), ('P', 'PNG'), ('P', 'GIF')])
def test_colour_mode_is_the_files(mode, image_format):
  image = Image.effect_noise((64, 48), 40).convert('RGB').convert(mode)
  properties = inspect_image(encode(image, image_format))
  assert (properties.color_mode, properties.format) == (mode, image_format.lower())
  assert (properties.height, properties.width) == (48, 64)


def test_real_photo_and_its_darker_copy(real_images):
  with open(real_images['dogs'][0], 'rb') as f:
    data = f.read()
  photo = inspect_image(data)
  assert photo.color_mode == 'RGB' and 40 < photo.mean_brightness < 220 and photo.contrast > 20
  darker = ImageEnhance.Brightness(Image.open(io.BytesIO(data))).enhance(0.4)
  dark = inspect_image(encode(darker))
  assert dark.mean_brightness == pytest.approx(0.4 * photo.mean_brightness, rel=0.05)
  assert dark.contrast == pytest.approx(0.4 * photo.contrast, rel=0.1)


def test_example_carries_every_property():
  data = encode(Image.new('RGB', (90, 60), (0, 0, 255)), 'PNG')
  example = tf_example.make_example(data, 1, 'dogs', 'train/dogs/a.png', inspect_image(data))
  feature = example.features.feature
  assert feature[features.FILE_SIZE_KEY].int64_list.value == [len(data)]
  assert feature[features.ASPECT_RATIO_KEY].float_list.value == [1.5]
  assert feature[features.COLOR_MODE_KEY].bytes_list.value == [b'RGB']
  assert feature[features.BRIGHTNESS_KEY].float_list.value[0] == pytest.approx(29, abs=1)
  assert feature[features.SATURATION_KEY].float_list.value == [1.0]
  assert set(feature) >= set(features.NUMERIC_IMAGE_PROPERTIES +
                             features.CATEGORICAL_IMAGE_PROPERTIES)


def test_transform_uses_only_the_image_and_the_label():
  data = encode(Image.new('RGB', (40, 30), (10, 200, 30)))
  example = tf_example.make_example(data, 0, 'cats', 'train/cats/a.jpg', inspect_image(data))
  inputs = {}
  for name, feature in example.features.feature.items():
    values = feature.int64_list.value or feature.float_list.value or feature.bytes_list.value
    inputs[name] = tf.constant([list(values)])
  outputs = preprocessing.preprocessing_fn(inputs, {'image_size': 16, **_BUDGET_SETTINGS})
  assert set(outputs) == {features.TRANSFORMED_IMAGE_KEY, features.TRANSFORMED_LABEL_KEY}
  # The image and the label alone give the same model inputs: nothing else leaks in.
  image_and_label = {name: inputs[name] for name in (features.IMAGE_KEY, features.LABEL_KEY)}
  expected = preprocessing.preprocessing_fn(image_and_label, {'image_size': 16, **_BUDGET_SETTINGS})
  for name, tensor in outputs.items():
    tf.debugging.assert_equal(tensor, expected[name])
