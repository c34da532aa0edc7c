"""Trainer module (``run_fn``): raw examples -> Transform graph -> model -> SavedModel.

``custom_config['model']`` picks one of the tutorial's four models (``model_variants``); it also
decides whether the training images are augmented. A frozen pretrained base trains its head on the
base's features, which the pipeline computed once (``frozen_features``: BulkInferrer's examples
carry them), with the Tuner's learning rate and dropout when it ran; trainable bases, the CNNs,
the fine-tune phase and ``custom_config['per_epoch_augmentation']`` train on (cached, augmented)
images. Every path weighs the classes by ``custom_config['class_weights']``.
"""
import json
import os
from typing import List

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.tf_metadata import schema_utils
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from components.modules import embedding
from components.modules import features
from components.modules import frozen_features
from components.modules import model as model_lib
from components.modules import model_variants
from components.modules import signatures
from components.modules import tflite_export
from components.modules import tuner
from components.modules import warmup

_SHUFFLE_BUFFER = 2048
# In the model run folder: the class names, the per-epoch metrics and what chose them.
HISTORY_FILE = 'history.json'
# custom_config key: the examples carry a frozen base's features (frozen_features.FEATURES_KEY),
# its head trains on them (PipelineConfig.trains_on_features).
TRAINS_ON_FEATURES = 'trains_on_features'


def make_dataset(file_pattern: List[str],
                 data_accessor: DataAccessor,
                 tft_output: tft.TFTransformOutput,
                 batch_size: int,
                 training: bool,
                 rotation_factor: float = 0.0,
                 cache: bool = True,
                 augment: bool = True) -> tf.data.Dataset:
  """(images, labels) batches, preprocessed by the Transform graph (no materialised copy on disk).

  Training batches are shuffled and, with ``augment``, randomly flipped and rotated.
  """
  raw = data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1, shuffle=False),
      schema=tft_output.raw_metadata.schema)
  tft_layer = tft_output.transform_features_layer()

  def transform(raw_features):
    transformed = tft_layer(raw_features)
    return (transformed[features.TRANSFORMED_IMAGE_KEY],
            transformed[features.TRANSFORMED_LABEL_KEY])

  dataset = raw.map(transform, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
  if cache:
    # Held as float16: half the memory (the tutorial's 2 776 images at 160 px: 0.42 GB instead of
    # 0.85), and its step near 1, 2^-11, is a sixteenth of one pixel level (1 / 127.5).
    dataset = (dataset.map(lambda image, label: (tf.cast(image, tf.float16), label))
               .cache()
               .map(lambda image, label: (tf.cast(image, tf.float32), label)))
  if training:
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, reshuffle_each_iteration=True)
  dataset = dataset.batch(batch_size)
  if training and augment:
    augmentation = model_lib.augmentation(rotation_factor)
    dataset = dataset.map(lambda x, y: (augmentation(x, training=True), y),
                          num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def _labels(file_pattern: List[str], data_accessor: DataAccessor) -> np.ndarray:
  """The label ids of a split's examples, for its class weights."""
  schema = schema_utils.schema_from_feature_spec(
      {features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)})
  dataset = data_accessor.tf_dataset_factory(
      file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=1024, num_epochs=1, shuffle=False),
      schema=schema)
  return np.concatenate([batch[features.LABEL_KEY].numpy().reshape(-1) for batch in dataset])


def run_fn(fn_args: FnArgs) -> None:
  """Trains the configured model and saves it with the serving signatures."""
  config = fn_args.custom_config
  # PipelineConfig.trainer_custom_config: every setting, checked (pipeline/configs.py).
  variant = model_variants.get(config['model'])
  fine_tune_epochs = config['fine_tune_epochs']
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  # Label id i is class_names[i]: the ExampleGen's sorted class folders, passed by create_pipeline.
  class_names = list(config['class_names'])
  batch_size = config['batch_size']
  cache = config['cache_images']
  hyperparameters = tuner.chosen(fn_args.hyperparameters, config)

  model = model_lib.build_model(
      num_classes=len(class_names),
      image_size=config['image_size'],
      alpha=config['alpha'],
      weights=config['weights'],
      dropout=hyperparameters[tuner.DROPOUT],
      learning_rate=hyperparameters[tuner.LEARNING_RATE],
      model=variant.name)
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch')]

  def image_datasets():
    train_ds = make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, batch_size,
                            training=True, rotation_factor=config['rotation_factor'], cache=cache,
                            augment=variant.augment)
    eval_ds = make_dataset(fn_args.eval_files, fn_args.data_accessor, tft_output, batch_size,
                           training=False, cache=cache)
    return train_ds, eval_ds

  baseline = None  # embedding.py's, when the features of a frozen base already give it
  best_epoch = None
  if config[TRAINS_ON_FEATURES]:
    num_views = len(frozen_features.augmented_views(config['rotation_factor']))
    train, eval_ = (frozen_features.read_features(files, fn_args.data_accessor, num_views)
                    for files in (fn_args.train_files, fn_args.eval_files))
    class_weight = frozen_features.class_weight_of(train[1], len(class_names),
                                                   config['class_weights'])
    per_epoch, best_epoch = frozen_features.fit_head(
        frozen_features.split_transfer_model(model), train, eval_, config['epochs'],
        hyperparameters[tuner.LEARNING_RATE], class_weight, log_dir=fn_args.model_run_dir)
    if fine_tune_epochs == 0:  # the base is final: its features are the embeddings
      baseline = embedding.baseline_from_embeddings(model, train[0][:, 0], eval_[0][:, 0])
  else:
    class_weight = frozen_features.class_weight_of(
        _labels(fn_args.train_files, fn_args.data_accessor), len(class_names),
        config['class_weights'])
    train_ds, eval_ds = image_datasets()
    per_epoch = model.fit(train_ds, validation_data=eval_ds, epochs=config['epochs'],
                          class_weight=class_weight, callbacks=callbacks, verbose=2).history
  per_epoch = {name: [float(v) for v in values] for name, values in per_epoch.items()}
  epochs_done = len(per_epoch.get('loss', []))

  if fine_tune_epochs > 0:
    train_ds, eval_ds = image_datasets()
    model_lib.unfreeze_top_of_base(model, config['fine_tune_at'], config['fine_tune_learning_rate'])
    fine_tune = model.fit(train_ds, validation_data=eval_ds,
                          initial_epoch=epochs_done,
                          epochs=epochs_done + fine_tune_epochs, class_weight=class_weight,
                          callbacks=callbacks, verbose=2)
    for name, values in fine_tune.history.items():
      per_epoch.setdefault(name, []).extend(float(v) for v in values)

  if baseline is None:  # the embedding drift baseline and OOD threshold of the final model
    baseline = embedding.fit_baseline(
        model,
        make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, batch_size,
                     training=True, cache=False, augment=False),
        make_dataset(fn_args.eval_files, fn_args.data_accessor, tft_output, batch_size,
                     training=False, cache=False))
  signatures.save_served(model, fn_args.serving_model_dir, {
      **signatures.make_serving_signatures(model, tft_output, class_names),
      **embedding.make_embedding_signature(model, baseline)})
  # Pushed with the SavedModel: the on-device model and TF Serving's warm-up requests.
  tflite_export.export(model, fn_args.serving_model_dir, config['image_size'], class_names,
                       baseline)
  warmup.write(fn_args.serving_model_dir, warmup.first_images(
      fn_args.data_accessor, fn_args.eval_files, tft_output.raw_metadata.schema))
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), 'w') as f:
    json.dump({'class_names': class_names, 'model': variant.name, 'history': per_epoch,
               'hyperparameters': hyperparameters, 'tuned': bool(fn_args.hyperparameters),
               'best_epoch': best_epoch,
               'class_weights': {class_names[c]: w for c, w in (class_weight or {}).items()}},
              f, indent=1)
