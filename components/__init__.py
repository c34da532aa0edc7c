"""Custom TFX pieces of the cats-vs-dogs pipeline.

TFT and TFMA 1.16 expect Keras 2 (tf-keras); TensorFlow 2.16 picks Keras 3 unless told otherwise.
This is the one place that sets the switch: every entry point (the runners, validate.py,
predict.py, the benchmarks, TFX's executors and Beam workers loading the module files) imports
this package, directly or through ``pipeline``, before TensorFlow.
LabelBalanceReport, DriftReport, EmbeddingDriftReport, DataQualityReport and TFLiteEvaluation are
importable from
here because Kubeflow V2 containers load custom artifact classes by their TYPE_NAME, which must be
``<module>.<Class>``.
"""
import os
import warnings

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# TFX imports Google Cloud clients, which warn on import about their own future (Python 3.10 gets
# no more updates, TFX 1.16 needs it; older google-cloud-storage): a dozen lines before every
# command's output, nothing for a user to act on.
warnings.filterwarnings('ignore', category=FutureWarning, module=r'google\.')


def __getattr__(name):
  # Lazy, so that importing components.modules does not import TFX.
  if name == 'LabelBalanceReport':
    from components.label_balance import LabelBalanceReport  # pylint: disable=g-import-not-at-top
    return LabelBalanceReport
  if name == 'DriftReport':
    from components.drift_gate import DriftReport  # pylint: disable=g-import-not-at-top
    return DriftReport
  if name == 'EmbeddingDriftReport':
    from components.embedding_drift_gate import EmbeddingDriftReport  # pylint: disable=g-import-not-at-top
    return EmbeddingDriftReport
  if name == 'DataQualityReport':
    from components.data_quality.component import DataQualityReport  # pylint: disable=g-import-not-at-top
    return DataQualityReport
  if name == 'TFLiteEvaluation':
    from components.tflite_check import TFLiteEvaluation  # pylint: disable=g-import-not-at-top
    return TFLiteEvaluation
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
