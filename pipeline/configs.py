"""The one configuration object that flows from a runner's CLI into ``create_pipeline``."""
import dataclasses
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from pipeline.drift import DriftThresholds

if TYPE_CHECKING:  # layout imports TensorFlow; this module stays light for the CLIs.
  from components.image_example_gen.layout import ImageLayout

PIPELINE_NAME = 'cats_dogs_tfx'
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES_DIR = os.path.join(REPO_ROOT, 'components', 'modules')
TRANSFORM_MODULE_FILE = os.path.join(MODULES_DIR, 'preprocessing.py')
TRAINER_MODULE_FILE = os.path.join(MODULES_DIR, 'trainer.py')


@dataclasses.dataclass
class PipelineConfig:
  """Everything a run can change; the defaults are the tutorial's transfer-learning recipe."""
  data_root: str
  pipeline_root: str
  serving_dir: str
  pipeline_name: str = PIPELINE_NAME
  # MLMD SQLite file; defaults to <pipeline_root>/metadata.sqlite. None under Kubeflow/Vertex.
  metadata_path: Optional[str] = None
  # Data.
  test_fraction: float = 0.2
  split_ratios: Optional[Dict[str, int]] = None
  max_skipped_fraction: float = 0.01
  max_class_ratio: float = 1.5
  # Drift from the baseline (the last data that passed this check): thresholds, and 'fail' to stop
  # before training or 'warn' to train anyway.
  drift_thresholds: DriftThresholds = dataclasses.field(default_factory=DriftThresholds)
  on_drift: str = 'fail'
  # The data root's layout when it cannot be listed where the pipeline is compiled (a gs:// root
  # on a build machine); None reads it from data_root.
  layout: Optional['ImageLayout'] = None
  # Preprocessing and model.
  image_size: int = 160
  # One of the tutorial's four models (components/modules/model_variants.py); weights, alpha and
  # fine-tuning apply to mobilenet_v2 only.
  model: str = 'mobilenet_v2'
  weights: str = 'imagenet'
  alpha: float = 1.0
  dropout: float = 0.2
  rotation_factor: float = 0.1
  # Training.
  epochs: int = 20
  batch_size: int = 32
  learning_rate: float = 1e-4
  fine_tune_epochs: int = 0
  fine_tune_at: int = 100
  fine_tune_learning_rate: float = 1e-5
  cache_images: bool = True
  # A frozen base's head on augmented images every epoch (the tutorial) instead of cached features.
  per_epoch_augmentation: bool = False
  # Evaluation gate.
  accuracy_threshold: float = 0.9
  # Execution.
  beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
  enable_cache: bool = True
  transform_module_file: str = TRANSFORM_MODULE_FILE
  trainer_module_file: str = TRAINER_MODULE_FILE

  def __post_init__(self):
    if self.metadata_path is None and '://' not in self.pipeline_root:
      self.metadata_path = os.path.join(self.pipeline_root, 'metadata.sqlite')

  def trainer_custom_config(self, class_names: Sequence[str]) -> Dict[str, object]:
    """What the Trainer's run_fn reads: the class names (label id i is class_names[i]) and the
    hyperparameters."""
    return {
        'class_names': list(class_names),
        'image_size': self.image_size,
        'model': self.model,
        'weights': self.weights,
        'alpha': self.alpha,
        'dropout': self.dropout,
        'rotation_factor': self.rotation_factor,
        'epochs': self.epochs,
        'batch_size': self.batch_size,
        'learning_rate': self.learning_rate,
        'fine_tune_epochs': self.fine_tune_epochs,
        'fine_tune_at': self.fine_tune_at,
        'fine_tune_learning_rate': self.fine_tune_learning_rate,
        'cache_images': self.cache_images,
        'per_epoch_augmentation': self.per_epoch_augmentation,
    }
