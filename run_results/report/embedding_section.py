"""The run report's part on what the photos show: EmbeddingDriftGate's findings and picture."""
import html
import json
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
import tensorflow as tf

from components.drift.embedding_check import PICTURE_FILE
from components.drift.embedding_drift_gate import REPORT_FILE
from run_results.report.page import Page, table


def embedding_drift(page: Page, report: Optional[metadata_store_pb2.Artifact]) -> str:
  """The gate's verdict, its table (embedding, predicted class, confidence) and its picture."""
  if report is None:
    return ''
  with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE)) as f:
    content = json.load(f)
  title = '<h3>What the photos show: embeddings against the latest blessed model</h3>'
  if not content['findings']:
    return f'{title}<p>{html.escape(content["note"])}; the check passed.</p>'
  rows = [[r['feature'], r['check'], f"{r['score']:.4f}", r['threshold'],
           'DRIFT' if r['flagged'] else 'ok', r['detail']] for r in content['findings']]
  picture_path = os.path.join(report.uri, PICTURE_FILE)
  with tf.io.gfile.GFile(picture_path, 'rb') as f:
    picture = page.picture('embedding_drift.png', f.read(),
                           'baseline vs new embeddings and confidence histograms')
  return (f'{title}<p>{html.escape(content["summary"])}; the run stops on embedding drift only '
          f'(--on-drift {html.escape(content["on_drift"])}).</p>'
          + table(['feature', 'check', 'score', 'threshold', 'verdict', 'detail'], rows) + picture)
