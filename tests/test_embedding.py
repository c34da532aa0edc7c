"""What the exported model carries for embedding drift and OOD scores (components/modules/embedding.py),
checked on a model whose embedding is the mean colour (tests/embedding_checks.py)."""
import numpy as np
import pytest
import tensorflow as tf

from components.modules import embedding
from components.modules import features
from components.modules import signatures
from tests import embedding_checks
from tests.conftest import TEST_IMAGE_SIZE


def test_knn_distance_is_the_cosine_distance_to_the_kth_neighbour():
  reference = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
  queries = np.array([[2, 0], [0, -3]], np.float32)
  np.testing.assert_allclose(embedding.knn_distance(queries, reference, k=1).numpy(),
                             [0.0, 1.0], atol=1e-6)
  # 2nd nearest of [2, 0]: [1, 1], cosine 1/sqrt(2); of [0, -3]: any of three at cosine 0.
  np.testing.assert_allclose(embedding.knn_distance(queries, reference, k=2).numpy(),
                             [1 - 2 ** -0.5, 1.0], atol=1e-6)
  # k beyond the reference: the farthest row ([-1, 0] and [0, 1] are opposite).
  np.testing.assert_allclose(embedding.knn_distance(queries, reference, k=10).numpy(),
                             [2.0, 2.0], atol=1e-6)


@pytest.fixture(scope='module')
def loaded(transform_output, tmp_path_factory):
  return embedding.LoadedEmbeddingModel.load(embedding_checks.save_colour_model(
      transform_output, TEST_IMAGE_SIZE, str(tmp_path_factory.mktemp('model'))))


def test_model_carries_its_baseline_and_a_calibrated_threshold(loaded):
  baseline = loaded.baseline
  assert baseline.embeddings.shape == (40, 3)  # every training picture, the mean colour
  assert baseline.eval_probabilities.shape == (100, 2)
  # The threshold is the 99 % quantile of the held-out pictures' scores, recomputed here.
  held_out_embeddings, _ = loaded.embed_images(embedding_checks.held_out_pictures())
  scores = embedding.knn_distance(held_out_embeddings, baseline.embeddings).numpy()
  assert baseline.ood_threshold == pytest.approx(np.quantile(scores, 0.99), rel=1e-4)
  assert 0 < baseline.ood_threshold < 0.1


def test_embedding_signature_flags_blue_pictures_only(loaded):
  red = embedding_checks.pictures(embedding_checks.RED, 6, 10)
  green = embedding_checks.pictures(embedding_checks.GREEN, 6, 11)
  blue = embedding_checks.pictures(embedding_checks.BLUE, 6, 12, 'PNG')
  out = loaded.embed(**{features.IMAGE_BYTES_INPUT: tf.constant(red + green + blue)})
  flags = out[embedding.OOD_FLAG_OUTPUT].numpy()
  # Calibrated at 1 % false positives: at most one of 12 new pictures like the training ones.
  assert flags[:12].sum() <= 1 and flags[12:].all(), out[embedding.OOD_SCORE_OUTPUT].numpy()
  assert out[features.CLASS_IDS_OUTPUT].numpy()[:12].tolist() == [0] * 6 + [1] * 6
  assert [n.decode() for n in out[features.CLASS_NAMES_OUTPUT].numpy()[:7]] == ['cats'] * 6 + [
      'dogs']
  assert out[embedding.EMBEDDING_OUTPUT].shape == (18, 3)
  np.testing.assert_allclose(
      out[embedding.OOD_SCORE_OUTPUT].numpy(),
      embedding.knn_distance(out[embedding.EMBEDDING_OUTPUT], loaded.baseline.embeddings).numpy(),
      rtol=1e-5)


def test_the_flag_is_the_score_above_the_threshold(loaded):
  """Red pictures ever bluer, from as blue as the training pictures (blue channel 0 to 90) to a
  little more: their scores run from below the threshold to many times it, and the flag that
  predict.py shows is exactly score > threshold, not a multiple of it."""
  images = embedding_checks.tinted_pictures(embedding_checks.RED, embedding_checks.BLUE,
                                            range(44, 62), seed=7)
  out = loaded.embed(**{features.IMAGE_BYTES_INPUT: tf.constant(images)})
  scores, flags = out[embedding.OOD_SCORE_OUTPUT].numpy(), out[embedding.OOD_FLAG_OUTPUT].numpy()
  threshold = loaded.baseline.ood_threshold
  assert flags.tolist() == (scores > threshold).tolist(), (scores, threshold)
  # The pictures test the threshold closely: below it, above it by less than twice, and far above.
  assert (scores <= threshold).any() and ((threshold < scores) & (scores < 2 * threshold)).any()
  assert (scores > 10 * threshold).any()


def test_baseline_sample_is_bounded(transform_output):
  model = embedding_checks.colour_model(TEST_IMAGE_SIZE)
  images = embedding_checks.pictures(embedding_checks.RED, 30, 5)
  dataset = embedding_checks.dataset(transform_output, images)
  baseline = embedding.fit_baseline(model, dataset, dataset, max_images=12)
  assert baseline.embeddings.shape == (12, 3)
  assert baseline.eval_probabilities.shape == (30, 2)


def test_the_baseline_pass_and_every_signature_trace_the_model_once(transform_output):
  """The Trainer's order: the baseline's pass over the images, then the signatures; the pass runs
  the model's traced function, which the signatures then reuse."""
  model = embedding_checks.colour_model(TEST_IMAGE_SIZE)
  dataset = embedding_checks.dataset(transform_output,
                                     embedding_checks.pictures(embedding_checks.RED, 20, 5))
  baseline = embedding.fit_baseline(model, dataset, dataset)
  assert model.embedding_and_logits.experimental_get_tracing_count() == 1
  signatures.make_serving_signatures(model, transform_output, embedding_checks.CLASS_NAMES)
  embedding.make_embedding_signature(model, baseline)
  assert model.embedding_and_logits.experimental_get_tracing_count() == 1


def test_older_model_without_the_signature_loads_as_none(saved_model_dir):
  assert embedding.LoadedEmbeddingModel.load(saved_model_dir) is None
