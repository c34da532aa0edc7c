"""The process settings every command needs before TensorFlow loads, set in this one place.

TFT and TFMA 1.16 need Keras 2 (tf-keras); TensorFlow 2.16 picks Keras 3 when it is imported unless
TF_USE_LEGACY_KERAS is set. Every entry point (local_runner.py, kubeflow_runner.py, airflow_dag.py,
validate.py, predict.py, versions.py) imports this module first, and each package of the project
(components, pipeline, runner, run_results, benchmarks) in its ``__init__``, so that TFX's
executors and Beam workers, which load the module files through ``components``, get it too. A
process that imported TensorFlow before it already has Keras 3: that stops here with one line,
not later inside Transform or the Evaluator.
"""
import os
import sys
import warnings

# Set, not defaulted: the project cannot run on Keras 3 (an empty or '0' value would pick it).
os.environ['TF_USE_LEGACY_KERAS'] = '1'
# TensorFlow's C++ start-up lines (CPU features, TensorRT, oneDNN) say nothing a user can act on.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# TFX imports Google Cloud clients, which warn on import about their own future (Python 3.10 gets
# no more updates, TFX 1.16 needs it; older google-cloud-storage): a dozen lines before every
# command's output, nothing for a user to act on.
warnings.filterwarnings('ignore', category=FutureWarning, module=r'google\.')


class KerasVersionError(ImportError):
  pass


def check_keras_switch() -> None:
  """Raises when TensorFlow is already loaded with Keras 3 (imported before this module)."""
  tensorflow = sys.modules.get('tensorflow')
  if tensorflow is not None and not getattr(tensorflow, '_tf_uses_legacy_keras', True):
    raise KerasVersionError(
        'TensorFlow was imported with Keras 3 before this project set TF_USE_LEGACY_KERAS=1 '
        '(TFT and TFMA 1.16 need Keras 2): import bootstrap (or any project package) before '
        'tensorflow, or export TF_USE_LEGACY_KERAS=1')


check_keras_switch()
