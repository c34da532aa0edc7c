"""ImageExampleGen: TFX's FileBasedExampleGen with the image executor."""
from typing import Mapping, Optional

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.image_example_gen import executor
from components.image_example_gen import executor_config
from components.image_example_gen import layout as layout_lib
from components.image_example_gen import splits
from components.modules import image_budget


class ImageExampleGen(FileBasedExampleGen):
  """Image folders -> tf.Examples in ``train``, ``eval`` and ``test`` splits.

  The layout is read from ``input_base`` when the pipeline is built (names only), so a broken tree
  fails at once with a clear message instead of inside a Beam worker. The settings come checked
  from PipelineConfig (pipeline/configs.py), which holds their defaults.
  """

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self,
               input_base: str,
               test_fraction: float,
               split_ratios: Mapping[str, int],
               max_skipped_fraction: float,
               max_image_pixels: int,
               max_image_bytes: int,
               layout: Optional[layout_lib.ImageLayout] = None):
    """
    Args:
      input_base: data root, ``<root>/train|validation/<class>/*`` or ``<root>/<class>/*``.
      test_fraction: share of ``validation/`` that becomes ``test`` (the rest is ``eval``).
      split_ratios: train/eval/test weights when the root has class folders only.
      max_skipped_fraction: fail when more than this share of the files are not usable images.
      max_image_pixels: skip an image whose header declares more pixels (image_budget.py).
      max_image_bytes: skip an image file of more bytes.
      layout: the root's layout, read from ``input_base`` when not given.
    """
    layout = layout or layout_lib.detect_layout(input_base)
    super().__init__(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name='images', pattern=layout.file_pattern)]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=split_ratios[name])
            for name in splits.SPLIT_NAMES])),
        custom_config=executor_config.pack_custom_config(executor_config.executor_settings(
            layout, test_fraction, max_skipped_fraction,
            image_budget.ImageBudget(max_image_pixels, max_image_bytes))))
