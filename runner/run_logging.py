"""What a run prints: without --verbose, only which component runs and the ExampleGen's progress.

Shared by local_runner.py, kubeflow_runner.py and validate.py.
"""
import logging
import os
import re
import sys
import warnings


class _ProgressFilter(logging.Filter):
  """Without --verbose, shows which component runs, whether it came from the cache, the
  ExampleGen's progress lines, and the data checks' warnings and findings, which Beam's worker processes send as 'Worker: <LogEntry proto>'."""
  _SHOWN = ('Component ', 'A cached execution', 'Image ExampleGen: ', 'LabelBalance: ',
            'DataQuality: ', 'DriftGate: ', 'EmbeddingDriftGate: ')
  _WORKER_MESSAGE = re.compile(r'^Worker: .*?message: "(.*?)(?<!\\)"')

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR:
      return True
    message = record.getMessage()
    from_worker = self._WORKER_MESSAGE.match(message)
    if from_worker:
      message = record.msg = from_worker.group(1)
      record.args = ()
    return record.levelno in (logging.INFO, logging.WARNING) and message.startswith(self._SHOWN)


def configure_logging(verbose: bool) -> None:
  if verbose:
    logging.basicConfig(level=logging.INFO)
    return
  # Also reaches the Beam worker processes, which inherit the environment.
  os.environ.setdefault('PYTHONWARNINGS', 'ignore')
  warnings.filterwarnings('ignore')
  handler = logging.StreamHandler(sys.stdout)
  handler.addFilter(_ProgressFilter())
  handler.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%H:%M:%S'))
  # A library that logged through the root logger before this (validate.py imports TFDV first) made
  # Python install its default handler, which would print every INFO line and keep basicConfig
  # from adding ours. Handlers put there on purpose (pytest's, an application's) stay.
  root = logging.getLogger()
  for default_handler in [h for h in root.handlers if type(h) is logging.StreamHandler  # pylint: disable=unidiomatic-typecheck
                          and h.formatter and h.formatter._fmt == logging.BASIC_FORMAT]:  # pylint: disable=protected-access
    root.removeHandler(default_handler)
  logging.basicConfig(level=logging.INFO, handlers=[handler])
  # TensorFlow gives its logger a handler of its own when it loads before this (validate.py imports
  # TFDV first): its INFO and deprecation lines would bypass the filter above.
  tensorflow_logger = logging.getLogger('tensorflow')
  for own_handler in list(tensorflow_logger.handlers):
    tensorflow_logger.removeHandler(own_handler)
  # Libraries that parse absl flags later would drop absl's logger to WARNING, hiding the progress.
  from absl import flags, logging as absl_logging  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()
  absl_logging.set_verbosity(absl_logging.INFO)
