"""Custom TFX pieces of the cats-vs-dogs pipeline.

Importing the package runs bootstrap (the Keras 2 switch) before TensorFlow loads, also in TFX's
executors and Beam workers, which reach the module files through it.
LabelBalanceReport, DriftReport, EmbeddingDriftReport, DataQualityReport and TFLiteEvaluation are
importable from
here because Kubeflow V2 containers load custom artifact classes by their TYPE_NAME, which must be
``<module>.<Class>``.
"""
import bootstrap  # pylint: disable=unused-import  # the Keras switch, before TensorFlow


def __getattr__(name):
  # Lazy, so that importing components.modules does not import TFX.
  if name == 'LabelBalanceReport':
    from components.label_balance import LabelBalanceReport  # pylint: disable=g-import-not-at-top
    return LabelBalanceReport
  if name == 'DriftReport':
    from components.drift.drift_gate import DriftReport  # pylint: disable=g-import-not-at-top
    return DriftReport
  if name == 'EmbeddingDriftReport':
    from components.drift.embedding_drift_gate import EmbeddingDriftReport  # pylint: disable=g-import-not-at-top
    return EmbeddingDriftReport
  if name == 'DataQualityReport':
    from components.data_quality.component import DataQualityReport  # pylint: disable=g-import-not-at-top
    return DataQualityReport
  if name == 'TFLiteEvaluation':
    from components.tflite_check import TFLiteEvaluation  # pylint: disable=g-import-not-at-top
    return TFLiteEvaluation
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
