"""EmbeddingDriftGate: stops a run whose training images show something else than the last
blessed model's did, before Transform, as DriftGate does for the image properties.

It embeds a random sample of this run's training split with the latest blessed model (a resolver
finds it in MLMD) and compares it with the training embeddings that model carries, with the
test of components/drift/embedding_drift.py; prediction drift (the blessed model's classes and
confidence on these images) is reported beside it. It gates on the embedding test alone: the
new training split may hold images the blessed model was trained on, whose confidence is higher
than on the held-out images of the prediction baseline, so prediction drift would be a false
alarm there. A cold start (no blessed model yet) and a blessed model saved before models carried
an embedding baseline pass and say so.
"""
import dataclasses
import json
import os
from typing import List

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact
from tfx.utils import path_utils

from components.drift import embedding_check
from components.drift.drift_comparison import format_report
from components.drift.drift_thresholds import DriftThresholds
from components.modules import features
from components.modules.embedding import LoadedEmbeddingModel

REPORT_FILE = 'embedding_drift_report.json'
COMPARED_SPLIT = 'train'


class EmbeddingDriftError(ValueError):
  """The new training images' embeddings differ from the blessed model's training images'."""


class EmbeddingDriftReport(Artifact):
  """The embedding and prediction drift findings of a run, and their picture."""
  # Kubeflow V2 imports the class by '<module>.<Class>'; the ``components`` package re-exports it.
  TYPE_NAME = 'components.EmbeddingDriftReport'


def sample_images(examples: types.Artifact, split: str, count: int) -> List[bytes]:
  """A random sample (fixed seed) of ``count`` encoded images of a split of ``examples``."""
  pattern = os.path.join(artifact_utils.get_split_uri([examples], split), '*')
  records = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type='GZIP')
  spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
  images = (records.shuffle(10 * count, seed=0)
            .map(lambda record: tf.io.parse_single_example(record, spec)[features.IMAGE_KEY])
            .take(count))
  return [image.numpy() for image in images]


def _write_report(report: types.Artifact, content: dict) -> None:
  with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), 'w') as f:
    json.dump(content, f, indent=1)


@component
def EmbeddingDriftGate(  # pylint: disable=invalid-name
    examples: InputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[EmbeddingDriftReport],
    on_drift: Parameter[str],
    embedding_p_value: Parameter[float],
    embedding_auc: Parameter[float],
    label_linf: Parameter[float],
    confidence_js: Parameter[float],
    model: InputArtifact[standard_artifacts.Model] = None,
) -> None:
  """Embeds this run's training images with the latest blessed ``model`` and fails the run on
  embedding drift when ``on_drift`` is 'fail' ('warn' only logs)."""
  content = {'on_drift': on_drift, 'model': None, 'findings': []}
  loaded = None
  if model is None:
    content['note'] = 'no blessed model yet (a first run): nothing to compare with'
  else:
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    content['model'] = model_dir
    loaded = LoadedEmbeddingModel.load(model_dir)
    if loaded is None:
      content['note'] = ('the blessed model carries no embedding baseline (saved before models '
                         'stored one): nothing to compare with')
  report.set_int_custom_property('has_baseline', int(loaded is not None))
  if loaded is None:
    logging.info('Embedding drift check: %s; the check passes.', content['note'])
    report.set_int_custom_property('drifted', 0)
    _write_report(report, content)
    return

  thresholds = dataclasses.replace(DriftThresholds(), embedding_p_value=embedding_p_value,
                                   embedding_auc=embedding_auc, label_linf=label_linf,
                                   confidence_js=confidence_js)
  images = sample_images(examples, COMPARED_SPLIT, embedding_check.MAX_NEW_IMAGES)
  check = embedding_check.check_images(loaded, images, thresholds)
  drifted = check.drift.drifted
  content.update(findings=[dataclasses.asdict(row) for row in check.findings],
                 summary=embedding_check.summary_line(check), gates_on='embedding',
                 drifted=drifted)
  _write_report(report, content)
  with tf.io.gfile.GFile(os.path.join(report.uri, embedding_check.PICTURE_FILE), 'wb') as f:
    f.write(embedding_check.picture_png(check, loaded))
  report.set_int_custom_property('drifted', int(drifted))
  logging.info('Embedding drift check of the %s split against the blessed model %s (%s):\n%s',
               COMPARED_SPLIT, content['model'], content['summary'], format_report(check.findings))
  if not drifted:
    return
  finding = check.findings[0]
  summary = (f'domain classifier ROC AUC {finding.score:.3f} >= {finding.threshold}, '
             f'{finding.detail}')
  if on_drift == 'warn':
    logging.warning('EmbeddingDriftGate: the training images drifted from the blessed model\'s '
                    '(%s); training anyway (--on-drift warn).', summary)
    return
  raise EmbeddingDriftError(
      f'the training images show something else than the blessed model\'s training images '
      f'({summary}). Check the new images (python validate.py shows the embeddings and writes the '
      'picture; a failed step keeps no output), or accept them with --on-drift warn or higher '
      '--drift-embedding-auc.')
