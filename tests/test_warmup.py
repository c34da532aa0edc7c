"""TF Serving's warm-up file in the SavedModel: where TF Serving looks, records it parses, and
requests that replay through both signatures with the right answers."""
import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_transform.tf_metadata import schema_utils
from tfx.components.trainer.fn_args_utils import DataAccessor
from tfx.components.util import tfxio_utils
from tfx.proto import example_gen_pb2

from components.modules import features
from components.modules import model_variants
from components.modules import warmup
from tests.conftest import TEST_IMAGE_SIZE
from tests.serving_checks import (assert_outputs_match_labels, brightness_classifier,
                                  dark_and_bright_images, save_with_signatures)


def test_warmup_requests_replay_through_both_signatures(transform_output, tmp_path):
  model_dir = save_with_signatures(
      brightness_classifier(model_variants.SMALL_CNN, TEST_IMAGE_SIZE), transform_output,
      str(tmp_path / 'model'))
  images, labels = dark_and_bright_images()
  path = warmup.write(model_dir, images)
  # The file TF Serving reads at load time (tensorflow_serving/servables/tensorflow/
  # saved_model_warmup_util.cc): <version>/assets.extra/tf_serving_warmup_requests.
  assert path == os.path.join(model_dir, 'assets.extra', 'tf_serving_warmup_requests')
  # Plain TFRecords of PredictionLog protos, as TF Serving parses them.
  records = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
             for r in tf.data.TFRecordDataset(path)]
  assert [r.WhichOneof('log_type') for r in records] == ['predict_log', 'predict_log']
  assert [r.predict_log.request.model_spec.signature_name for r in records] == [
      'serving_default', features.IMAGE_BYTES_SIGNATURE]
  loaded = tf.saved_model.load(model_dir)  # the warm-up file does not disturb loading
  for log in warmup.read(model_dir):
    assert_outputs_match_labels(warmup.replay(loaded, log), labels)


def test_warmup_images_are_the_first_examples_of_the_split(tmp_path):
  images, _ = dark_and_bright_images()
  path = str(tmp_path / 'data_tfrecord-00000-of-00001.gz')
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for serialized in warmup.image_examples(images):
      writer.write(serialized)
  schema = schema_utils.schema_from_feature_spec(
      {features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string)})
  accessor = DataAccessor(
      tf_dataset_factory=lambda pattern, options, schema: tfxio_utils.make_tfxio(
          file_pattern=pattern, telemetry_descriptors=['test'],
          payload_format=example_gen_pb2.FORMAT_TF_EXAMPLE, schema=schema
      ).TensorFlowDataset(options),
      record_batch_factory=None, data_view_decode_fn=None)
  assert warmup.first_images(accessor, [str(tmp_path / '*')], schema, count=4) == images[:4]
