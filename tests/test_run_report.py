"""The run report's pictures and tables, each drawn from small known inputs."""
import json
import types

import numpy as np

from pipeline.report import charts, sections
from tests.report_checks import non_blank_png


def test_label_counts_chart():
  png = charts.label_counts_chart(
      {'train': {'cats': 1000, 'dogs': 1000}, 'eval': {'cats': 400, 'dogs': 400},
       'test': {'cats': 100, 'dogs': 100}})
  non_blank_png(png)


def test_training_curves_and_confusion_matrix():
  history = {'loss': [0.7, 0.4, 0.3], 'val_loss': [0.6, 0.5, 0.45],
             'accuracy': [0.6, 0.8, 0.9], 'val_accuracy': [0.65, 0.75, 0.8]}
  non_blank_png(charts.training_curves(history))
  non_blank_png(charts.confusion_matrix_chart(np.array([[90, 10], [5, 95]]), ['cats', 'dogs']))


def test_image_grid_has_one_row_per_class():
  red, blue = np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40, 3), np.uint8)
  red[..., 0], blue[..., 2] = 255, 255
  one_row = non_blank_png(charts.image_grid([('cats', [(red, '')] * 3)]))
  two_rows = non_blank_png(charts.image_grid([('cats', [(red, '')] * 3),
                                                  ('dogs', [(blue, '')] * 3)]))
  assert two_rows.height > 1.6 * one_row.height
  pixels = np.asarray(two_rows.convert('RGB')).astype(int)
  top, bottom = pixels[:two_rows.height // 2], pixels[two_rows.height // 2:]
  # Cats (red) on the top row, dogs (blue) on the bottom row, as in the tutorial's grid.
  assert ((top[..., 0] > 200) & (top[..., 2] < 50)).sum() > 1000
  assert ((bottom[..., 2] > 200) & (bottom[..., 0] < 50)).sum() > 1000
  assert ((top[..., 2] > 200) & (top[..., 0] < 50)).sum() == 0


def test_augmentation_preview_shows_six_views(real_images):
  with open(real_images['cats'][0], 'rb') as f:
    png = charts.augmentation_preview(f.read(), image_size=64, rotation_factor=0.1)
  assert non_blank_png(png).width > 4 * non_blank_png(png).height


def test_drift_table_shows_scores_or_the_cold_start(tmp_path):
  report = types.SimpleNamespace(uri=str(tmp_path))
  finding = {'feature': 'mean_brightness', 'check': 'Jensen-Shannon', 'score': 0.8624,
             'threshold': 0.2, 'flagged': True, 'detail': ''}
  (tmp_path / 'drift_report.json').write_text(json.dumps(
      {'on_drift': 'warn', 'baseline': True, 'split_pairs': {'train_train': [finding]}}))
  html = sections.drift_table(report)
  assert '<td>mean_brightness</td><td>Jensen-Shannon</td><td>0.8624</td><td>0.2</td><td>DRIFT</td>' in html
  (tmp_path / 'drift_report.json').write_text(json.dumps(
      {'on_drift': 'fail', 'baseline': False, 'split_pairs': {}}))
  assert 'no baseline yet' in sections.drift_table(report)
  assert sections.drift_table(None) == ''
