"""Trainer module (``run_fn``): raw examples -> Transform graph -> cached -> augmented -> fit.

``custom_config['model']`` picks one of the tutorial's four models (``model_variants``); it also
decides whether the training batches are augmented.
"""
import json
import os
from typing import List

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.modules import features
from components.modules import model as model_lib
from components.modules import model_variants
from components.modules import signatures

_SHUFFLE_BUFFER = 2048


def make_dataset(file_pattern: List[str],
                 data_accessor: tfx.components.DataAccessor,
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
    dataset = dataset.cache()
  if training:
    dataset = dataset.shuffle(_SHUFFLE_BUFFER, reshuffle_each_iteration=True)
  dataset = dataset.batch(batch_size)
  if training and augment:
    augmentation = model_lib.augmentation(rotation_factor)
    dataset = dataset.map(lambda x, y: (augmentation(x, training=True), y),
                          num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.prefetch(tf.data.AUTOTUNE)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
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

  train_ds = make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, batch_size,
                          training=True, rotation_factor=config['rotation_factor'], cache=cache,
                          augment=variant.augment)
  eval_ds = make_dataset(fn_args.eval_files, fn_args.data_accessor, tft_output, batch_size,
                         training=False, cache=cache)

  model = model_lib.build_model(
      num_classes=len(class_names),
      image_size=config['image_size'],
      alpha=config['alpha'],
      weights=config['weights'],
      dropout=config['dropout'],
      learning_rate=config['learning_rate'],
      model=variant.name)
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch')]
  history = model.fit(train_ds, validation_data=eval_ds, epochs=config['epochs'],
                      callbacks=callbacks, verbose=2)
  epochs_done = len(history.history.get('loss', []))
  per_epoch = {name: [float(v) for v in values] for name, values in history.history.items()}

  if fine_tune_epochs > 0:
    model_lib.unfreeze_top_of_base(model, config['fine_tune_at'], config['fine_tune_learning_rate'])
    fine_tune = model.fit(train_ds, validation_data=eval_ds,
                          initial_epoch=epochs_done,
                          epochs=epochs_done + fine_tune_epochs,
                          callbacks=callbacks, verbose=2)
    for name, values in fine_tune.history.items():
      per_epoch.setdefault(name, []).extend(float(v) for v in values)

  model.save(fn_args.serving_model_dir, save_format='tf',
             signatures=signatures.make_serving_signatures(model, tft_output, class_names))
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, 'history.json'), 'w') as f:
    json.dump({'class_names': class_names, 'model': variant.name, 'history': per_epoch}, f,
              indent=1)
