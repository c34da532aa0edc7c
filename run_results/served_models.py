"""Which SavedModel a command line means: a model folder, a serving dir's newest version, or the
latest model the pipeline pushed (predict.py, validate.py), and the image budget it enforces."""
import os
from typing import TYPE_CHECKING, Optional

from components.serving_versions import model_versions
from pipeline import configs

if TYPE_CHECKING:  # image_budget imports TensorFlow; this module stays light for the CLIs.
  from components.modules.image_budget import ImageBudget


class NoModelError(Exception):
  """No model can be found where the user pointed; the message says what to pass."""


def resolve_model(model: Optional[str], pipeline_root: str) -> str:
  """A SavedModel folder: ``model`` itself, its newest numbered version, or the newest version of
  the serving dir of the latest push."""
  if model:
    if os.path.exists(os.path.join(model, 'saved_model.pb')):
      return model
    versions = model_versions(model)
    if versions:
      return os.path.join(model, str(versions[-1]))
    raise NoModelError(f'{model} is neither a SavedModel nor a serving dir with numbered versions')
  metadata_path = configs.metadata_path_of(pipeline_root)
  if os.path.exists(metadata_path):
    from run_results import mlmd_runs
    pushed = mlmd_runs.latest_pushed_model(mlmd_runs.open_store(metadata_path))
    if pushed:  # the version served from that serving dir: the highest (a rollback's, too)
      return resolve_model(os.path.dirname(pushed), pipeline_root)
  raise NoModelError(f'no pushed model is recorded in {pipeline_root}; run the pipeline first '
                     '(make run) or pass --model DIR')


def image_budget_of(loaded_model: Optional[object]) -> 'ImageBudget':
  """The image budget a loaded served model enforces (its Transform graph's, saved with it), so a
  file is checked here as the model will check it; PipelineConfig's defaults for no model, or one
  saved before models carried a budget."""
  from components.modules import image_budget
  budget = image_budget.of_model(loaded_model) if loaded_model is not None else None
  return budget or image_budget.ImageBudget(
      *(configs.default(name) for name in image_budget.SAVED_ATTRIBUTES))
