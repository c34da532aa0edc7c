"""PipelineConfig: every setting of a run, its default and its check, declared once.

The runners build it from their flags (runner/flags.py), a flag's name being the field's with
dashes; ``create_pipeline`` hands the settings to the components, which declare no defaults of
their own. Every check runs here, at construction, so a bad value fails before any work with one
line that names the flag. A recipe (``RECIPES``) overlays the defaults, and a model variant's
learning rate overlays the recipe (``recipe_settings``).
"""
import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from components.drift.drift_thresholds import ON_DRIFT_CHOICES, DriftThresholds
from components.modules import model_variants
from components.modules.features import SPLIT_NAMES
from pipeline.blessing_gate import GATES as BLESSING_GATES, GATE_METRICS, PAIRED

if TYPE_CHECKING:  # layout imports TensorFlow; this module stays light for the CLIs.
  from components.image_example_gen.layout import ImageLayout

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES_DIR = os.path.join(REPO_ROOT, 'components', 'modules')
TRANSFORM_MODULE_FILE = os.path.join(MODULES_DIR, 'preprocessing.py')
TRAINER_MODULE_FILE = os.path.join(MODULES_DIR, 'trainer.py')
TUNER_MODULE_FILE = os.path.join(MODULES_DIR, 'tuner.py')

TRANSFER, SCRATCH = 'transfer', 'scratch'
# What each recipe changes of the defaults below (the transfer recipe: a frozen pretrained
# MobileNetV2, its head tuned and trained on the base's features).
RECIPES: Dict[str, Dict[str, Any]] = {
    TRANSFER: {},
    # For the embedded synthetic sample, offline with no pretrained weights: a small MobileNetV2
    # trained from scratch on the images. Its eval accuracy sits at chance for 6-8 epochs, then
    # reached 0.98-1.0 by epoch 10 in each of six runs; 12 epochs leave a margin.
    SCRATCH: dict(weights='none', alpha=0.35, image_size=96, epochs=12, batch_size=16,
                  learning_rate=1e-3, tuner_trials=0),
}
CLASS_WEIGHTS = ('balanced', 'none')
# Who runs the pipeline: the local runner and Airflow keep MLMD in the pipeline root's SQLite file;
# Kubeflow V2 / Vertex bring their own (metadata_path None).
LOCAL, AIRFLOW, KUBEFLOW = 'local', 'airflow', 'kubeflow'
ORCHESTRATORS = (LOCAL, AIRFLOW, KUBEFLOW)


class ConfigError(ValueError):
  """A setting out of range, or settings that cannot work together; the message names the flag."""


_TRAINER = 'trainer'


def trainer_setting(default_value: Any) -> Any:
  """A PipelineConfig field that the Trainer and the Tuner read: it reaches them in the Trainer's
  custom_config (``trainer_custom_config``), with no list to keep in step."""
  return dataclasses.field(default=default_value, metadata={_TRAINER: True})


def flag_of(field: str) -> str:
  """The command-line flag of a PipelineConfig field: its name with dashes."""
  return '--' + field.replace('_', '-')


@dataclasses.dataclass
class PipelineConfig:
  """Everything a run can change; the defaults are the tutorial's transfer-learning recipe."""
  data_root: str
  pipeline_root: str
  serving_dir: str
  # Empty: named after the data root's folder (``pipeline_name_of``).
  pipeline_name: str = ''
  recipe: str = TRANSFER
  orchestrator: str = LOCAL
  # MLMD SQLite file; defaults to <pipeline_root>/metadata.sqlite. None under Kubeflow/Vertex.
  metadata_path: Optional[str] = None
  # Data and its checks.
  test_fraction: float = 0.2
  # Weights of the hash split of a root with class folders only.
  split_ratios: Dict[str, int] = dataclasses.field(
      default_factory=lambda: {'train': 8, 'eval': 1, 'test': 1})
  max_skipped_fraction: float = 0.01
  # Eval and test images that duplicate training images (components/data_quality): above this
  # share of them the run stops before training; at or below, it warns. A leak inflates the test
  # metrics by up to its share, so 2 % keeps the gate's numbers within 2 points of the truth.
  max_leak_fraction: float = 0.02
  # Class balance of the training split (components/label_balance.py): a warning above
  # warn_class_ratio (max/min images per class); the run stops only where training cannot work.
  warn_class_ratio: float = 1.5
  max_class_ratio: float = 20.0
  min_class_images: int = 10
  # Image budget, read from the header before decoding and saved in the model: a 200 Mpx phone
  # photo fits (16320 x 12240 = 199.8 Mpx, 20-60 MB as JPEG), a 388 KB PNG bomb of 20000 x 20000
  # does not (components/modules/image_budget.py).
  max_image_pixels: int = 200_000_000
  max_image_bytes: int = 100_000_000
  # Drift from the baseline (the last data that passed this check): thresholds, and 'fail' to stop
  # before training or 'warn' to train anyway.
  drift_thresholds: DriftThresholds = dataclasses.field(default_factory=DriftThresholds)
  on_drift: str = 'fail'
  # The data root's layout when it cannot be listed where the pipeline is compiled (a gs:// root
  # on a build machine); None reads it from data_root.
  layout: Optional['ImageLayout'] = None
  # Preprocessing and model: one of the tutorial's four models (model_variants.py); weights, alpha
  # and fine-tuning apply to mobilenet_v2 only.
  image_size: int = trainer_setting(160)
  model: str = trainer_setting(model_variants.MOBILENET_V2)
  weights: str = trainer_setting('imagenet')
  alpha: float = trainer_setting(1.0)
  dropout: float = trainer_setting(0.2)
  rotation_factor: float = trainer_setting(0.1)
  # Training. A frozen base's head trains on its features for at most ``epochs``, stopping once the
  # class-balanced eval loss stops improving (the best epoch's weights are kept); images train for
  # ``epochs`` exactly.
  epochs: int = trainer_setting(100)
  batch_size: int = trainer_setting(32)
  learning_rate: float = trainer_setting(1e-3)
  # 'balanced': each class weighs as much in the loss as the others, whatever its image count.
  class_weights: str = trainer_setting('balanced')
  # KerasTuner trials of the frozen base's head (TFX's Tuner, on the base's features); 0: none.
  tuner_trials: int = trainer_setting(12)
  fine_tune_epochs: int = trainer_setting(0)
  fine_tune_at: int = trainer_setting(100)
  fine_tune_learning_rate: float = trainer_setting(1e-5)
  cache_images: bool = trainer_setting(True)
  # A frozen base's head on augmented images every epoch (the tutorial) instead of cached features.
  per_epoch_augmentation: bool = trainer_setting(False)
  # Evaluation gate: a metric at least a threshold (None: halfway from chance, 1 / the number of
  # classes, to 1), and against the last blessed model (pipeline/blessing_gate.py).
  gate_metric: str = 'balanced_accuracy'
  gate_threshold: Optional[float] = None
  blessing_gate: str = PAIRED
  blessing_significance: float = 0.05
  # The pushed TFLite model may be at most this much less accurate on the test split than its
  # SavedModel (components/tflite_check.py).
  tflite_max_accuracy_drop: float = 0.01
  # Execution.
  beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
  enable_cache: bool = True
  transform_module_file: str = TRANSFORM_MODULE_FILE
  trainer_module_file: str = TRAINER_MODULE_FILE
  tuner_module_file: str = TUNER_MODULE_FILE

  def __post_init__(self):
    if (self.orchestrator != KUBEFLOW and self.metadata_path is None
        and '://' not in self.pipeline_root):
      self.metadata_path = metadata_path_of(self.pipeline_root)
    if not self.pipeline_name:
      self.pipeline_name = pipeline_name_of(self.data_root)
    self._check()

  @classmethod
  def for_recipe(cls, recipe: str, **settings: Any) -> 'PipelineConfig':
    """A config of ``recipe``'s settings (``recipe_settings``)."""
    return cls(**recipe_settings(recipe, **settings))

  @property
  def trains_on_features(self) -> bool:
    """A frozen pretrained base: its head trains on the base's features, computed once by the
    pipeline (FeatureExtractor, BulkInferrer) and tuned by the Tuner."""
    return (model_variants.VARIANTS[self.model].transfer and self.weights.lower() != 'none'
            and not self.per_epoch_augmentation)

  def gate_minimum(self, num_classes: int) -> float:
    """The gate metric's lowest blessed value: ``gate_threshold``, or halfway from chance to 1."""
    if self.gate_threshold is not None:
      return self.gate_threshold
    chance = 1.0 / num_classes
    return round(chance + (1.0 - chance) / 2, 4)

  def _check(self) -> None:
    """Raises ConfigError on the first setting out of range, naming its flag."""
    def require(ok: bool, name: str, what: str) -> None:
      if not ok:
        raise ConfigError(f'{flag_of(name)}: {getattr(self, name)!r} {what}')

    require(self.recipe in RECIPES, 'recipe', f'is not one of {", ".join(RECIPES)}')
    require(self.orchestrator in ORCHESTRATORS, 'orchestrator',
            f'is not one of {", ".join(ORCHESTRATORS)}')
    if self.orchestrator == KUBEFLOW and self.metadata_path is not None:
      raise ConfigError('a Kubeflow pipeline uses the cluster\'s MLMD: no metadata_path')
    require(bool(re.fullmatch(PIPELINE_NAME_PATTERN, self.pipeline_name)), 'pipeline_name',
            'is not a pipeline name: a letter or digit, then up to 127 of [a-z0-9_-]')
    for name in ('epochs', 'batch_size', 'image_size', 'min_class_images', 'max_image_pixels',
                 'max_image_bytes'):
      require(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name,
              'is not a positive integer')
    for name in ('fine_tune_epochs', 'fine_tune_at', 'tuner_trials'):
      require(_is_int(getattr(self, name)) and getattr(self, name) >= 0, name,
              'is not an integer >= 0')
    for name in ('alpha', 'learning_rate', 'fine_tune_learning_rate'):
      require(getattr(self, name) > 0, name, 'is not a positive number')
    require(0 < self.test_fraction < 1, 'test_fraction',
            'is not a fraction in (0, 1): validation/ must give both eval and test images')
    for name in ('max_skipped_fraction', 'max_leak_fraction', 'tflite_max_accuracy_drop'):
      require(0 <= getattr(self, name) <= 1, name, 'is not a fraction in [0, 1]')
    require(self.gate_threshold is None or 0 <= self.gate_threshold <= 1, 'gate_threshold',
            'is not a fraction in [0, 1]')
    require(self.gate_metric in GATE_METRICS, 'gate_metric',
            f'is not one of {", ".join(GATE_METRICS)}')
    require(self.class_weights in CLASS_WEIGHTS, 'class_weights',
            f'is not one of {", ".join(CLASS_WEIGHTS)}')
    for name in ('dropout', 'rotation_factor'):
      require(0 <= getattr(self, name) < 1, name, 'is not in [0, 1)')
    for name in ('warn_class_ratio', 'max_class_ratio'):
      require(getattr(self, name) >= 1, name,
              'is below 1; the max/min class count ratio of any split is at least 1')
    ratios = self.split_ratios
    require(sorted(ratios) == sorted(SPLIT_NAMES) and all(
        _is_int(r) and r >= 1 for r in ratios.values()), 'split_ratios',
            'is not three positive integers TRAIN,EVAL,TEST')
    check_drift_settings(self.drift_thresholds, self.on_drift)
    require(self.blessing_gate in BLESSING_GATES, 'blessing_gate',
            f'is not one of {", ".join(BLESSING_GATES)}')
    require(0 < self.blessing_significance < 1, 'blessing_significance',
            'is not a significance level in (0, 1)')
    require(self.model in model_variants.VARIANTS, 'model',
            f'is not one of {", ".join(model_variants.VARIANTS)}')
    if self.fine_tune_epochs > 0 and not model_variants.VARIANTS[self.model].transfer:
      raise ConfigError(
          f'--fine-tune-epochs {self.fine_tune_epochs} unfreezes a pretrained base; --model '
          f'{self.model} has none (fine-tuning applies to --model {model_variants.MOBILENET_V2} '
          'only)')
    if self.serving_dir == self.pipeline_root:
      raise ConfigError('--serving-dir must differ from --pipeline-root: a model server would try '
                        'to load the artifact folders as model versions')

  def trainer_custom_config(self, class_names: Sequence[str]) -> Dict[str, object]:
    """What the Trainer's run_fn and the Tuner's tuner_fn read: the class names (label id i is
    class_names[i]) and the hyperparameters."""
    return {
        'class_names': list(class_names),
        'trains_on_features': self.trains_on_features,
        **{name: getattr(self, name) for name in TRAINER_SETTINGS},
    }


# The PipelineConfig fields that the Trainer and the Tuner read (trainer_custom_config).
TRAINER_SETTINGS = tuple(field.name for field in dataclasses.fields(PipelineConfig)
                         if field.metadata.get(_TRAINER))
# Kubeflow allows [a-z0-9-] and MLMD contexts anything; this keeps a name safe as a folder name.
PIPELINE_NAME_PATTERN = r'[a-z0-9][a-z0-9_-]{0,127}'


def pipeline_name_of(data_root: str) -> str:
  """A pipeline name from the data root's folder: '/data/Flowers 2024/' -> 'flowers-2024'."""
  name = re.sub(r'[^a-z0-9_-]+', '-', os.path.basename(data_root.rstrip('/')).lower()).strip('-_')
  return name[:128] or 'images'


def recipe_settings(recipe: str, **settings: Any) -> Dict[str, Any]:
  """The fields that differ from the defaults: ``recipe``'s, overlaid by the model variant's
  learning rate (when ``learning_rate`` is not given), then by ``settings``; a None value counts
  as not given."""
  given = {name: value for name, value in settings.items() if value is not None}
  chosen = {**RECIPES[recipe], 'recipe': recipe, **given}
  variant = model_variants.VARIANTS.get(chosen.get('model', default('model')))
  if 'learning_rate' not in given and variant and variant.learning_rate is not None:
    chosen['learning_rate'] = variant.learning_rate
  return chosen


def metadata_path_of(pipeline_root: str) -> str:
  """The local MLMD store of a pipeline root."""
  return os.path.join(pipeline_root, 'metadata.sqlite')


def check_drift_settings(thresholds: DriftThresholds, on_drift: str) -> None:
  """The drift settings' checks, shared with validate.py, which has no whole PipelineConfig."""
  for name, value in dataclasses.asdict(thresholds).items():
    if not value > 0:
      raise ConfigError(f'{flag_of("drift_" + name)}: {value!r} is not a positive number')
  for name in ('embedding_p_value', 'embedding_auc'):
    if not getattr(thresholds, name) < 1:
      raise ConfigError(f'{flag_of("drift_" + name)}: {getattr(thresholds, name)!r} is not below 1')
  if on_drift not in ON_DRIFT_CHOICES:
    raise ConfigError(f'--on-drift: {on_drift!r} is not one of {ON_DRIFT_CHOICES}')


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def default(name: str) -> Any:
  """The default of PipelineConfig's field ``name``, for flags' help texts and for tools such as
  validate.py that need a setting without a whole run."""
  field = {f.name: f for f in dataclasses.fields(PipelineConfig)}[name]
  return field.default_factory() if field.default is dataclasses.MISSING else field.default
