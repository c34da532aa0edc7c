"""The run report's pictures and tables, each drawn from small known inputs: the numbers behind
every picture are read back from its matplotlib figure."""
import base64
import json
import types

from matplotlib import figure as matplotlib_figure
import numpy as np
from PIL import Image
import pytest

from run_results.report import charts, sections
from tests.report_checks import assert_report_renders, browser_screenshot, non_blank_png


@pytest.fixture
def figures(monkeypatch):
  """Every matplotlib figure saved as a picture during the test, in order."""
  saved = []
  savefig = matplotlib_figure.Figure.savefig

  def keep_and_save(figure, *args, **kwargs):
    saved.append(figure)
    return savefig(figure, *args, **kwargs)

  monkeypatch.setattr(matplotlib_figure.Figure, 'savefig', keep_and_save)
  return saved


def test_label_counts_chart(figures):
  counts = {'train': {'cats': 1000, 'dogs': 600}, 'eval': {'cats': 400, 'dogs': 300},
            'test': {'cats': 100, 'dogs': 90}}
  non_blank_png(charts.label_counts_chart(counts))
  (axis,) = figures[0].axes
  splits = [label.get_text() for label in axis.get_xticklabels()]
  class_names = axis.get_legend_handles_labels()[1]
  assert sorted(splits) == sorted(counts) and class_names == ['cats', 'dogs']
  drawn = {name: dict(zip(splits, [bar.get_height() for bar in bars]))
           for name, bars in zip(class_names, axis.containers)}
  assert drawn == {name: {split: counts[split][name] for split in counts} for name in class_names}
  # Each bar is labelled with its count.
  assert sorted(text.get_text() for text in axis.texts) == sorted(
      str(n) for per_class in counts.values() for n in per_class.values())


def test_training_curves(figures):
  history = {'loss': [0.7, 0.4, 0.3], 'val_loss': [0.6, 0.5, 0.45],
             'accuracy': [0.6, 0.8, 0.9], 'val_accuracy': [0.65, 0.75, 0.8]}
  non_blank_png(charts.training_curves(history))
  drawn = {(axis.get_title(), line.get_label()): (list(line.get_xdata()), list(line.get_ydata()))
           for axis in figures[0].axes for line in axis.get_lines()}
  epochs = [1, 2, 3]
  assert drawn == {('loss', 'train'): (epochs, history['loss']),
                   ('loss', 'eval'): (epochs, history['val_loss']),
                   ('accuracy', 'train'): (epochs, history['accuracy']),
                   ('accuracy', 'eval'): (epochs, history['val_accuracy'])}


def test_confusion_matrix_chart(figures):
  matrix = np.array([[90, 10], [5, 95]])  # rows: actual cats, dogs; columns: predicted
  non_blank_png(charts.confusion_matrix_chart(matrix, ['cats', 'dogs']))
  (axis,) = figures[0].axes
  np.testing.assert_array_equal(axis.images[0].get_array(), matrix)
  assert (axis.get_xlabel(), axis.get_ylabel()) == ('predicted', 'actual')
  assert [t.get_text() for t in axis.get_xticklabels()] == ['cats', 'dogs']
  assert [t.get_text() for t in axis.get_yticklabels()] == ['cats', 'dogs']
  cells = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text()
           for text in axis.texts}  # (actual row, predicted column): the count written there
  assert cells == {(0, 0): '90', (0, 1): '10', (1, 0): '5', (1, 1): '95'}


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


def test_augmentation_preview_shows_the_original_and_five_different_views(real_images, figures):
  with open(real_images['cats'][0], 'rb') as f:
    png = charts.augmentation_preview(f.read(), image_size=64, rotation_factor=0.1)
  assert non_blank_png(png).width > 4 * non_blank_png(png).height
  panels = [(axis.get_title(), axis.images[0].get_array()) for axis in figures[0].axes
            if axis.images]
  assert [title for title, _ in panels] == ['original'] + [f'random {i}' for i in range(1, 6)]
  assert all(image.shape == (64, 64, 3) for _, image in panels)
  for i, (_, image) in enumerate(panels):
    for _, other in panels[i + 1:]:
      assert not np.array_equal(image, other), 'two panels show the same picture'


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


def _page(tmp_path, pictures, linked):
  """A report page of the pictures {file name: png}, linked to their files where ``linked``."""
  parts = []
  for name, png in pictures.items():
    (tmp_path / name).write_bytes(png)
    img = f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="">'
    parts.append(f'<p><a href="{name}">{img}</a></p>' if name in linked else f'<p>{img}</p>')
  path = tmp_path / 'report.html'
  path.write_text('<html><body><h2>Data</h2>' + ''.join(parts) + '</body></html>')
  return str(path)


def test_report_check_finds_a_picture_without_a_link(tmp_path):
  chart = charts.label_counts_chart({'train': {'cats': 3, 'dogs': 2}})
  matrix = charts.confusion_matrix_chart(np.array([[3, 1], [0, 2]]), ['cats', 'dogs'])
  pictures = {'counts.png': chart, 'matrix.png': matrix}
  assert assert_report_renders(_page(tmp_path, pictures, linked=pictures)) == ['Data']
  with pytest.raises(AssertionError, match='2 pictures, links'):
    assert_report_renders(_page(tmp_path, pictures, linked=['counts.png']))


def test_report_renders_in_a_browser(tmp_path):
  chart = charts.label_counts_chart({'train': {'cats': 3, 'dogs': 2}})
  path = _page(tmp_path, {'counts.png': chart}, linked=['counts.png'])
  screenshot = tmp_path / 'page.png'
  browser_screenshot(path, str(screenshot))  # skipped without Chromium, except in CI
  pixels = np.asarray(Image.open(screenshot).convert('RGB')).astype(int)
  for colour in ((31, 119, 180), (255, 127, 14)):  # matplotlib's first two colours: the bars
    assert (np.abs(pixels - colour).sum(axis=-1) < 30).sum() > 500, colour


def test_the_data_section_shows_a_row_of_every_class_however_the_examples_are_ordered(tmp_path):
  """Three classes whose training examples come in class order, 500 of the first class before
  any other (as the ExampleGen may write them): every class's row holds its own pictures."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  from run_results.report.page import Page  # pylint: disable=g-import-not-at-top
  from tests.trees import encode  # pylint: disable=g-import-not-at-top
  colours = {'birds': (0, 0, 255), 'cats': (255, 0, 0), 'dogs': (0, 255, 0)}
  split = tmp_path / 'examples' / 'Split-train'
  split.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(split / 'data.gz'), options='GZIP') as writer:
    for label, (name, count) in enumerate((('birds', 500), ('cats', 8), ('dogs', 8))):
      image = encode(Image.new('RGB', (40, 40), colours[name]))
      for _ in range(count):
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        })).SerializeToString())
  (tmp_path / 'examples' / 'image_summary.json').write_text(json.dumps({
      'images_used': 516, 'files_seen': 516, 'files_skipped': 0, 'skipped': [],
      'counts': {'train': {'birds': 500, 'cats': 8, 'dogs': 8}}}))
  page = Page(str(tmp_path))
  shown = sections.data(page, types.SimpleNamespace(uri=str(tmp_path / 'examples')),
                        list(colours))
  assert len(shown) == 3 * sections.GRID_COLUMNS
  grid = np.asarray(Image.open(tmp_path / 'samples.png').convert('RGB')).astype(int)
  for row, colour in enumerate(colours.values()):
    band = grid[row * grid.shape[0] // 3:(row + 1) * grid.shape[0] // 3]
    matches = (np.abs(band - colour).sum(axis=-1) < 40).sum()
    assert matches > 3000, (row, colour, matches)  # every class's row holds its pictures
