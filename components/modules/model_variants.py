"""The tutorial's four models, by name: what the CLI, the config and the Trainer need to know.

No TensorFlow here, so that the command-line runners can list and check the names cheaply; the
builders live in ``model.py`` (``model.BUILDERS``, keyed by the same names).

Every variant reads the Transform graph's images in [-1, 1] (one preprocessing path for training
and serving) under the input name ``features.TRANSFORMED_IMAGE_KEY`` and returns Dense(num classes)
logits, so the signatures, the Evaluator and the Pusher are the same for all of them.
"""
import dataclasses
from typing import Dict, Optional

SMALL_CNN = 'small_cnn'
CNN_AUGMENTED = 'cnn_augmented'
CNN_AUGMENTED_SCALED = 'cnn_augmented_scaled'
MOBILENET_V2 = 'mobilenet_v2'

# The tutorial's optimiser setting for its small CNNs: adam's default learning rate.
CNN_LEARNING_RATE = 1e-3


@dataclasses.dataclass(frozen=True)
class ModelVariant:
  name: str
  tutorial_number: int
  description: str
  # Random flips and rotations on the training batches (the Trainer's tf.data pipeline).
  augment: bool
  # Learning rate when --learning-rate is not given; None: the --dataset preset's
  # (pipeline/configs.py).
  learning_rate: Optional[float]
  # Uses a MobileNetV2 base: --weights, --alpha and --fine-tune-epochs apply.
  transfer: bool = False


VARIANTS: Dict[str, ModelVariant] = {v.name: v for v in (
    ModelVariant(SMALL_CNN, 1,
                 'three Conv2D/MaxPool blocks (16, 32, 64 filters), Dense(512), on [0, 1] inputs; '
                 'no augmentation, no dropout',
                 augment=False, learning_rate=CNN_LEARNING_RATE),
    ModelVariant(CNN_AUGMENTED, 2,
                 'model 1 with random flips/rotations of the training images and Dropout after '
                 'the first and the last pooling layer, on [0, 1] inputs',
                 augment=True, learning_rate=CNN_LEARNING_RATE),
    ModelVariant(CNN_AUGMENTED_SCALED, 3,
                 'model 2 on the [-1, 1] inputs as they come from the Transform graph',
                 augment=True, learning_rate=CNN_LEARNING_RATE),
    ModelVariant(MOBILENET_V2, 4,
                 'MobileNetV2 base (frozen when pretrained), global pooling, Dropout, '
                 'Dense logits (the transfer-learning recipe; default)',
                 augment=True, learning_rate=None, transfer=True),
)}


def get(name: str) -> ModelVariant:
  """The variant called ``name``; a ValueError that lists the known names otherwise."""
  try:
    return VARIANTS[name]
  except KeyError:
    raise ValueError(f'unknown model {name!r}; choose one of {", ".join(VARIANTS)}') from None
