"""predict.py: files and folders through the serving_image_bytes signature; bad files skipped."""
import csv
import io
import json
import os
import shutil

from PIL import Image
import pytest

import predict
from tests import bombs
from tests.trees import encode


@pytest.fixture
def photo_tree(tmp_path, real_images):
  """Two real JPEGs and a PNG (one in a subfolder), a text file, an empty file, a hidden file."""
  root = tmp_path / 'photos'
  (root / 'more').mkdir(parents=True)
  shutil.copy(real_images['cats'][0], root / 'a_cat.jpg')
  shutil.copy(real_images['dogs'][0], root / 'more' / 'a_dog.jpg')
  (root / 'b_dog.png').write_bytes(encode(Image.open(real_images['dogs'][1]), 'PNG'))
  (root / 'c_notes.txt').write_text('not a picture')
  (root / 'd_empty.jpg').write_bytes(b'')
  (root / '.DS_Store').write_bytes(b'\0')
  return root


def _run(capsys, *argv):
  code = predict.main([str(arg) for arg in argv])
  out, err = capsys.readouterr()
  return code, out, err


@pytest.mark.parametrize('batch_size', [1, 2, 32])
def test_json_lines_for_every_file_bad_ones_reported(capsys, photo_tree, saved_model_dir,
                                                      batch_size):
  code, out, err = _run(capsys, photo_tree, '--model', saved_model_dir, '--format', 'json',
                        '--batch-size', batch_size)
  rows = [json.loads(line) for line in out.splitlines()]
  assert [os.path.relpath(r['path'], photo_tree) for r in rows] == [
      'a_cat.jpg', 'b_dog.png', 'c_notes.txt', 'd_empty.jpg', 'more/a_dog.jpg']
  good = [r for r in rows if 'error' not in r]
  assert len(good) == 3
  for row in good:
    assert set(row['probabilities']) == {'cats', 'dogs'}
    assert abs(sum(row['probabilities'].values()) - 1) < 1e-4
    assert row['class'] == max(row['probabilities'], key=row['probabilities'].get)
    assert row['probability'] == max(row['probabilities'].values())
  assert 'empty file' in rows[3]['error'] and 'not a decodable image' in rows[2]['error']
  assert code == 1
  assert 'skipped' in err and '2 of 5 file(s) skipped' in err and 'Traceback' not in err


def test_files_over_the_models_image_budget_are_skipped(capsys, tmp_path, real_images,
                                                        saved_model_dir):
  root = tmp_path / 'photos'
  root.mkdir()
  shutil.copy(real_images['cats'][0], root / 'a_cat.jpg')
  (root / 'b_bomb.png').write_bytes(bombs.png(20000, 20000))
  (root / 'c_bomb.jpg').write_bytes(bombs.jpeg_sized(23170, 23170))
  code, out, err = _run(capsys, root, '--model', saved_model_dir, '--format', 'json')
  rows = [json.loads(line) for line in out.splitlines()]
  assert 'class' in rows[0]
  assert rows[1]['error'] == 'too large: 20000×20000 pixels (limit 200000000)'
  assert rows[2]['error'] == 'too large: 23170×23170 pixels (limit 200000000)'
  assert code == 1 and '2 of 3 file(s) skipped: not decodable images, or too large' in err
  assert 'skipped ' + str(root / 'b_bomb.png') + ': too large: 20000×20000 pixels' in err


def test_the_budget_is_the_models(capsys, tmp_path, real_images, saved_model_dir):
  """A model that carries a stricter budget skips by it: nothing here has its own limits."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  small, large = sorted(real_images['cats'][:2], key=os.path.getsize)
  size = os.path.getsize(large)
  loaded = tf.saved_model.load(saved_model_dir)
  loaded.max_image_bytes.assign(size - 1)
  tf.saved_model.save(loaded, str(tmp_path / 'strict'), signatures=loaded.signatures)
  code, out, _ = _run(capsys, small, large, '--model', tmp_path / 'strict', '--format', 'json')
  rows = [json.loads(line) for line in out.splitlines()]
  assert 'error' not in rows[0]
  assert rows[1]['error'] == f'too large: {size} bytes (limit {size - 1})'
  assert code == 1


def test_text_and_csv_formats(capsys, photo_tree, saved_model_dir):
  code, out, _ = _run(capsys, photo_tree / 'a_cat.jpg', photo_tree / 'more', '--model',
                      saved_model_dir)
  assert code == 0
  lines = [line.split('\t') for line in out.splitlines()]
  assert [os.path.basename(path) for path, _, _ in lines] == ['a_cat.jpg', 'a_dog.jpg']
  assert all(name in ('cats', 'dogs') and 0.5 <= float(p) <= 1 for _, name, p in lines)

  code, out, _ = _run(capsys, photo_tree, '--model', saved_model_dir, '--format', 'csv')
  rows = list(csv.DictReader(io.StringIO(out)))
  assert list(rows[0]) == ['path', 'class', 'probability', 'cats', 'dogs', 'ood_score',
                           'out_of_distribution', 'error']
  assert len(rows) == 5 and sum(bool(r['error']) for r in rows) == 2
  # A model saved before the embedding signature: classified, no OOD score.
  assert {r['ood_score'] for r in rows} == {''}
  assert all(abs(float(r['cats']) + float(r['dogs']) - 1) < 1e-4 for r in rows if not r['error'])


def test_serving_dir_means_its_newest_version(tmp_path, saved_model_dir):
  serving = tmp_path / 'serving'
  for version in ('3', '12', '.staging-x'):
    shutil.copytree(saved_model_dir, serving / version)
  assert predict.resolve_model(str(serving), 'unused') == str(serving / '12')
  assert predict.resolve_model(saved_model_dir, 'unused') == saved_model_dir


@pytest.mark.parametrize('argv, message', [
    (['{tmp}/nowhere.jpg'], 'no such file or folder'),
    (['{tmp}', '--pipeline-root', '{tmp}/no_root'], 'no pushed model is recorded'),
    (['{tmp}', '--model', '{tmp}'], 'neither a SavedModel nor a serving dir'),
])
def test_nothing_to_do_exits_2_with_one_line(capsys, tmp_path, argv, message):
  (tmp_path / 'x.jpg').write_bytes(b'x')
  code, out, err = _run(capsys, *[a.format(tmp=tmp_path) for a in argv])
  assert code == 2 and out == ''
  assert message in err and 'Traceback' not in err


@pytest.fixture(scope='module')
def colour_model_dir(transform_output, tmp_path_factory):
  """Trained on red and green pictures (tests/embedding_checks.py): blue ones are out of
  distribution."""
  from tests import embedding_checks  # pylint: disable=g-import-not-at-top
  from tests.conftest import TEST_IMAGE_SIZE  # pylint: disable=g-import-not-at-top
  return embedding_checks.save_colour_model(transform_output, TEST_IMAGE_SIZE,
                                            str(tmp_path_factory.mktemp('colour_model')))


def test_out_of_distribution_flag_in_every_format(capsys, tmp_path, colour_model_dir):
  from tests import embedding_checks  # pylint: disable=g-import-not-at-top
  for name, colour, seed in (('red', embedding_checks.RED, 20), ('green', embedding_checks.GREEN,
                                                                  21),
                             ('blue', embedding_checks.BLUE, 22)):
    for i, data in enumerate(embedding_checks.pictures(colour, 2, seed)):
      (tmp_path / f'{name}_{i}.jpg').write_bytes(data)
  expected = {'blue_0.jpg': True, 'blue_1.jpg': True, 'green_0.jpg': False,
              'green_1.jpg': False, 'red_0.jpg': False, 'red_1.jpg': False}

  code, out, err = _run(capsys, tmp_path, '--model', colour_model_dir)
  assert code == 0
  rows = [line.split('\t') for line in out.splitlines()]
  assert {os.path.basename(r[0]): r[4] == 'ood' for r in rows} == expected
  assert all(float(r[3]) > 0.5 for r in rows if r[4] == 'ood')
  assert '2 of 6 image(s) out of distribution' in err

  code, out, _ = _run(capsys, tmp_path, '--model', colour_model_dir, '--format', 'json')
  rows = [json.loads(line) for line in out.splitlines()]
  assert {os.path.basename(r['path']): r['out_of_distribution'] for r in rows} == expected
  assert all(isinstance(r['ood_score'], float) for r in rows)

  code, out, _ = _run(capsys, tmp_path, '--model', colour_model_dir, '--format', 'csv')
  rows = list(csv.DictReader(io.StringIO(out)))
  assert {os.path.basename(r['path']): r['out_of_distribution'] == 'true'
          for r in rows} == expected


def test_the_flag_shown_is_the_score_above_the_models_threshold(capsys, tmp_path,
                                                                colour_model_dir):
  """Red pictures ever bluer (tests/test_embedding.py), scored from below the model's threshold to
  many times it: an image is shown out of distribution exactly when its score is above it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tests import embedding_checks  # pylint: disable=g-import-not-at-top
  for i, data in enumerate(embedding_checks.tinted_pictures(
      embedding_checks.RED, embedding_checks.BLUE, range(44, 62), seed=7)):
    (tmp_path / f'{i:02d}.jpg').write_bytes(data)
  threshold = float(tf.saved_model.load(colour_model_dir).ood_threshold.numpy())
  code, out, err = _run(capsys, tmp_path, '--model', colour_model_dir, '--format', 'json')
  assert code == 0
  rows = [json.loads(line) for line in out.splitlines()]
  assert [r['out_of_distribution'] for r in rows] == [r['ood_score'] > threshold for r in rows]
  flagged = sum(r['out_of_distribution'] for r in rows)
  assert 0 < flagged < len(rows)
  assert any(threshold < r['ood_score'] < 2 * threshold for r in rows)
  assert f'{flagged} of {len(rows)} image(s) out of distribution' in err


def test_every_class_of_a_three_class_model_in_every_format(capsys, tmp_path, transform_output):
  """N classes: every class's probability in JSON and CSV, the right class named in the text."""
  from tests import embedding_checks  # pylint: disable=g-import-not-at-top
  from tests.conftest import TEST_IMAGE_SIZE  # pylint: disable=g-import-not-at-top
  model_dir = embedding_checks.save_colour_model(
      transform_output, TEST_IMAGE_SIZE, str(tmp_path / 'model'),
      classes=embedding_checks.THREE_CLASSES)
  for name, colour in embedding_checks.THREE_CLASSES.items():
    (tmp_path / 'photos').mkdir(exist_ok=True)
    (tmp_path / 'photos' / f'{name}.jpg').write_bytes(embedding_checks.pictures(colour, 1, 5)[0])
  capsys.readouterr()  # the baseline's line, printed while the model was made

  code, out, _ = _run(capsys, tmp_path / 'photos', '--model', model_dir)
  assert code == 0
  assert {os.path.basename(r.split('\t')[0]): r.split('\t')[1] for r in out.splitlines()} == {
      'birds.jpg': 'birds', 'cats.jpg': 'cats', 'dogs.jpg': 'dogs'}
  _, out, _ = _run(capsys, tmp_path / 'photos', '--model', model_dir, '--format', 'json')
  for row in map(json.loads, out.splitlines()):
    assert list(row['probabilities']) == ['birds', 'cats', 'dogs']
    assert row['class'] == os.path.basename(row['path'])[:-4]
    assert row['probabilities'][row['class']] > 0.99
  _, out, _ = _run(capsys, tmp_path / 'photos', '--model', model_dir, '--format', 'csv')
  rows = list(csv.DictReader(io.StringIO(out)))
  assert list(rows[0])[3:6] == ['birds', 'cats', 'dogs']
  assert all(float(row[row['class']]) > 0.99 for row in rows)
