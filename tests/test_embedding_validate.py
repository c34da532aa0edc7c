"""validate.py's embedding and prediction drift, with a model whose answers are known
(tests/embedding_checks.py: trained on red 'cats' and green 'dogs'; blue pictures are unlike its
training data)."""
import os

import pytest

import validate
from benchmarks import drift_benchmark
from components.drift import embedding_drift
from tests import embedding_checks
from tests.conftest import TEST_IMAGE_SIZE
from tests.report_checks import non_blank_png

BEAM_ARGS = ['--beam-arg=--direct_num_workers=1']


def _tree(root, colours, seed):
  """ROOT/cats and ROOT/dogs with 30 JPEGs each, of the given colours."""
  for offset, (name, colour) in enumerate(zip(('cats', 'dogs'), colours)):
    os.makedirs(os.path.join(root, name))
    for i, data in enumerate(embedding_checks.pictures(colour, 30, seed + offset)):
      with open(os.path.join(root, name, f'{i}.jpg'), 'wb') as f:
        f.write(data)
  return str(root)


@pytest.fixture(scope='module')
def setup(transform_output, tmp_path_factory):
  """(the colour model, validate.py's baseline flags of red and green pictures)."""
  work = tmp_path_factory.mktemp('embedding_validate')
  model_dir = embedding_checks.save_colour_model(transform_output, TEST_IMAGE_SIZE,
                                                 str(work / 'model'))
  baseline = _tree(work / 'baseline', (embedding_checks.RED, embedding_checks.GREEN), 30)
  return model_dir, drift_benchmark.make_baseline(baseline, str(work), ['--direct_num_workers=1'])


def _validate(data_root, setup, output_dir, capsys):
  model_dir, baseline_flags = setup
  status = validate.main(['--data-root', data_root, '--output-dir', str(output_dir), '--model',
                          model_dir, *baseline_flags, *BEAM_ARGS])
  report = capsys.readouterr().out
  rows = {line.split()[0]: line for line in report.splitlines()
          if line.startswith((embedding_drift.EMBEDDING_FEATURE, 'predicted',
                              embedding_drift.CONFIDENCE_FEATURE))}
  return status, report, rows


def test_pictures_like_the_training_ones_pass(setup, tmp_path, capsys):
  data_root = _tree(tmp_path / 'new', (embedding_checks.RED, embedding_checks.GREEN), 50)
  status, report, rows = _validate(data_root, setup, tmp_path / 'report', capsys)
  assert status == validate.EXIT_CLEAN, report
  assert set(rows) == {'embedding', 'predicted', 'confidence'}, report
  assert all(row.endswith('ok') or ' ok:' in row for row in rows.values()), report
  assert '60 new images embedded; 0.0% of them out of distribution' in report
  non_blank_png((tmp_path / 'report' / 'embedding_drift.png').read_bytes())
  assert 'embedding_drift.png' in (tmp_path / 'report' / 'report.html').read_text()
  assert not (tmp_path / 'report' / 'embedding_sample.tfrecord').exists()


def test_blue_pictures_are_embedding_drift(setup, tmp_path, capsys):
  # Blue 'cats', green 'dogs': half of the pictures show something the model never saw.
  data_root = _tree(tmp_path / 'new', (embedding_checks.BLUE, embedding_checks.GREEN), 60)
  status, report, rows = _validate(data_root, setup, tmp_path / 'report', capsys)
  assert status == validate.EXIT_DRIFT, report
  assert 'DRIFT' in rows['embedding'] and 'MMD p-value 0.00' in rows['embedding'], report
  assert '50.0% of them out of distribution' in report


def test_without_a_model_it_says_so(setup, tmp_path, capsys):
  _, baseline_flags = setup
  data_root = _tree(tmp_path / 'new', (embedding_checks.RED, embedding_checks.GREEN), 70)
  validate.main(['--data-root', data_root, '--output-dir', str(tmp_path / 'report'),
                 *baseline_flags, *BEAM_ARGS])
  assert 'embedding and prediction drift: not checked (pass --model' in capsys.readouterr().out


def test_a_model_that_is_not_there_is_a_usage_error(setup, tmp_path, capsys):
  _, baseline_flags = setup
  data_root = _tree(tmp_path / 'new', (embedding_checks.RED, embedding_checks.GREEN), 80)
  status = validate.main(['--data-root', data_root, '--model', str(tmp_path / 'nowhere'),
                          '--output-dir', str(tmp_path / 'report'), *baseline_flags])
  err = capsys.readouterr().err
  assert status == validate.EXIT_USAGE and 'neither a SavedModel' in err


def test_one_image_is_too_few_and_says_so(setup, tmp_path, capsys):
  model_dir, baseline_flags = setup
  for name in ('cats', 'dogs'):
    (tmp_path / 'new' / name).mkdir(parents=True)
  (tmp_path / 'new' / 'cats' / 'a.jpg').write_bytes(
      embedding_checks.pictures(embedding_checks.BLUE, 1, 90)[0])
  (tmp_path / 'new' / 'dogs' / 'b.jpg').write_bytes(b'not a picture')  # skipped
  validate.main(['--data-root', str(tmp_path / 'new'), '--output-dir', str(tmp_path / 'report'),
                 '--model', model_dir, *baseline_flags, *BEAM_ARGS])
  assert 'not checked (1 image(s); the test needs 2)' in capsys.readouterr().out


def test_three_classes_label_and_prediction_drift_name_the_class(transform_output, tmp_path,
                                                                  capsys):
  """N classes: new data without any 'birds' (blue pictures) is label drift and prediction drift,
  and the report says which class moved."""
  classes = embedding_checks.THREE_CLASSES
  model_dir = embedding_checks.save_colour_model(transform_output, TEST_IMAGE_SIZE,
                                                 str(tmp_path / 'model'), classes=classes)

  def tree(root, names, seed):
    for offset, name in enumerate(names):
      os.makedirs(os.path.join(root, name))
      for i, data in enumerate(embedding_checks.pictures(classes[name], 30, seed + offset)):
        with open(os.path.join(root, name, f'{i}.jpg'), 'wb') as f:
          f.write(data)
    return str(root)

  baseline = drift_benchmark.make_baseline(tree(tmp_path / 'baseline', list(classes), 40),
                                           str(tmp_path), ['--direct_num_workers=1'])
  new = tree(tmp_path / 'new', ['cats', 'dogs'], 50)
  status = validate.main(['--data-root', new, '--output-dir', str(tmp_path / 'report'),
                          '--model', model_dir, *baseline, *BEAM_ARGS])
  report = capsys.readouterr().out
  assert status == validate.EXIT_DRIFT, report
  rows = {line.split()[0]: line for line in report.splitlines() if line.strip()}
  assert 'DRIFT' in rows['label_name'], report
  assert 'DRIFT: birds: 33% -> 0%' in rows['predicted'], report
