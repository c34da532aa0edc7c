"""validate.py on real drift made on the fly from real photos, and its usage errors."""
import os

import pytest
import tensorflow_data_validation as tfdv

import validate
from benchmarks import drift_benchmark
from components.drift import drift_comparison as drift
from tests.conftest import REAL_DATA
from tests.report_checks import non_blank_png
from tests.trees import SAMPLE_DATA

BASELINE_PER_CLASS = 150
CASE_PER_CLASS = 60
BEAM_ARGS = ['--beam-arg=--direct_num_workers=1']


@pytest.fixture(scope='module')
def baseline_flags(real_images, tmp_path_factory):
  """Statistics and schema of 300 training photos, made as the pipeline makes them."""
  del real_images  # skips when the photos are absent
  work = tmp_path_factory.mktemp('baseline')
  data_root = drift_benchmark.fresh_sample(os.path.join(REAL_DATA, 'train'), str(work / 'data'),
                                           BASELINE_PER_CLASS)
  return drift_benchmark.make_baseline(data_root, str(work), ['--direct_num_workers=1'])


@pytest.mark.parametrize('case', sorted(drift_benchmark.CASES))
def test_drift_cases(case, baseline_flags, tmp_path, capsys):
  make, expected = drift_benchmark.CASES[case]
  data_root = make(os.path.join(REAL_DATA, 'validation'), str(tmp_path / 'data'), CASE_PER_CLASS)
  output_dir = tmp_path / 'report'
  status = validate.main(['--data-root', data_root, '--output-dir', str(output_dir),
                          *baseline_flags, *BEAM_ARGS])
  report = capsys.readouterr().out
  assert 'score threshold  verdict' in report  # the printed table
  anomalies = tfdv.load_anomalies_text(str(output_dir / 'anomalies.pbtxt'))
  flagged = {row.feature for row in drift.findings(anomalies, drift.COMPARED_FEATURES)
             if row.flagged}
  if expected:
    assert status == validate.EXIT_DRIFT and flagged >= expected, report
  else:  # a fresh sample of the same photos: no false alarm
    assert status == validate.EXIT_CLEAN and not flagged, report
  assert {'anomalies.pbtxt', 'statistics.pb', 'report.txt', 'report.html',
          'distributions.png'} <= set(os.listdir(output_dir))
  assert 'facets-overview' in (output_dir / 'report.html').read_text()
  non_blank_png((output_dir / 'distributions.png').read_bytes())


def test_png_instead_of_jpeg_is_a_schema_anomaly(baseline_flags, tmp_path):
  data_root = drift_benchmark.as_png(os.path.join(REAL_DATA, 'validation'), str(tmp_path / 'data'),
                                     10)
  validate.main(['--data-root', data_root, '--output-dir', str(tmp_path / 'report'),
                 *baseline_flags, *BEAM_ARGS])
  anomalies = (tmp_path / 'report' / 'anomalies.pbtxt').read_text()
  assert 'ENUM_TYPE_UNEXPECTED_STRING_VALUES' in anomalies and '"format"' in anomalies


def test_bombs_in_new_data_are_skipped_and_counted(baseline_flags, tmp_path, capsys):
  from tests import bombs  # pylint: disable=g-import-not-at-top
  data_root = drift_benchmark.fresh_sample(os.path.join(REAL_DATA, 'validation'),
                                           str(tmp_path / 'data'), 10)
  with open(os.path.join(data_root, 'cats', 'bomb.png'), 'wb') as f:
    f.write(bombs.png(20000, 20000))
  validate.main(['--data-root', data_root, '--output-dir', str(tmp_path / 'report'),
                 *baseline_flags, *BEAM_ARGS])
  assert ('(21 files, 1 skipped as not decodable images or over the image budget of 200000000 '
          'pixels, 100000000 bytes)') in capsys.readouterr().out


@pytest.mark.parametrize('flags, message', [
    (['--data-root', '/nonexistent', '--baseline-stats', 'STATS', '--schema', 'SCHEMA'],
     'does not exist'),
    (['--data-root', SAMPLE_DATA], 'no baseline: pass --pipeline-root'),
    (['--data-root', SAMPLE_DATA, '--pipeline-root', '/nonexistent'], 'no pipeline run at'),
    (['--data-root', SAMPLE_DATA, '--baseline-stats', '/nonexistent.pb', '--schema', 'SCHEMA'],
     'is not a file'),
    (['--data-root', SAMPLE_DATA, '--baseline-stats', 'SCHEMA', '--schema', 'SCHEMA'],
     'is not a TFDV statistics file'),
])
def test_usage_errors_are_one_line_and_exit_2(flags, message, tmp_path, capsys):
  files = {'STATS': tmp_path / 'stats.pb', 'SCHEMA': tmp_path / 'schema.pbtxt'}
  files['STATS'].write_bytes(b'')
  files['SCHEMA'].write_text('feature { name: "x" }')
  status = validate.main([str(files.get(flag, flag)) for flag in flags] +
                         ['--output-dir', str(tmp_path / 'out')])
  error = capsys.readouterr().err
  assert status == validate.EXIT_USAGE and message in error and error.count('\n') == 1


def test_a_pipeline_that_never_passed_the_drift_check_is_no_baseline(tmp_path, capsys):
  from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(
      str(tmp_path / 'metadata.sqlite')))
  status = validate.main(['--data-root', SAMPLE_DATA, '--pipeline-root', str(tmp_path)])
  assert status == validate.EXIT_USAGE
  assert 'no run past its drift check' in capsys.readouterr().err
