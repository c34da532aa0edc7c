"""A --weights file that does not fit the model stops the run in seconds, with one line."""
import os
import re
import time

import h5py
import numpy as np
import pytest

import local_runner
from components.modules import weights_file
from tests.conftest import SHARED, WEIGHTS_035 as ALPHA_035
from tests.trees import SAMPLE_DATA

ALPHA_100 = os.path.join(SHARED, 'weights', 'mobilenet_v2_1.0_160_no_top_partly_dogs_finetuned.h5')
needs_shared = pytest.mark.skipif(not os.path.exists(ALPHA_035), reason='../shared/weights absent')


def _tiny_mobilenet_file(path, alpha, top=False):
  """The layers the check reads, with MobileNetV2's kernel shapes for ``alpha``."""
  first, last = weights_file.expected_filters(alpha)
  layers = {'Conv1': (3, 3, 3, first), 'block_16_project': (1, 1, 6 * last, last),
            'Conv_1': (1, 1, last, 1280)}
  if top:
    layers['predictions'] = (1280, 1000)
  with h5py.File(path, 'w') as h5:
    h5.attrs['layer_names'] = [name.encode() for name in layers]
    for name, shape in layers.items():
      group = h5.create_group(name)
      group.attrs['weight_names'] = [f'{name}/kernel:0'.encode()]
      group.create_dataset(f'{name}/kernel:0', data=np.zeros(shape, np.float32))
  return str(path)


def _run(tmp_path, capsys, weights, alpha):
  start = time.monotonic()
  code = local_runner.main(['--data-root', SAMPLE_DATA, '--pipeline-root', str(tmp_path / 'root'),
                            '--weights', str(weights), '--alpha', str(alpha)])
  err = capsys.readouterr().err
  assert code == 2 and time.monotonic() - start < 10  # a usage error, before any work
  assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
  assert not (tmp_path / 'root').exists()  # nothing ran
  return err


@needs_shared
def test_real_files_are_recognised():
  assert weights_file.inspect_file(ALPHA_035) == (False, 16, 112)
  assert weights_file.inspect_file(ALPHA_100) == (False, 32, 320)
  weights_file.check(ALPHA_035, 0.35)
  weights_file.check(ALPHA_100, 1.0)


@needs_shared
def test_weights_of_another_width_stop_the_run(tmp_path, capsys):
  err = _run(tmp_path, capsys, ALPHA_035, 1.0)
  assert re.search(r'is a MobileNetV2 no_top file of alpha 0\.35 .*expected .* for --alpha 1 '
                   r'\(Conv1 with 32 filters, block_16_project 320', err), err


@pytest.mark.parametrize('content, what', [
    (b'weights, honest\n', r'is not an HDF5 file \(it is text'),
    (b'', r'is not an HDF5 file \(it is an empty file'),
])
def test_a_file_that_is_not_hdf5_stops_the_run(tmp_path, capsys, content, what):
  path = tmp_path / 'weights.h5'
  path.write_bytes(content)
  assert re.search(what + r'.*; expected a MobileNetV2 no_top', _run(tmp_path, capsys, path, 0.35))


def test_a_truncated_file_stops_the_run(tmp_path, capsys):
  whole = _tiny_mobilenet_file(tmp_path / 'whole.h5', 0.35)
  truncated = tmp_path / 'truncated.h5'
  truncated.write_bytes(open(whole, 'rb').read()[:3000])
  assert 'is a damaged or truncated HDF5 file' in _run(tmp_path, capsys, truncated, 0.35)


def test_an_include_top_file_stops_the_run(tmp_path, capsys):
  path = _tiny_mobilenet_file(tmp_path / 'top.h5', 0.35, top=True)
  assert 'is a MobileNetV2 include_top (with the ImageNet classifier) file of alpha 0.35' in (
      _run(tmp_path, capsys, path, 0.35))


def test_an_hdf5_file_of_another_model_stops_the_run(tmp_path, capsys):
  path = tmp_path / 'other.h5'
  with h5py.File(path, 'w') as h5:
    h5.attrs['layer_names'] = [b'dense']
  assert "without MobileNetV2's ['Conv1', 'block_16_project', 'Conv_1']" in (
      _run(tmp_path, capsys, path, 0.35))


def test_the_width_rule_is_keras_own():
  from tf_keras.src.applications import mobilenet_v2  # pylint: disable=g-import-not-at-top
  for alpha in weights_file.KNOWN_ALPHAS:
    assert weights_file.make_divisible(32 * alpha) == mobilenet_v2._make_divisible(32 * alpha, 8)
    assert weights_file.make_divisible(320 * alpha) == mobilenet_v2._make_divisible(320 * alpha, 8)
