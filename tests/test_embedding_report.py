"""The run report's embedding drift part (run_results/report/embedding_section.py), from the files
EmbeddingDriftGate writes."""
import json

from ml_metadata.proto import metadata_store_pb2
import numpy as np

from components.drift import embedding_check
from components.drift import embedding_drift
from components.drift import embedding_drift_gate
from components.modules.embedding import EmbeddingBaseline
from run_results.report import embedding_section
from run_results.report.page import Page
from tests.report_checks import non_blank_png


def _report(tmp_path, content, png=None):
  (tmp_path / 'gate').mkdir()
  (tmp_path / 'gate' / embedding_drift_gate.REPORT_FILE).write_text(json.dumps(content))
  if png:
    (tmp_path / 'gate' / embedding_check.PICTURE_FILE).write_bytes(png)
  return metadata_store_pb2.Artifact(uri=str(tmp_path / 'gate'))


class _Model:  # what picture_png reads of a loaded model
  def __init__(self, rng):
    self.baseline = EmbeddingBaseline(np.abs(rng.normal(1, 0.3, (80, 8))),
                                      rng.dirichlet([1, 1], 40), 0.1)


def test_findings_and_picture(tmp_path):
  rng = np.random.default_rng(0)
  model = _Model(rng)
  new = np.abs(rng.normal(1, 0.3, (50, 8))) + np.eye(8)[2]
  drift = embedding_drift.embedding_drift(model.baseline.embeddings, new, 0.01, 0.6)
  check = embedding_check.EmbeddingCheck(drift, [drift.finding()], new, rng.dirichlet([1, 1], 50),
                                         0.2)
  png = embedding_check.picture_png(check, model)
  non_blank_png(png)
  content = {'on_drift': 'warn', 'summary': embedding_check.summary_line(check),
             'findings': [{'feature': 'embedding', 'check': 'domain classifier ROC AUC',
                           'score': drift.auc, 'threshold': 0.6, 'flagged': True,
                           'detail': drift.finding().detail}]}
  page = Page(str(tmp_path))
  part = embedding_section.embedding_drift(page, _report(tmp_path, content, png))
  assert '50 new images embedded; 20.0% of them out of distribution' in part
  assert '<td>DRIFT</td>' in part and 'data:image/png;base64,' in part
  assert page.pictures == ['embedding_drift.png']


def test_cold_start_says_so(tmp_path):
  part = embedding_section.embedding_drift(Page(str(tmp_path)), _report(tmp_path, {
      'on_drift': 'fail', 'findings': [], 'note': 'no blessed model yet (a first run)'}))
  assert 'no blessed model yet (a first run); the check passed.' in part


def test_no_gate_in_the_run_is_no_section(tmp_path):
  assert embedding_section.embedding_drift(Page(str(tmp_path)), None) == ''
