"""predict.py's engines: the TFLite one, without TensorFlow, answers as the SavedModel.

Both engines classify the same files through predict.main, with models whose right answers are
known (tests/embedding_checks.py), saved and exported as the Trainer saves them: the colour model
on coloured pictures, among them the held-out ones whose scores set the out-of-distribution
threshold (so that some lie just above it and some just below), pictures of an unknown colour,
PNGs and real photos; and a model that tells which half of a picture is bright on
pictures stored turned or mirrored with an EXIF orientation, as phones save them. Classes and
OOD flags must be equal, probabilities and scores equal up to rounding. A fresh interpreter then
classifies through the latest push recorded in MLMD and must not have imported TensorFlow.
"""
import io
import json
import os
import shutil
import subprocess
import sys

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from PIL import Image
import numpy as np
import pytest
import tensorflow as tf

import predict
from components.image_example_gen import image_properties
from components.modules import embedding
from components.modules import exif_orientation
from components.modules import features
from components.modules import tflite_model
from tests import embedding_checks
from tests.conftest import REPO_ROOT, TEST_IMAGE_SIZE
from tests.test_exif_orientation import ORIENTATIONS, tagged_like_a_phone
from tests.trees import encode

# Modules the TFLite engine must not load: each costs seconds and hundreds of MB at start.
HEAVY_MODULES = ('tensorflow', 'tfx', 'apache_beam', 'tensorflow_transform', 'tf_keras')


@pytest.fixture(scope='module')
def colour_dir(transform_output, real_images, tmp_path_factory):
  """(the colour model with its TFLite copy, a folder of pictures to classify: held-out ones, blue
  ones, green PNGs, real photos)."""
  model_dir = embedding_checks.save_colour_model(
      transform_output, TEST_IMAGE_SIZE, str(tmp_path_factory.mktemp('colour')), tflite=True)
  folder = tmp_path_factory.mktemp('pictures')
  for i, data in enumerate(embedding_checks.held_out_pictures()
                           + embedding_checks.pictures(embedding_checks.BLUE, 4, 9)
                           + embedding_checks.pictures(embedding_checks.GREEN, 4, 10, 'PNG')):
    (folder / f'picture_{i:03d}.{"png" if i >= 104 else "jpg"}').write_bytes(data)
  for name, paths in real_images.items():
    for path in paths[:3]:
      shutil.copy(path, folder)
  return model_dir, str(folder)


def upright_model(image_size: int) -> tf.keras.Model:
  """'cats' when a picture's top half is brighter than its bottom half, 'dogs' the other way up;
  about 50/50 for a picture on its side. Its embedding is the top half's mean colour minus the
  bottom half's."""
  images = tf.keras.Input((image_size, image_size, 3), name=features.TRANSFORMED_IMAGE_KEY)
  half = image_size // 2
  top, bottom = (tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Cropping2D(crop)(images))
                 for crop in (((0, half), (0, 0)), ((half, 0), (0, 0))))
  difference = tf.keras.layers.Subtract()([top, bottom])
  logits = tf.keras.layers.Dense(2, name=embedding.LOGITS_LAYER)(difference)
  model = tf.keras.Model(images, logits)
  model.get_layer(embedding.LOGITS_LAYER).set_weights(
      [np.array([[5, -5]] * 3, np.float32), np.zeros(2, np.float32)])
  return model


def half_bright(top_bright: bool, seed: int) -> Image.Image:
  """Noise, 40 tall and 48 wide, bright in one half and dark in the other."""
  rng = np.random.RandomState(seed)
  pixels = rng.randint(0, 60, (40, 48, 3)).astype(np.uint8)
  pixels[(slice(0, 20) if top_bright else slice(20, 40))] += 180
  return Image.fromarray(pixels)


@pytest.fixture(scope='module')
def upright_dir(transform_output, tmp_path_factory):
  """(the upright model with its TFLite copy, a folder of pictures stored in each of the eight
  EXIF orientations, the class of each picture's upright view)."""
  pictures = lambda seeds, top: [encode(half_bright(top, seed)) for seed in seeds]
  model_dir = embedding_checks.save_with_baseline(
      upright_model(TEST_IMAGE_SIZE), transform_output, TEST_IMAGE_SIZE,
      str(tmp_path_factory.mktemp('upright')), embedding_checks.CLASS_NAMES,
      pictures(range(10), True) + pictures(range(10), False),
      pictures(range(10, 20), True) + pictures(range(10, 20), False), tflite=True)
  folder, expected = tmp_path_factory.mktemp('phone'), {}
  for top_bright in (True, False):
    for orientation in ORIENTATIONS:
      name = f"{'top' if top_bright else 'bottom'}_{orientation}.jpg"
      (folder / name).write_bytes(tagged_like_a_phone(half_bright(top_bright, orientation),
                                                      orientation))
      expected[name] = 'cats' if top_bright else 'dogs'
  return model_dir, str(folder), expected


def _rows(capsys, *argv):
  code = predict.main([str(arg) for arg in argv] + ['--format', 'json'])
  out, err = capsys.readouterr()
  assert code == 0, err
  return {os.path.basename(row['path']): row for row in map(json.loads, out.splitlines())}, err


def _assert_same_answers(capsys, model_dir: str, folder: str):
  """Both engines on ``folder``: equal classes and flags, probabilities and scores within 1e-3;
  returns the SavedModel engine's rows. Both decode to the same pixels and these models' weights
  are exact in float16, but the converter stores the pixels signature's 1 / 127.5 in float16
  too: the scaled pixels are off by up to 3e-5, a score of a photo by up to ~2e-4."""
  tflite, err = _rows(capsys, folder, '--model', model_dir)
  assert 'engine tflite' in err  # the default for a model with the TFLite copy
  saved_model, err = _rows(capsys, folder, '--model', model_dir, '--engine', 'savedmodel')
  assert 'engine savedmodel' in err
  assert sorted(tflite) == sorted(saved_model)
  for name, expected in saved_model.items():
    got = tflite[name]
    assert (got['class'], got['out_of_distribution']) == (
        expected['class'], expected['out_of_distribution']), (name, got, expected)
    np.testing.assert_allclose(list(got['probabilities'].values()),
                               list(expected['probabilities'].values()), atol=1e-3, err_msg=name)
    np.testing.assert_allclose(got['ood_score'], expected['ood_score'], atol=1e-3, err_msg=name)
  return saved_model


def test_tflite_engine_flags_as_the_savedmodel_around_the_threshold(capsys, colour_dir):
  model_dir, folder = colour_dir
  rows = _assert_same_answers(capsys, model_dir, folder)
  threshold = float(tf.saved_model.load(model_dir).ood_threshold.numpy())
  assert predict.TFLiteClassifier(model_dir).ood_threshold == threshold
  # Scores close to the threshold on both sides: one ignored, or scaled by 10 %, changes a flag.
  scores = np.array([row['ood_score'] for row in rows.values()])
  assert ((scores > threshold) & (scores < 1.1 * threshold)).any()
  assert ((scores <= threshold) & (scores > threshold / 1.1)).any()
  flagged = {name for name, row in rows.items() if row['out_of_distribution']}
  assert {f'picture_{i}.jpg' for i in range(100, 104)} <= flagged  # blue


def test_both_engines_see_phone_pictures_upright(capsys, upright_dir):
  model_dir, folder, expected = upright_dir
  rows = _assert_same_answers(capsys, model_dir, folder)
  assert {name: row['class'] for name, row in rows.items()} == expected
  assert all(row['probability'] > 0.99 for row in rows.values())


def test_pillow_decodes_as_the_transform_graph(real_images):
  """The TFLite engine's decode (Pillow) gives the Transform graph's upright pixels, bit for bit:
  real photos, phone copies in every EXIF orientation, a progressive, a 4:2:0, a grey JPEG, PNG,
  GIF and BMP."""
  photo = Image.open(real_images['cats'][1])
  files = [open(path, 'rb').read() for paths in real_images.values() for path in paths]
  files += [tagged_like_a_phone(photo, orientation) for orientation in ORIENTATIONS]
  files += [encode(photo, 'JPEG'), encode(photo.convert('L'), 'JPEG'),
            encode(photo, 'PNG'), encode(photo, 'GIF'), encode(photo, 'BMP')]
  progressive = io.BytesIO()
  photo.save(progressive, 'JPEG', progressive=True, quality=80, subsampling=2)
  files.append(progressive.getvalue())
  for i, data in enumerate(files):
    expected = exif_orientation.decode_upright(tf.constant(data)).numpy()
    np.testing.assert_array_equal(image_properties.upright_pixels(data), expected, err_msg=str(i))


def test_ood_score_in_numpy_is_the_savedmodels():
  rng = np.random.default_rng(0)
  reference = rng.normal(size=(30, 16)).astype(np.float32)
  embeddings = np.concatenate([rng.normal(size=(5, 16)), reference[:2] * 3]).astype(np.float32)
  for k in (1, 10, 40):  # 40: more neighbours than the reference has rows
    baseline = tflite_model.OODBaseline(tflite_model.unit_rows(reference), 0.5, k)
    np.testing.assert_allclose(baseline.scores(embeddings),
                               embedding.knn_distance(embeddings, reference, k).numpy(),
                               atol=1e-6)


def test_default_engine_is_the_savedmodel_without_a_tflite_copy(capsys, saved_model_dir,
                                                                  real_images):
  image = real_images['cats'][0]
  assert predict.main([image, '--model', saved_model_dir]) == 0
  assert 'engine savedmodel' in capsys.readouterr().err
  assert predict.main([image, '--model', saved_model_dir, '--engine', 'tflite']) == 2
  out, err = capsys.readouterr()
  assert out == '' and 'has no TFLite model with out-of-distribution data' in err
  assert '--engine savedmodel' in err and 'Traceback' not in err


def test_tflite_engine_never_imports_tensorflow(upright_dir, tmp_path):
  """In a fresh interpreter, as a user runs it: the serving dir found through the latest push in
  MLMD, a folder classified (with a file that is no image), and none of TensorFlow, TFX or Beam
  loaded."""
  model_dir, folder, _ = upright_dir
  serving_dir = tmp_path / 'serving'
  shutil.copytree(model_dir, serving_dir / '7')
  shutil.copytree(folder, tmp_path / 'pictures')
  (tmp_path / 'pictures' / 'notes.txt').write_text('not a picture')
  root = tmp_path / 'pipeline_root'
  root.mkdir()
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(root / 'metadata.sqlite')
  store = metadata_store.MetadataStore(config)
  pushed = metadata_store_pb2.Artifact(
      type_id=store.put_artifact_type(metadata_store_pb2.ArtifactType(name='PushedModel')))
  pushed.custom_properties['pushed'].int_value = 1
  pushed.custom_properties['pushed_destination'].string_value = str(serving_dir / '7')
  store.put_artifacts([pushed])
  script = ('import json, sys, predict; code = predict.main(sys.argv[1:]); '
            f'print(json.dumps([code, [m for m in {HEAVY_MODULES!r} if m in sys.modules]]), '
            'file=sys.stderr)')
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')]))
  done = subprocess.run([sys.executable, '-c', script, str(tmp_path / 'pictures'),
                         '--pipeline-root', str(root)], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=120, check=False)
  code, loaded = json.loads(done.stderr.strip().splitlines()[-1])
  assert f"model: {serving_dir / '7'}; engine tflite;" in done.stderr
  assert code == 1 and 'skipped' in done.stderr  # notes.txt
  assert len(done.stdout.splitlines()) == len(os.listdir(folder))
  assert loaded == [], f'the TFLite engine imported {loaded}'


def test_tflite_engine_skips_files_over_the_models_budget(capsys, colour_dir, tmp_path,
                                                          real_images):
  """The budget the model was built with, from its TFLite contract: a bomb is skipped from its
  header, as the SavedModel engine skips it, and a stricter budget in the contract is the one
  used."""
  from tests import bombs  # pylint: disable=g-import-not-at-top
  model_dir, _ = colour_dir
  with open(tflite_model.folder_file(model_dir, tflite_model.CONTRACT_FILE)) as f:
    contract = json.load(f)
  assert (contract['max_image_pixels'], contract['max_image_bytes']) == (200_000_000, 100_000_000)
  (tmp_path / 'photos').mkdir()
  shutil.copy(real_images['cats'][0], tmp_path / 'photos' / 'a_cat.jpg')
  (tmp_path / 'photos' / 'b_bomb.png').write_bytes(bombs.png(20000, 20000))
  for engine in ('tflite', 'savedmodel'):
    code = predict.main([str(tmp_path / 'photos'), '--model', model_dir, '--engine', engine,
                         '--format', 'json'])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and 'class' in rows[0], engine
    assert rows[1]['error'] == 'too large: 20000×20000 pixels (limit 200000000)', engine
  strict = tmp_path / 'strict'
  shutil.copytree(model_dir, strict)
  contract['max_image_bytes'] = os.path.getsize(real_images['cats'][0]) - 1
  with open(tflite_model.folder_file(str(strict), tflite_model.CONTRACT_FILE), 'w') as f:
    json.dump(contract, f)
  code = predict.main([str(tmp_path / 'photos' / 'a_cat.jpg'), '--model', str(strict),
                       '--engine', 'tflite', '--format', 'json'])
  (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  # Its only file skipped: nothing was classified, exit status 2.
  assert code == 2 and row['error'].startswith('too large: ') and 'bytes (limit' in row['error']
