"""ExampleGen for image folders: ``<root>/<split>/<class>/<image>`` or ``<root>/<class>/<image>``."""
from components.image_example_gen.component import ImageExampleGen
from components.image_example_gen.layout import DataLayoutError, ImageLayout, detect_layout

__all__ = ['ImageExampleGen', 'DataLayoutError', 'ImageLayout', 'detect_layout']
