"""ExampleGen for image folders: ``<root>/<split>/<class>/<image>`` or ``<root>/<class>/<image>``.

Its names are imported on first use: ``predict.py``'s TFLite engine reads files with
``file_tree`` and ``image_properties`` and must not load TFX and TensorFlow with the component.
"""
import importlib

_EXPORTS = {'ImageExampleGen': 'component', 'DataLayoutError': 'layout', 'ImageLayout': 'layout',
            'detect_layout': 'layout'}

__all__ = list(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
