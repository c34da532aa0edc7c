"""What the exported model carries for embedding drift and out-of-distribution (OOD) scores.

The embedding of an image is what the model's ``logits`` layer reads: MobileNetV2's pooled
features (1280 values at alpha 1.0; dropout is the identity at inference), the CNNs' Dense(512).
At the end of training the Trainer computes, with the final model,

* the embeddings of a random sample (<= ``MAX_BASELINE_IMAGES``) of the training images: the
  baseline of the embedding drift test (validate.py, the pipeline's EmbeddingDriftGate);
* the embeddings and probabilities of the held-out eval split: the OOD score's threshold, the
  score's (1 - ``OOD_FALSE_POSITIVE_RATE``) quantile there, and the baseline of prediction drift.

They are saved in the SavedModel as variables (``embedding_baseline``, ``baseline_probabilities``,
``ood_threshold``), and ``serving_image_embedding`` (encoded images -> embedding, probabilities,
classes, OOD score and flag) computes the score in the graph, so a pushed model version needs no
other file. The OOD score is the cosine distance to the k-th nearest training embedding (deep
nearest neighbours, Sun et al. 2022): no distribution to assume, one matrix product per batch.
"""
import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.modules import features
from components.modules import image_budget

EMBEDDING_SIGNATURE = 'serving_image_embedding'
EMBEDDING_OUTPUT = 'embedding'
OOD_SCORE_OUTPUT = 'ood_score'
OOD_FLAG_OUTPUT = 'out_of_distribution'
MAX_BASELINE_IMAGES = 2000
OOD_FALSE_POSITIVE_RATE = 0.01
NEIGHBOURS = 10
LOGITS_LAYER = 'logits'
# Images per pass of a serving signature, whatever the request's batch. TFMA hands the Evaluator's
# model record batches that tfx_bsl grows up to 1 000 examples, and MobileNetV2 at 160 px holds
# megabytes of activations per image. serving_default at alpha 1.0, one call on 1 000 examples
# (benchmarks/results/serving_memory.md, 2 CPUs): +7.8 GiB over the loaded model uncut, +0.27 GiB
# by 32, +0.15 GiB by 16, +0.09 GiB by 8; 4-5 ms per image by 8 to 32, 14-15 ms uncut (two runs).
# 16 leaves an accelerator some batch to work on.
SERVING_CHUNK = 16
# What make_embedding_signature attaches to the model, saved with it and read by LoadedEmbeddingModel.
SAVED_ATTRIBUTES = ('embedding_baseline', 'baseline_probabilities', 'ood_threshold')


@dataclasses.dataclass(frozen=True)
class EmbeddingBaseline:
  """What the model carries: training embeddings [N, D], eval probabilities [M, C], threshold."""
  embeddings: np.ndarray
  eval_probabilities: np.ndarray
  ood_threshold: float


def embedding_and_logits_model(model: tf.keras.Model) -> tf.keras.Model:
  """images -> (embedding, logits), sharing ``model``'s layers; the embedding is the input of
  its ``logits`` layer."""
  logits = model.get_layer(LOGITS_LAYER)
  return tf.keras.Model(model.input, [logits.input, model.output], name='embedding_and_logits')


def embedding_and_logits_function(model: tf.keras.Model) -> tf.types.experimental.GenericFunction:
  """``embedding_and_logits_model`` as one tf.function of a fixed input, made once and kept on the
  model (``model.embedding_and_logits``): the baseline's pass over the images and every serving
  signature call it, so the model's graph is traced (and saved) once, and the pass runs as a
  graph (sample model, 203 images: 0.9 s with the trace, against 2.2 s layer by layer in eager)."""
  if not hasattr(model, 'embedding_and_logits'):
    embedding_and_logits = embedding_and_logits_model(model)

    @tf.function(input_signature=[tf.TensorSpec(model.input.shape, tf.float32, name='images')])
    def of_images(images):
      return embedding_and_logits(images, training=False)

    model.embedding_and_logits = of_images
  return model.embedding_and_logits


def embedding_and_logits_of_raw_images(model: tf.keras.Model
                                       ) -> tf.types.experimental.GenericFunction:
  """raw image feature [N, 1] (encoded files) -> (embedding, logits), through the Transform layer
  (``model.tft_layer``) and ``embedding_and_logits_function``, ``SERVING_CHUNK`` images at a time,
  one chunk after the other: what a signature holds at once does not grow with the request's
  batch. An image over the model's image budget (``image_budget.attach``) fails the request before
  any chunk is decoded, named by its index in the request. One tf.function, made once and kept on
  the model, which every signature calls: its loop is traced, saved and loaded once."""
  if not hasattr(model, 'embedding_and_logits_of_raw'):
    of_images = embedding_and_logits_function(model)
    width = model.get_layer(LOGITS_LAYER).input.shape[-1]
    budget = image_budget.of_model(model, as_numbers=False)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.string, name='raw_images')])
    def of_raw_images(raw_images):
      if budget is not None:  # the Transform graph checks each chunk again, by its own index
        raw_images = tf.reshape(image_budget.checked(tf.reshape(raw_images, [-1]), budget,
                                                     'request'), [-1, 1])
      chunks = (tf.shape(raw_images)[0] + SERVING_CHUNK - 1) // SERVING_CHUNK
      outputs = tuple(
          tf.TensorArray(tf.float32, size=chunks, infer_shape=False, element_shape=[None, size])
          for size in (width, model.output.shape[-1]))

      def one_chunk(i, embeddings, logits):
        chunk = raw_images[i * SERVING_CHUNK:(i + 1) * SERVING_CHUNK]
        transformed = model.tft_layer({features.IMAGE_KEY: chunk})
        chunk_embeddings, chunk_logits = of_images(transformed[features.TRANSFORMED_IMAGE_KEY])
        return i + 1, embeddings.write(i, chunk_embeddings), logits.write(i, chunk_logits)

      _, embeddings, logits = tf.while_loop(lambda i, *_: i < chunks, one_chunk, (0,) + outputs,
                                            parallel_iterations=1)
      return embeddings.concat(), logits.concat()

    model.embedding_and_logits_of_raw = of_raw_images
  return model.embedding_and_logits_of_raw


def knn_distance(embeddings: tf.Tensor, reference: tf.Tensor, k: int = NEIGHBOURS) -> tf.Tensor:
  """Cosine distance [N] of each embedding to its k-th nearest row of ``reference`` [R, D]."""
  queries = tf.math.l2_normalize(tf.cast(embeddings, tf.float32), axis=-1)
  reference = tf.math.l2_normalize(tf.cast(reference, tf.float32), axis=-1)
  similarities = tf.matmul(queries, reference, transpose_b=True)
  k = tf.minimum(k, tf.shape(reference)[0])
  return 1.0 - tf.math.top_k(similarities, k=k).values[:, -1]


def _embed(embedding_and_logits: tf.types.experimental.GenericFunction, images: tf.data.Dataset,
           max_images: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
  """(embeddings, probabilities) of the first ``max_images`` (None: all) images of (images,
  labels) batches."""
  embeddings, probabilities, count = [], [], 0
  for batch, _ in images:
    embedding, logits = embedding_and_logits(batch)
    embeddings.append(embedding.numpy())
    probabilities.append(tf.nn.softmax(logits).numpy())
    count += len(batch)
    if max_images is not None and count >= max_images:
      break
  if not embeddings:
    raise ValueError('no images to compute the embedding baseline of: the split is empty')
  return (np.concatenate(embeddings)[:max_images].astype(np.float32),
          np.concatenate(probabilities)[:max_images].astype(np.float32))


def fit_baseline(model: tf.keras.Model, shuffled_train_images: tf.data.Dataset,
                 eval_images: tf.data.Dataset,
                 max_images: int = MAX_BASELINE_IMAGES) -> EmbeddingBaseline:
  """The baseline of the trained ``model``: embeddings of <= ``max_images`` training images (the
  first of ``shuffled_train_images``), and the OOD threshold and probabilities of the eval split."""
  embedding_and_logits = embedding_and_logits_function(model)
  train_embeddings, _ = _embed(embedding_and_logits, shuffled_train_images, max_images)
  eval_embeddings, eval_probabilities = _embed(embedding_and_logits, eval_images)
  return _baseline(train_embeddings, eval_embeddings, eval_probabilities)


def baseline_from_embeddings(model: tf.keras.Model, train_embeddings: np.ndarray,
                             eval_embeddings: np.ndarray,
                             max_images: int = MAX_BASELINE_IMAGES) -> EmbeddingBaseline:
  """``fit_baseline`` from embeddings already computed with the final model's base (a frozen
  base's pooled features: frozen_features), without another pass over the images; the training
  sample is <= ``max_images`` rows drawn at random."""
  sample = np.random.default_rng(0).permutation(len(train_embeddings))[:max_images]
  logits = model.get_layer(LOGITS_LAYER)(tf.constant(eval_embeddings, tf.float32))
  return _baseline(train_embeddings[np.sort(sample)].astype(np.float32),
                   eval_embeddings.astype(np.float32), tf.nn.softmax(logits).numpy())


def _baseline(train_embeddings: np.ndarray, eval_embeddings: np.ndarray,
              eval_probabilities: np.ndarray) -> EmbeddingBaseline:
  """The OOD threshold from the eval embeddings' scores against the training sample."""
  eval_scores = knn_distance(eval_embeddings, train_embeddings).numpy()
  threshold = float(np.quantile(eval_scores, 1 - OOD_FALSE_POSITIVE_RATE))
  print(f'Embedding baseline: {len(train_embeddings)} training images; OOD threshold '
        f'{threshold:.4f} (the {1 - OOD_FALSE_POSITIVE_RATE:.0%} quantile of '
        f'{len(eval_scores)} eval images)', flush=True)
  return EmbeddingBaseline(train_embeddings, eval_probabilities, threshold)


def make_embedding_signature(model: tf.keras.Model, baseline: EmbeddingBaseline
                             ) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  """``serving_image_embedding``; call after ``signatures.make_serving_signatures`` (it attaches
  the Transform layer, the class names and the model's function that this signature reuses)."""
  model.embedding_baseline = tf.Variable(baseline.embeddings, trainable=False,
                                         name='embedding_baseline')
  model.baseline_probabilities = tf.Variable(baseline.eval_probabilities, trainable=False,
                                             name='baseline_probabilities')
  model.ood_threshold = tf.Variable(baseline.ood_threshold, trainable=False, dtype=tf.float32,
                                    name='ood_threshold')

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.IMAGE_BYTES_INPUT)])
  def serve_embedding(image_bytes):
    embedding, logits = embedding_and_logits_of_raw_images(model)(tf.reshape(image_bytes, [-1, 1]))
    class_ids = tf.argmax(logits, axis=-1)
    score = knn_distance(embedding, model.embedding_baseline)
    return {
        EMBEDDING_OUTPUT: embedding,
        features.PROBABILITIES_OUTPUT: tf.nn.softmax(logits),
        features.CLASS_IDS_OUTPUT: class_ids,
        features.CLASS_NAMES_OUTPUT: tf.gather(model.class_names, class_ids),
        OOD_SCORE_OUTPUT: score,
        OOD_FLAG_OUTPUT: score > model.ood_threshold,
    }

  return {EMBEDDING_SIGNATURE: serve_embedding.get_concrete_function()}


@dataclasses.dataclass(frozen=True)
class LoadedEmbeddingModel:
  """A saved model's embedding signature and the baseline it carries."""
  saved_model: object  # kept: the signature needs the loaded object's variables alive
  embed: object
  baseline: EmbeddingBaseline
  class_names: Tuple[str, ...]

  @classmethod
  def load(cls, model_dir: str) -> Optional['LoadedEmbeddingModel']:
    """None for a model saved before the embedding signature existed."""
    loaded = tf.saved_model.load(model_dir)
    if EMBEDDING_SIGNATURE not in loaded.signatures:
      return None
    return cls(loaded, loaded.signatures[EMBEDDING_SIGNATURE], EmbeddingBaseline(
        loaded.embedding_baseline.numpy(), loaded.baseline_probabilities.numpy(),
        float(loaded.ood_threshold.numpy())),
               tuple(name.decode('utf-8') for name in loaded.class_names.numpy()))

  def embed_images(self, images, batch_size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """(embeddings, probabilities) of a sequence of encoded images."""
    embeddings, probabilities = [], []
    for start in range(0, len(images), batch_size):
      out = self.embed(**{features.IMAGE_BYTES_INPUT: tf.constant(images[start:start + batch_size])})
      embeddings.append(out[EMBEDDING_OUTPUT].numpy())
      probabilities.append(out[features.PROBABILITIES_OUTPUT].numpy())
    return np.concatenate(embeddings), np.concatenate(probabilities)
