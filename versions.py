"""The model versions pushed to a serving dir: list them, show one, roll back to one.

    python versions.py list                      # the serving dir and pipeline root of `make run`
    python versions.py show 1795557653
    python versions.py card 1795557653           # its model card, Markdown and HTML
    python versions.py rollback 1795557653       # republished as the newest version
    python versions.py list --serving-dir runs/custom/serving_model --pipeline-root runs/custom/pipeline_root

``list`` prints one line per version, oldest first, the served one (the highest) marked ``*``:
push time, the pipeline run, the data (span and images per split), the code version, the test
accuracy overall and per class, and whether it is a rollback. ``show`` gives everything recorded
about one version; ``card VERSION`` writes its model card (Markdown and HTML) into the pipeline
root's ``model_cards/VERSION/``. ``rollback VERSION`` copies that version to the next version number in one
atomic rename, so a model server that serves the highest version switches back to it; ``list``
shows it as a rollback. Exit status 2, with one line, for an unknown version or an empty or
missing serving dir.
"""
import bootstrap  # pylint: disable=unused-import  # first: the Keras switch, before TensorFlow
import json
import logging
import os
import sys
import time
from typing import List, Optional

from pipeline import configs
from runner import flags

DEFAULT_RUN_DIR = flags.run_dir(flags.SAMPLE_PIPELINE_NAME)


def _when(seconds: float) -> str:
  return time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(seconds))


def list_line(version, served: bool) -> str:
  """One version in one line."""
  details = version.details
  parts = [('*' if served else ' ') + f' {version.version}', _when(version.pushed_at)]
  if version.rollback_of:
    parts.append(f'rollback of {version.rollback_of}')
  if not details:
    return '  '.join(parts + ['(no record in the pipeline root)'])
  data = details['data']
  metrics = details['test_metrics']
  accuracy = ', '.join(
      f"{name.split('(')[-1].rstrip(')') if '(' in name else name} "
      f"{values['sparse_categorical_accuracy']:.3f}"
      for name, values in metrics.items() if 'sparse_categorical_accuracy' in values)
  counts = ' '.join(f'{split} {sum(per_class.values())}'
                    for split, per_class in data['counts'].items())
  tflite = details['tflite'].get('tflite', {}).get('accuracy')
  parts += [f"run {version.run_id}", f"span {data['span']} ({counts})",
            f"code {details['code_version']}", f'accuracy {accuracy}']
  if tflite is not None:
    parts.append(f'tflite {tflite:.3f}')
  return '  '.join(parts)


def build_parser() -> flags.FlagParser:
  parser = flags.FlagParser(description=__doc__)
  parser.add_argument('command', choices=('list', 'show', 'card', 'rollback'))
  parser.add_argument('version', nargs='?', help='a version number (show, card, rollback)')
  parser.add_argument('--serving-dir', default=os.path.join(DEFAULT_RUN_DIR, 'serving_model'),
                      help='the serving dir (default %(default)s)')
  parser.add_argument('--pipeline-root', default=os.path.join(DEFAULT_RUN_DIR, 'pipeline_root'),
                      help='the pipeline root whose MLMD recorded the pushes (default %(default)s)')
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.command != 'list' and not args.version:
    parser.error(f'{args.command} needs a VERSION')
  logging.getLogger('tensorflow').setLevel(logging.ERROR)  # TFMA's deprecation notes
  from run_results import registry
  try:
    versions = registry.versions(args.serving_dir, configs.metadata_path_of(args.pipeline_root))
    if args.command == 'list':
      for version in versions:
        print(list_line(version, served=version is versions[-1]))
      return 0
    if args.command == 'card':
      from run_results import model_card
      paths = model_card.write_for_version(args.serving_dir, args.pipeline_root, args.version)
      print(f"model card: {paths['md']} and {paths['html']}")
      return 0
    chosen = registry.find(versions, args.version)
    if args.command == 'show':
      print(json.dumps({'version': chosen.version, 'path': chosen.path,
                        'pushed_at': _when(chosen.pushed_at), 'served': chosen is versions[-1],
                        'rollback_of': chosen.rollback_of, **chosen.details}, indent=1))
      return 0
    if chosen is versions[-1]:
      raise registry.RegistryError(f'version {chosen.version} is already the served (newest) one')
    new = registry.rollback(args.serving_dir, chosen)
    print(f'version {chosen.version} republished as {new} in {args.serving_dir}; a model server '
          'serving the highest version now serves it')
    return 0
  except registry.RegistryError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
