"""Settings of the drift checks, one source for the pipeline's DistributionValidator, the runners'
flags and ``validate.py``. Light on purpose: the CLIs import it before TensorFlow."""
import argparse
import dataclasses
from typing import Dict

ON_DRIFT_CHOICES = ('fail', 'warn')


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
  """Largest accepted distance between the new data and the baseline, per kind of feature.

  L-infinity is the largest change of any category's share (0.1: a class going from 50 % to 60 %);
  Jensen-Shannon divergence is TFDV's, between the histograms of a numeric feature, 0 (equal) to
  1 (disjoint). On the tutorial's images (benchmarks/results/drift_benchmark.md) two samples of
  the same data score up to 0.16 (height and width, whose histograms are spiky: many photos are
  exactly 500 x 374), real drift 0.84 or more.
  """
  label_linf: float = 0.1
  categorical_linf: float = 0.1  # image format and colour mode
  numeric_js: float = 0.2  # size, aspect ratio, file size, brightness, contrast, saturation


def _positive_float(text: str) -> float:
  value = float(text)
  if value <= 0:
    raise argparse.ArgumentTypeError(f'{text} is not a positive number')
  return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The drift flags (a 'data drift' group) of local_runner.py and validate.py."""
  defaults = DriftThresholds()
  group = parser.add_argument_group('data drift (new data against the baseline)')
  group.add_argument('--drift-label-linf', type=_positive_float, default=defaults.label_linf,
                     help='largest accepted L-infinity distance of the label distribution '
                          '(default %(default)s)')
  group.add_argument('--drift-categorical-linf', type=_positive_float,
                     default=defaults.categorical_linf,
                     help='same for the image format and colour mode (default %(default)s)')
  group.add_argument('--drift-numeric-js', type=_positive_float, default=defaults.numeric_js,
                     help='largest accepted Jensen-Shannon divergence of the numeric image '
                          'features: size, file size, brightness... (default %(default)s)')
  group.add_argument('--on-drift', choices=ON_DRIFT_CHOICES, default='fail',
                     help='"fail" stops the run before training when the data drifted from the '
                          'baseline; "warn" logs the report and trains (default %(default)s)')


def thresholds_from_args(args: argparse.Namespace) -> DriftThresholds:
  return DriftThresholds(label_linf=args.drift_label_linf,
                         categorical_linf=args.drift_categorical_linf,
                         numeric_js=args.drift_numeric_js)


def settings(args: argparse.Namespace) -> Dict[str, object]:
  """PipelineConfig fields of add_arguments' flags."""
  return dict(drift_thresholds=thresholds_from_args(args), on_drift=args.on_drift)
