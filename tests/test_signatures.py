"""Both serving signatures of the saved model, on real encoded JPEG and PNG bytes."""
import os

from PIL import Image
import numpy as np
import pytest
import tensorflow as tf

from components.modules import features, model as model_lib, signatures
from tests.conftest import TEST_IMAGE_SIZE, WEIGHTS_035
from tests.trees import encode


@pytest.fixture(scope='module')
def saved_model(transform_output, tmp_path_factory):
  if not os.path.exists(WEIGHTS_035):
    pytest.skip(f'pretrained weights not available at {WEIGHTS_035}')
  class_names = ['cats', 'dogs']
  model = model_lib.build_model(num_classes=len(class_names), image_size=TEST_IMAGE_SIZE,
                                alpha=0.35, weights=WEIGHTS_035, dropout=0.0, learning_rate=1e-3)
  # An untrained head scores every image 50/50; random weights make the outputs distinct.
  logits = model.get_layer('logits')
  kernel = np.random.RandomState(0).normal(0, 1, logits.kernel.shape)
  logits.set_weights([kernel, np.zeros(len(class_names))])
  export_dir = str(tmp_path_factory.mktemp('model'))
  model.save(export_dir, save_format='tf',
             signatures=signatures.make_serving_signatures(model, transform_output, class_names))
  return tf.saved_model.load(export_dir)


def _images(real_images):
  jpegs = [open(path, 'rb').read() for path in (real_images['cats'][0], real_images['dogs'][0])]
  png = encode(Image.open(real_images['dogs'][1]), 'PNG')
  return jpegs + [png]


def test_image_bytes_signature(saved_model, real_images):
  serve = saved_model.signatures[features.IMAGE_BYTES_SIGNATURE]
  assert list(serve.structured_input_signature[1]) == [features.IMAGE_BYTES_INPUT]
  out = serve(image_bytes=tf.constant(_images(real_images)))
  probabilities = out[features.PROBABILITIES_OUTPUT].numpy()
  assert probabilities.shape == (3, 2) and probabilities.dtype == np.float32
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
  class_ids = out[features.CLASS_IDS_OUTPUT].numpy()
  assert class_ids.tolist() == probabilities.argmax(axis=1).tolist()
  names = [n.decode() for n in out[features.CLASS_NAMES_OUTPUT].numpy()]
  assert names == [['cats', 'dogs'][i] for i in class_ids]


def test_tf_example_signature_matches_image_bytes(saved_model, real_images):
  images = _images(real_images)
  serialized = [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
      features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
  })).SerializeToString() for data in images]
  from_examples = saved_model.signatures['serving_default'](tf.constant(serialized))
  from_bytes = saved_model.signatures[features.IMAGE_BYTES_SIGNATURE](
      image_bytes=tf.constant(images))
  np.testing.assert_allclose(from_examples[features.PROBABILITIES_OUTPUT].numpy(),
                             from_bytes[features.PROBABILITIES_OUTPUT].numpy(), rtol=1e-6)
