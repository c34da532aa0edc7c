"""ImageExampleGen: TFX's FileBasedExampleGen with the image executor."""
from typing import Mapping, Optional

from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.image_example_gen import executor
from components.image_example_gen import layout as layout_lib

DEFAULT_SPLIT_RATIOS = {executor.TRAIN: 8, executor.EVAL: 1, executor.TEST: 1}


class ImageExampleGen(FileBasedExampleGen):
  """Image folders -> tf.Examples in ``train``, ``eval`` and ``test`` splits.

  The layout is read from ``input_base`` when the pipeline is built (names only), so a broken tree
  fails at once with a clear message instead of inside a Beam worker.
  """

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self,
               input_base: str,
               test_fraction: float = 0.2,
               split_ratios: Optional[Mapping[str, int]] = None,
               max_skipped_fraction: float = 0.01,
               layout: Optional[layout_lib.ImageLayout] = None):
    """
    Args:
      input_base: data root, ``<root>/train|validation/<class>/*`` or ``<root>/<class>/*``.
      test_fraction: share of ``validation/`` that becomes ``test`` (the rest is ``eval``).
      split_ratios: train/eval/test weights when the root has class folders only.
      max_skipped_fraction: fail when more than this share of the files are not usable images.
      layout: the root's layout, read from ``input_base`` when not given.
    """
    if not 0.0 < test_fraction < 1.0:
      raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
    layout = layout or layout_lib.detect_layout(input_base)
    ratios = dict(split_ratios or DEFAULT_SPLIT_RATIOS)
    if sorted(ratios) != sorted(DEFAULT_SPLIT_RATIOS) or min(ratios.values()) < 1:
      raise ValueError(f'split_ratios needs positive integer weights for train, eval and test; '
                       f'got {ratios}')
    super().__init__(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name='images', pattern=layout.file_pattern)]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
            tfx.proto.SplitConfig.Split(name=name, hash_buckets=ratios[name])
            for name in (executor.TRAIN, executor.EVAL, executor.TEST)])),
        custom_config=executor.pack_custom_config({
            'class_names': list(layout.class_names),
            'train_folder': layout_lib.TRAIN_FOLDER,
            'test_fraction': test_fraction,
            'max_skipped_fraction': max_skipped_fraction,
            'ignored_files': list(layout.ignored_files),
        }))
