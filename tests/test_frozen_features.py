"""The frozen base's head trained on features computed once: same logits as the full image model,
a served model that classifies raw image bytes, and the per-epoch path behind its setting."""
import glob
import json
import os

import numpy as np
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx.components.util import tfxio_utils
from tfx.proto import example_gen_pb2

import local_runner
from components.modules import embedding
from components.modules import features
from components.modules import frozen_features
from components.modules import model as model_lib
from components.modules import preprocessing
from components.modules import trainer
from tests.conftest import TEST_IMAGE_SIZE
from tests.trees import SAMPLE_DATA

CLASS_NAMES = ['cats', 'dogs']
# float32 logits of the same layers, computed in two graphs (head alone vs whole model).
LOGITS_ATOL = 1e-5


def _sample_files(split):
  """(path, label) of the embedded sample's images of ``split``, in a stable order."""
  return [(path, label) for label, name in enumerate(CLASS_NAMES)
          for path in sorted(glob.glob(os.path.join(SAMPLE_DATA, split, name, '*.jpg')))]


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


def test_views_are_fixed_and_distinct():
  images = tf.random.uniform([2, 16, 16, 3], -1, 1, seed=4)
  views = frozen_features.augmented_views(0.1)
  outputs = [view(images).numpy() for view in views]
  assert len(views) == 4
  np.testing.assert_array_equal(outputs[0], images.numpy())
  np.testing.assert_array_equal(outputs[1], images.numpy()[:, :, ::-1])
  for i, view in enumerate(views):  # deterministic: the same view twice is the same image
    np.testing.assert_array_equal(view(images).numpy(), outputs[i])
    assert all(not np.allclose(outputs[i], other) for other in outputs[i + 1:])
  assert len(frozen_features.augmented_views(0.0)) == 2  # no rotations without rotation_factor


def test_head_trained_on_features_gives_the_image_models_logits(weights_035):
  model = model_lib.build_model(num_classes=2, image_size=TEST_IMAGE_SIZE, alpha=0.35,
                                weights=weights_035, dropout=0.2, learning_rate=1e-2,
                                model='mobilenet_v2')
  files = _sample_files('train')[::6]
  images = preprocessing.preprocess_images(tf.constant([_read(p) for p, _ in files]),
                                           TEST_IMAGE_SIZE)
  labels = tf.constant([label for _, label in files])
  extractor, head = frozen_features.split_transfer_model(model)
  views = frozen_features.augmented_views(0.0)  # image and mirror: two traces of the base, not 4
  train = frozen_features.extract_features(
      extractor, tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), views)
  assert train[0].shape == (len(files), len(views), 1280)
  untrained = model.get_layer('logits').get_weights()[0].copy()

  frozen_features.fit_head(head, train, (train[0][:, :1], train[1]), epochs=3, batch_size=8,
                           learning_rate=1e-2, callbacks=[])

  assert not np.allclose(model.get_layer('logits').get_weights()[0], untrained)
  np.testing.assert_allclose(head(train[0][:, 0], training=False).numpy(),
                             model(images, training=False).numpy(), atol=LOGITS_ATOL)

  # The features of view 0 are the trained model's embeddings: the Trainer's embedding baseline
  # reuses them instead of embedding the images again.
  reused = embedding.baseline_from_embeddings(model, train[0][:, 0], train[0][:, 0], max_images=4)
  embeddings, logits = embedding.embedding_and_logits_model(model)(images, training=False)
  np.testing.assert_allclose(reused.embeddings, embeddings.numpy()[np.sort(
      np.random.default_rng(0).permutation(len(files))[:4])], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(reused.eval_probabilities, tf.nn.softmax(logits).numpy(),
                             atol=LOGITS_ATOL)


def _write_examples(path, files):
  with tf.io.TFRecordWriter(path) as writer:
    for image_path, label in files:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[_read(image_path)])),
          features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
          features.LABEL_NAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[CLASS_NAMES[label].encode()])),
      })).SerializeToString())
  return path


def _tf_dataset_factory(file_pattern, options, schema):
  """What TFX's Trainer gives run_fn for tf.Example files, without the Examples artifact."""
  return tfxio_utils.make_tfxio(file_pattern=file_pattern, telemetry_descriptors=['test'],
                                payload_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
                                schema=schema).TensorFlowDataset(options)


def _run_trainer(tmp_path, transform_output, weights, **custom_config):
  """run_fn on the sample's train split and half of its validation split; the SavedModel's path."""
  train = _write_examples(str(tmp_path / 'train.tfrecord'), _sample_files('train'))
  eval_ = _write_examples(str(tmp_path / 'eval.tfrecord'), _sample_files('validation')[::2])
  config = dict(class_names=CLASS_NAMES, image_size=TEST_IMAGE_SIZE, model='mobilenet_v2',
                weights=weights, alpha=0.35, dropout=0.2, rotation_factor=0.1, epochs=15,
                batch_size=16, learning_rate=1e-2, fine_tune_epochs=0, fine_tune_at=100,
                fine_tune_learning_rate=1e-5, cache_images=True, per_epoch_augmentation=False)
  config.update(custom_config)
  fn_args = FnArgs(
      train_files=[train], eval_files=[eval_],
      transform_output=os.path.dirname(transform_output.transform_savedmodel_dir),
      serving_model_dir=str(tmp_path / 'serving'), model_run_dir=str(tmp_path / 'run'),
      data_accessor=DataAccessor(tf_dataset_factory=_tf_dataset_factory,
                                 record_batch_factory=None,
                                 data_view_decode_fn=None),
      custom_config=config)
  trainer.run_fn(fn_args)
  with open(tmp_path / 'run' / 'history.json') as f:
    history = json.load(f)['history']
  return str(tmp_path / 'serving'), history


def test_served_model_of_the_feature_path_classifies_raw_jpeg_and_png(
    tmp_path, transform_output, weights_035, monkeypatch):
  """Also the fine-tune phase, which continues from the assembled model on images."""
  passes = []
  extract = frozen_features.extract_features
  monkeypatch.setattr(frozen_features, 'extract_features',
                      lambda *args: passes.append(len(args[2])) or extract(*args))
  serving_dir, history = _run_trainer(tmp_path, transform_output, weights_035, fine_tune_epochs=1,
                                      fine_tune_at=100, fine_tune_learning_rate=1e-5)
  assert passes == [4, 1]  # one pass over the training images (4 views), one over eval

  assert sorted(history) == ['accuracy', 'loss', 'val_accuracy', 'val_loss']
  assert all(len(values) == 15 + 1 for values in history.values())  # head + fine-tune epochs
  held_out = _sample_files('validation')[1::2]  # neither trained on nor used for eval
  jpegs = [_read(path) for path, _ in held_out]
  pngs = [tf.io.encode_png(tf.io.decode_jpeg(data)).numpy() for data in jpegs]
  expected = [CLASS_NAMES[label].encode() for _, label in held_out]
  served = tf.saved_model.load(serving_dir)
  for encoded in (jpegs, pngs):
    out = served.signatures[features.IMAGE_BYTES_SIGNATURE](image_bytes=tf.constant(encoded))
    predicted = list(out[features.CLASS_NAMES_OUTPUT].numpy())
    accuracy = np.mean([p == e for p, e in zip(predicted, expected)])
    assert accuracy >= 0.95, accuracy
  examples = [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}))
              .SerializeToString() for data in jpegs]
  by_example = served.signatures['serving_default'](examples=tf.constant(examples))
  np.testing.assert_allclose(by_example[features.PROBABILITIES_OUTPUT].numpy(),
                             out[features.PROBABILITIES_OUTPUT].numpy(), atol=1e-3)


def test_per_epoch_path_behind_its_setting(tmp_path, transform_output, weights_035, monkeypatch):
  def no_features(*args, **kwargs):
    raise AssertionError('the per-epoch path must not compute cached features')
  monkeypatch.setattr(frozen_features, 'train_head_on_features', no_features)
  serving_dir, history = _run_trainer(tmp_path, transform_output, weights_035, epochs=1,
                                      per_epoch_augmentation=True)
  assert sorted(history) == ['accuracy', 'loss', 'val_accuracy', 'val_loss']
  assert len(history['loss']) == 1
  assert set(tf.saved_model.load(serving_dir).signatures) == {
      'serving_default', features.IMAGE_BYTES_SIGNATURE, embedding.EMBEDDING_SIGNATURE}
  # The Trainer stored the embedding baseline of the final model: every training image (fewer
  # than the bound), and the eval images' probabilities.
  carried = embedding.LoadedEmbeddingModel.load(serving_dir).baseline
  assert carried.embeddings.shape == (len(_sample_files('train')), 1280)
  assert carried.eval_probabilities.shape == (len(_sample_files('validation')[::2]), 2)
  assert carried.ood_threshold > 0


def test_per_epoch_augmentation_flag_reaches_the_trainer():
  def custom_config(*argv):
    args = local_runner.build_parser().parse_args(['--data-root', SAMPLE_DATA, *argv])
    return local_runner.config_from_args(args).trainer_custom_config(CLASS_NAMES)
  assert custom_config()[trainer.PER_EPOCH_AUGMENTATION] is False
  assert custom_config('--per-epoch-augmentation')[trainer.PER_EPOCH_AUGMENTATION] is True


def test_only_a_pretrained_transfer_model_has_a_frozen_base(weights_035):
  """The feature path's condition: a trainable base (no weights) and the CNNs train on images."""
  def has_frozen_base(model, weights):
    return model_lib.has_frozen_base(model_lib.build_model(
        num_classes=2, image_size=TEST_IMAGE_SIZE, alpha=0.35, weights=weights, dropout=0.2,
        learning_rate=1e-3, model=model))
  assert has_frozen_base('mobilenet_v2', weights_035)
  assert not has_frozen_base('mobilenet_v2', model_lib.NO_WEIGHTS)
  assert not has_frozen_base('cnn_augmented', model_lib.NO_WEIGHTS)


def test_features_are_computed_in_small_batches_one_view_at_a_time():
  """The base's activations held at once are FEATURE_BATCH images of one view (memory)."""
  inputs = tf.keras.Input((4, 4, 3))
  extractor = tf.keras.Model(inputs, tf.keras.layers.GlobalAveragePooling2D()(inputs))
  images = np.random.default_rng(0).uniform(-1, 1, (20, 4, 4, 3)).astype(np.float32)
  dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(20))).batch(16)
  passes = []

  def recorded(view):
    return lambda batch: passes.append(int(batch.shape[0])) or view(batch)

  features, labels = frozen_features.extract_features(
      extractor, dataset, [recorded(tf.identity), recorded(lambda batch: -batch)])
  assert passes == [8, 8, 8, 8, 4, 4] and frozen_features.FEATURE_BATCH == 8
  assert labels.tolist() == list(range(20))
  np.testing.assert_allclose(features[:, 0], images.mean(axis=(1, 2)), atol=1e-6)
  np.testing.assert_allclose(features[:, 1], -images.mean(axis=(1, 2)), atol=1e-6)


def test_cached_images_are_the_transform_output_rounded_to_float16(tmp_path, transform_output):
  """Where images are trained on (fine-tuning, the CNNs, the per-epoch path) the cache holds them
  as float16, half the memory: they come back as float32, equal to the Transform's images rounded
  to float16, with their labels in order."""
  files = [_write_examples(str(tmp_path / 'eval.tfrecord'), _sample_files('validation')[:12])]
  accessor = DataAccessor(tf_dataset_factory=_tf_dataset_factory, record_batch_factory=None,
                          data_view_decode_fn=None)

  def images_and_labels(cache):
    batches = list(trainer.make_dataset(files, accessor, transform_output, batch_size=4,
                                        training=False, cache=cache).as_numpy_iterator())
    return (np.concatenate([images for images, _ in batches]),
            np.concatenate([labels for _, labels in batches]))

  cached, cached_labels = images_and_labels(cache=True)
  exact, labels = images_and_labels(cache=False)
  assert cached.dtype == np.float32 and cached.shape == exact.shape == (12, TEST_IMAGE_SIZE,
                                                                        TEST_IMAGE_SIZE, 3)
  np.testing.assert_array_equal(cached_labels, labels)
  np.testing.assert_array_equal(cached, exact.astype(np.float16).astype(np.float32))
