"""The frozen base's features computed once (the extractor BulkInferrer runs) and its head trained
on them: the same features and logits as the full image model, class weights, early stopping, the
Tuner's search, a served model that classifies raw image bytes, and the per-epoch path."""
import glob
import json
import os

import numpy as np
import psutil
import pytest
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
from components.modules import tuner
from tests.conftest import TEST_IMAGE_SIZE, WEIGHTS_035, require_shared
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
  # A turn by a quarter of a full turn is a transpose and a flip, away from the reflected corners.
  square = tf.reshape(tf.range(2 * 5 * 5 * 3, dtype=tf.float32), [2, 5, 5, 3])
  np.testing.assert_allclose(frozen_features._rotation(0.25)(square).numpy(),  # pylint: disable=protected-access
                             np.rot90(square.numpy(), k=1, axes=(1, 2)), atol=1e-3)


def _examples(files):
  return [tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[_read(image_path)])),
      features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      features.LABEL_NAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[CLASS_NAMES[label].encode()])),
  })) for image_path, label in files]


def _write_examples(path, files, extractor=None):
  """The examples of ``files``; with ``extractor`` (the FeatureExtractor's SavedModel), each with
  its base features appended, as BulkInferrer writes them."""
  examples = _examples(files)
  if extractor is not None:
    serve = extractor.signatures['serving_default']
    computed = serve(examples=tf.constant([e.SerializeToString() for e in examples]))[
        frozen_features.FEATURES_KEY].numpy()
    for example, values in zip(examples, computed):
      example.features.feature[frozen_features.FEATURES_KEY].float_list.value[:] = values
  with tf.io.TFRecordWriter(path) as writer:
    for example in examples:
      writer.write(example.SerializeToString())
  return path


def _tf_dataset_factory(file_pattern, options, schema):
  """What TFX's Trainer gives run_fn for tf.Example files, without the Examples artifact."""
  return tfxio_utils.make_tfxio(file_pattern=file_pattern, telemetry_descriptors=['test'],
                                payload_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
                                schema=schema).TensorFlowDataset(options)


def _config(weights, **overrides):
  """The Trainer's custom_config (PipelineConfig.trainer_custom_config) for the sample at 32 px."""
  config = dict(class_names=CLASS_NAMES, image_size=TEST_IMAGE_SIZE, model='mobilenet_v2',
                weights=weights, alpha=0.35, dropout=0.2, rotation_factor=0.1, epochs=15,
                batch_size=16, learning_rate=1e-2, class_weights='balanced', tuner_trials=0,
                fine_tune_epochs=0, fine_tune_at=100, fine_tune_learning_rate=1e-5,
                cache_images=True, per_epoch_augmentation=False, trains_on_features=True)
  config.update(overrides)
  return config


@pytest.fixture(scope='module')
def extractor(transform_output, tmp_path_factory):
  """The FeatureExtractor's SavedModel of the sample at 32 px (the transfer recipe's, smaller)."""
  require_shared(WEIGHTS_035)
  export_dir = str(tmp_path_factory.mktemp('extractor'))
  frozen_features.export_extractor(os.path.dirname(transform_output.transform_savedmodel_dir),
                                   export_dir, TEST_IMAGE_SIZE, 0.35, WEIGHTS_035, 0.1)
  return tf.saved_model.load(export_dir)


def _run_trainer(tmp_path, transform_output, extractor, weights, hyperparameters=None,
                 train_files=None, **custom_config):
  """run_fn on the sample's train split and half of its validation split, their examples carrying
  the base's features; (the SavedModel's path, the Trainer's record)."""
  tmp_path.mkdir(exist_ok=True)
  train = _write_examples(str(tmp_path / 'train.tfrecord'),
                          train_files or _sample_files('train'), extractor)
  eval_ = _write_examples(str(tmp_path / 'eval.tfrecord'), _sample_files('validation')[::2],
                          extractor)
  config = _config(weights, **custom_config)
  fn_args = FnArgs(
      train_files=[train], eval_files=[eval_],
      transform_output=os.path.dirname(transform_output.transform_savedmodel_dir),
      serving_model_dir=str(tmp_path / 'serving'), model_run_dir=str(tmp_path / 'run'),
      data_accessor=_ACCESSOR, hyperparameters=hyperparameters, custom_config=config)
  trainer.run_fn(fn_args)
  with open(tmp_path / 'run' / trainer.HISTORY_FILE) as f:
    return str(tmp_path / 'serving'), json.load(f)


_ACCESSOR = DataAccessor(tf_dataset_factory=_tf_dataset_factory, record_batch_factory=None,
                         data_view_decode_fn=None)


def test_the_extractor_gives_each_view_the_models_embedding(extractor, transform_output):
  """BulkInferrer's model: serialized raw examples -> the base's pooled features of every view,
  view 0 the transfer model's embedding of the image (the one the served model computes)."""
  files = _sample_files('validation')[::9]
  examples = [e.SerializeToString() for e in _examples(files)]
  computed = extractor.signatures['serving_default'](examples=tf.constant(examples))[
      frozen_features.FEATURES_KEY].numpy()
  assert computed.shape == (len(files), 4 * 1280)
  views = computed.reshape(len(files), 4, 1280)
  model = model_lib.build_model(num_classes=2, image_size=TEST_IMAGE_SIZE, alpha=0.35,
                                weights=WEIGHTS_035, dropout=0.2, learning_rate=1e-3,
                                model='mobilenet_v2')
  images = preprocessing.preprocess_images(tf.constant([_read(p) for p, _ in files]),
                                           TEST_IMAGE_SIZE)
  embeddings, _ = embedding.embedding_and_logits_model(model)(images, training=False)
  np.testing.assert_allclose(views[:, 0], embeddings.numpy(), rtol=1e-4, atol=1e-4)
  mirrored, _ = embedding.embedding_and_logits_model(model)(images[:, :, ::-1], training=False)
  np.testing.assert_allclose(views[:, 1], mirrored.numpy(), rtol=1e-4, atol=1e-4)
  assert not np.allclose(views[:, 2], views[:, 0], atol=1e-3)  # a rotated view


def test_head_trained_on_features_gives_the_image_models_logits(extractor, tmp_path):
  model = model_lib.build_model(num_classes=2, image_size=TEST_IMAGE_SIZE, alpha=0.35,
                                weights=WEIGHTS_035, dropout=0.2, learning_rate=1e-2,
                                model='mobilenet_v2')
  files = _sample_files('train')[::4]
  path = _write_examples(str(tmp_path / 'train.tfrecord'), files, extractor)
  train = frozen_features.read_features([path], _ACCESSOR, num_views=4)
  assert train[0].shape == (len(files), 4, 1280)
  assert train[1].tolist() == [label for _, label in files]
  untrained = model.get_layer('logits').get_weights()[0].copy()

  history, best_epoch = frozen_features.fit_head(
      frozen_features.split_transfer_model(model), train, train, epochs=3, learning_rate=1e-2,
      class_weight=None)

  assert len(history['loss']) == 3 and 1 <= best_epoch <= 3
  assert not np.allclose(model.get_layer('logits').get_weights()[0], untrained)
  # read_features keeps the examples' order: row i is files[i].
  images = preprocessing.preprocess_images(tf.constant([_read(p) for p, _ in files]),
                                           TEST_IMAGE_SIZE)
  head = frozen_features.split_transfer_model(model)
  np.testing.assert_allclose(head(train[0][:, 0], training=False).numpy(),
                             model(images, training=False).numpy(), atol=LOGITS_ATOL)


def test_early_stopping_keeps_the_best_epoch_and_class_weights_balance_the_loss():
  rng = np.random.default_rng(0)
  labels = np.array([0] * 90 + [1] * 10)
  features_ = rng.normal(size=(100, 2, 8)).astype(np.float32)
  features_[:, :, 0] += labels[:, None] * 2.0
  assert frozen_features.balancing_weights(labels, 2) == {0: 100 / 180, 1: 100 / 20}
  assert frozen_features.class_weight_of(labels, 2, 'none') is None
  head = frozen_features.head_model(8, 2, dropout=0.0)
  history, best = frozen_features.fit_head(head, (features_, labels), (features_, labels),
                                           epochs=200, learning_rate=0.3,
                                           class_weight=frozen_features.balancing_weights(labels, 2))
  # A learning rate this high overshoots: the eval loss stops improving and training stops
  # EARLY_STOPPING_PATIENCE epochs after its best, whose weights are the head's now.
  assert len(history['val_loss']) == best + frozen_features.EARLY_STOPPING_PATIENCE < 200
  assert history['val_loss'][best - 1] == min(history['val_loss'])
  logits = head(features_[:, 0], training=False).numpy()
  weights = np.where(labels == 1, 100 / 20, 100 / 180)
  losses = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True).numpy()
  assert np.sum(losses * weights) / np.sum(weights) == pytest.approx(min(history['val_loss']),
                                                                     rel=1e-4)


def test_training_the_head_again_keeps_no_copy_of_the_features():
  """The Tuner trains the head a dozen times on the same features: each fit must free its copy
  of them (they were captured by its traced functions once, ~70 MB per trial on flowers)."""
  features_ = np.zeros((4000, 4, 1280), np.float32)  # 82 MB
  labels = np.arange(4000) % 2
  process = psutil.Process()

  def fit():
    frozen_features.fit_head(frozen_features.head_model(1280, 2, dropout=0.0),
                             (features_, labels), (features_[:100], labels[:100]), epochs=1,
                             learning_rate=1e-3, class_weight=None)

  fit()
  fit()  # the allocator keeps the freed pages of a fit for the next one
  before = process.memory_info().rss
  for _ in range(4):
    fit()
  grown = process.memory_info().rss - before
  assert grown < 100 * 2**20, f'{grown / 2**20:.0f} MiB more after 4 fits'


def test_served_model_of_the_feature_path_classifies_raw_jpeg_and_png(
    tmp_path, transform_output, extractor):
  """Also the fine-tune phase, which continues from the assembled model on images."""
  serving_dir, record = _run_trainer(tmp_path, transform_output, extractor, WEIGHTS_035,
                                     fine_tune_epochs=1, fine_tune_at=100,
                                     fine_tune_learning_rate=1e-5)
  history = record['history']
  assert sorted(history) == ['accuracy', 'loss', 'val_accuracy', 'val_loss']
  head_epochs = len(history['loss']) - 1
  assert 1 <= record['best_epoch'] <= head_epochs <= 15
  assert all(len(values) == head_epochs + 1 for values in history.values())  # + fine-tune epoch
  assert record['hyperparameters'] == {'learning_rate': 1e-2, 'dropout': 0.2}
  assert not record['tuned']
  assert record['class_weights'] == {'cats': pytest.approx(1.0), 'dogs': pytest.approx(1.0)}
  held_out = _sample_files('validation')[1::2]  # neither trained on nor used for eval
  jpegs = [_read(path) for path, _ in held_out]
  # The JPEGs' pixels as the Transform graph decodes them (the accurate integer DCT).
  pngs = [tf.io.encode_png(tf.io.decode_jpeg(data, dct_method='INTEGER_ACCURATE')).numpy()
          for data in jpegs]
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


def test_the_tuners_choice_trains_the_head(tmp_path, transform_output, extractor):
  """tuner_fn's search on the features (TFX's Tuner runs ``search(**fit_kwargs)``) and the
  Trainer reading its best hyperparameters (TFX passes them as fn_args.hyperparameters)."""
  train = _write_examples(str(tmp_path / 'train.tfrecord'), _sample_files('train'), extractor)
  eval_ = _write_examples(str(tmp_path / 'eval.tfrecord'), _sample_files('validation')[::2],
                          extractor)
  fn_args = FnArgs(train_files=[train], eval_files=[eval_], data_accessor=_ACCESSOR,
                   working_dir=str(tmp_path / 'tuner'),
                   custom_config=_config(WEIGHTS_035, tuner_trials=3))
  result = tuner.tuner_fn(fn_args)
  result.tuner.search(**result.fit_kwargs)
  trials = result.tuner.oracle.get_best_trials(3)
  assert len(trials) == 3 and all(t.score is not None for t in trials)
  best = result.tuner.get_best_hyperparameters()[0]
  assert trials[0].score == min(t.score for t in trials)
  assert tuner.chosen(best.get_config(), _config(WEIGHTS_035)) == best.values
  _, record = _run_trainer(tmp_path / 'trainer', transform_output, extractor, WEIGHTS_035,
                           hyperparameters=best.get_config())
  assert record['tuned'] and record['hyperparameters'] == best.values


def test_per_epoch_path_behind_its_setting(tmp_path, transform_output, extractor, monkeypatch):
  def no_features(*args, **kwargs):
    raise AssertionError('the per-epoch path must not read features')
  monkeypatch.setattr(frozen_features, 'read_features', no_features)
  serving_dir, record = _run_trainer(tmp_path, transform_output, None, WEIGHTS_035, epochs=1,
                                     per_epoch_augmentation=True, trains_on_features=False)
  history = record['history']
  assert sorted(history) == ['accuracy', 'loss', 'val_accuracy', 'val_loss']
  assert len(history['loss']) == 1 and record['best_epoch'] is None
  assert set(tf.saved_model.load(serving_dir).signatures) == {
      'serving_default', features.IMAGE_BYTES_SIGNATURE, embedding.EMBEDDING_SIGNATURE}
  # The Trainer stored the embedding baseline of the final model: every training image (fewer
  # than the bound), and the eval images' probabilities.
  carried = embedding.LoadedEmbeddingModel.load(serving_dir).baseline
  assert carried.embeddings.shape == (len(_sample_files('train')), 1280)
  assert carried.eval_probabilities.shape == (len(_sample_files('validation')[::2]), 2)
  assert carried.ood_threshold > 0


def test_class_weights_reach_the_image_path(tmp_path, transform_output, monkeypatch):
  """Trained on images (the scratch recipe), the classes are weighted by the training counts."""
  seen = {}
  fit = tf.keras.Model.fit
  monkeypatch.setattr(tf.keras.Model, 'fit', lambda self, *a, **k: seen.update(
      k.get('class_weight') or {}) or fit(self, *a, **k))
  train_files = _sample_files('train')
  files = [f for f in train_files if f[1] == 0] + [f for f in train_files if f[1] == 1][:20]
  _, record = _run_trainer(tmp_path, transform_output, None, 'none', train_files=files, epochs=1,
                           trains_on_features=False)
  cats = sum(1 for f in files if f[1] == 0)
  assert seen == pytest.approx({0: len(files) / (2 * cats), 1: len(files) / 40})
  assert record['class_weights'] == pytest.approx({'cats': seen[0], 'dogs': seen[1]})


def test_trains_on_features_follows_the_recipe():
  def custom_config(*argv):
    args = local_runner.build_parser().parse_args(['--data-root', SAMPLE_DATA, *argv])
    return local_runner.config_from_args(args).trainer_custom_config(CLASS_NAMES)
  assert custom_config('--recipe', 'transfer')[trainer.TRAINS_ON_FEATURES] is True
  assert custom_config('--recipe', 'transfer', '--per-epoch-augmentation')[
      trainer.TRAINS_ON_FEATURES] is False
  assert custom_config()[trainer.TRAINS_ON_FEATURES] is False  # the sample: from scratch


def test_only_a_pretrained_transfer_model_has_a_frozen_base(weights_035):
  """The feature path's condition: a trainable base (no weights) and the CNNs train on images."""
  def has_frozen_base(model, weights):
    return model_lib.has_frozen_base(model_lib.build_model(
        num_classes=2, image_size=TEST_IMAGE_SIZE, alpha=0.35, weights=weights, dropout=0.2,
        learning_rate=1e-3, model=model))
  assert has_frozen_base('mobilenet_v2', weights_035)
  assert not has_frozen_base('mobilenet_v2', model_lib.NO_WEIGHTS)
  assert not has_frozen_base('cnn_augmented', model_lib.NO_WEIGHTS)


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
