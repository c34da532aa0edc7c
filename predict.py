"""Classifies image files or folders with a pushed model: its TFLite copy, or the SavedModel.

    python predict.py photo.jpg more_photos/               # the latest model pushed by `make run`
    python predict.py photos/ --model runs/custom/serving_model --format csv > predictions.csv
    python predict.py photo.jpg --engine savedmodel        # through TensorFlow and the SavedModel

Two engines give the same answers up to the float16 weights' rounding
(benchmarks/results/predict_cold_start.md). ``tflite``: the pushed TFLite model (``tflite/``) in
ai-edge-litert's interpreter, without TensorFlow, 1-3 s and ~130 MB from start to answer: Pillow
decodes and turns JPEGs upright by their EXIF orientation (the Transform graph's pixels), the
model resizes and scales as the Transform graph does, numpy scores out-of-distribution against
the SavedModel's own baseline and threshold. ``savedmodel``: the SavedModel's
``serving_image_embedding`` (or ``serving_image_bytes``) signature, the Transform graph inside,
15-35 s and ~0.75 GB with TensorFlow. The default is ``tflite`` when the model has a TFLite copy
with its out-of-distribution data (every model pushed since), else ``savedmodel``.

Prints one line per image: path, class, probability and, for a model that carries an embedding
baseline, its out-of-distribution score and flag (``ood`` / ``ok``: the score above the threshold
calibrated on held-out images at a 1 % false-positive rate) (``--format json``: one JSON object
per line with every class's probability; ``--format csv``: a header and one row per image). Folders are read
recursively (hidden files skipped) and classified in batches, with a progress bar on a terminal.
Files that are not decodable images, or are over the image budget that the model enforces (its
pixel and byte limits, checked from the file's size and header before it is read or decoded:
'too large: 20000×20000 pixels (limit 200000000)'), are reported on stderr (and as rows with an
``error`` in JSON and CSV) and skipped; the batch goes on. Symbolic links to files and folders are
followed (a loop stops with one line). Exit status: 0 all classified, 1 some files skipped, 2
nothing to do (no model, no such path, no images).
"""
import bootstrap  # pylint: disable=unused-import  # first: the Keras switch, before TensorFlow
import argparse
import csv
import json
import os
import sys
from typing import Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import numpy as np

# None of these imports TensorFlow: the TFLite engine never loads it
# (tests/test_predict_engines.py).
from pipeline import configs
from runner import flags
from run_results.served_models import NoModelError, image_budget_of, resolve_model
from components.image_example_gen import image_properties
from components.modules import image_limits
from components.modules import tflite_model

# Where `make run` (local_runner.py with its defaults) keeps the pipeline root.
DEFAULT_PIPELINE_ROOT = os.path.join(flags.run_dir(flags.SAMPLE_PIPELINE_NAME), 'pipeline_root')
FORMATS = ('text', 'json', 'csv')


class PredictError(Exception):
  """Nothing can be classified; the message says why."""


def list_images(paths: Sequence[str]) -> List[str]:
  """The files named, and every non-hidden file below the folders named, in a stable order."""
  from components.image_example_gen import file_tree
  found = []
  for path in paths:
    if os.path.isfile(path):
      found.append(path)
    elif os.path.isdir(path):
      try:  # symbolic links to files and folders followed, loops refused
        files = file_tree.walk_files(path)
      except file_tree.LinkLoopError as e:
        raise PredictError(str(e)) from e
      if not files:
        raise PredictError(f'{path} yields no images: found no files in it or below it '
                           '(hidden files are skipped)')
      found += files
    else:
      raise PredictError(f'{path}: no such file or folder')
  return found


class SavedModelClassifier:
  """The pushed model's image-bytes signature, fed in batches: its embedding signature (with the
  out-of-distribution score) when the model has one, else ``serving_image_bytes``."""

  def __init__(self, model_dir: str):
    import tensorflow as tf
    from components.modules import embedding, features
    self._tf, self._features, self._embedding = tf, features, embedding
    model = tf.saved_model.load(model_dir)
    self._model = model
    if embedding.EMBEDDING_SIGNATURE in model.signatures:
      self._serve = model.signatures[embedding.EMBEDDING_SIGNATURE]
      self.ood_threshold = float(model.ood_threshold.numpy())
    elif features.IMAGE_BYTES_SIGNATURE in model.signatures:
      self._serve = model.signatures[features.IMAGE_BYTES_SIGNATURE]
      self.ood_threshold = None  # a model saved before the embedding signature existed
    else:
      raise PredictError(f'{model_dir} has no {features.IMAGE_BYTES_SIGNATURE!r} signature; '
                         'is it a model pushed by this pipeline?')
    # Probability i is of class_names[i] (the Trainer saves the names with the model).
    self.class_names = [name.decode('utf-8') for name in model.class_names.numpy()]
    # The model refuses a whole request with an image over its budget: such files are skipped here.
    self.budget = image_budget_of(model)

  def read(self, data: bytes) -> bytes:
    """The file's bytes, once the ExampleGen's own check found them within the model's budget and
    decodable by TensorFlow."""
    image_properties.inspect_image(data, self.budget)
    return data

  def classify(self, images: List[bytes]) -> List[Dict[str, object]]:
    tf, features, embedding = self._tf, self._features, self._embedding
    out = self._serve(**{features.IMAGE_BYTES_INPUT: tf.constant(images)})
    results = [{'class': name.decode('utf-8'), 'probabilities': probabilities}
               for name, probabilities in zip(out[features.CLASS_NAMES_OUTPUT].numpy(),
                                              out[features.PROBABILITIES_OUTPUT].numpy().tolist())]
    if self.ood_threshold is not None:
      for result, score, flag in zip(results, out[embedding.OOD_SCORE_OUTPUT].numpy().tolist(),
                                     out[embedding.OOD_FLAG_OUTPUT].numpy().tolist()):
        result.update(ood_score=score, out_of_distribution=flag)
    return results


class TFLiteClassifier:
  """The pushed TFLite model in ai-edge-litert's interpreter, without TensorFlow: Pillow decodes
  (``read``), the model's ``pixels`` signature resizes, scales and classifies one image of any
  size a call, and numpy scores the embedding against the SavedModel's baseline and threshold."""

  def __init__(self, model_dir: str):
    try:
      from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
      raise PredictError(f'the TFLite engine needs ai-edge-litert ({e}; make setup installs it), '
                         'or pass --engine savedmodel') from e
    with open(tflite_model.tflite_path(model_dir), 'rb') as f:
      self._model = tflite_model.TFLiteModel(f.read(), Interpreter, num_threads=os.cpu_count())
    with open(tflite_model.folder_file(model_dir, tflite_model.CONTRACT_FILE)) as f:
      contract = json.load(f)
    self.class_names = contract['class_names']
    # The budget the model was built with, as the contract records it (PipelineConfig's defaults
    # for a model exported before it did).
    self.budget = image_limits.ImageBudget(*(
        int(contract.get(name, configs.default(name))) for name in image_limits.SAVED_ATTRIBUTES))
    self._baseline = tflite_model.OODBaseline.load(
        tflite_model.folder_file(model_dir, tflite_model.OOD_BASELINE_FILE))
    self.ood_threshold = self._baseline.threshold

  def read(self, data: bytes) -> np.ndarray:
    """Decoded as the Transform graph decodes, once within the model's budget."""
    return image_properties.upright_pixels(data, self.budget)

  def classify(self, images: List[np.ndarray]) -> List[Dict[str, object]]:
    results = []
    for pixels in images:
      probabilities, embedding = self._model.of_pixels(pixels)
      score = float(self._baseline.scores(embedding[np.newaxis])[0])
      results.append({'class': self.class_names[int(np.argmax(probabilities))],
                      'probabilities': probabilities.tolist(), 'ood_score': score,
                      'out_of_distribution': score > self.ood_threshold})
    return results


def has_tflite_engine(model_dir: str) -> bool:
  """Whether the model has a TFLite copy with its out-of-distribution data (pushed since both
  existed)."""
  return all(os.path.isfile(tflite_model.folder_file(model_dir, name))
             for name in (tflite_model.TFLITE_FILE, tflite_model.OOD_BASELINE_FILE))


def choose_engine(model_dir: str, requested: Optional[str]) -> str:
  """``requested``, checked; None: tflite where the model has it, else savedmodel."""
  if requested is None:
    return 'tflite' if has_tflite_engine(model_dir) else 'savedmodel'
  if requested == 'tflite' and not has_tflite_engine(model_dir):
    raise PredictError(f'{model_dir} has no TFLite model with out-of-distribution data '
                       f'({tflite_model.TFLITE_DIR}/{tflite_model.OOD_BASELINE_FILE}: a model '
                       'pushed before it existed); pass --engine savedmodel')
  return requested


CLASSIFIERS = {'tflite': TFLiteClassifier, 'savedmodel': SavedModelClassifier}


def predict(classifier: Union[SavedModelClassifier, TFLiteClassifier], paths: List[str],
            batch_size: int, progress: bool) -> Iterator[Dict[str, object]]:
  """{'path', 'class', 'probabilities'} or {'path', 'error'} per file, in order."""
  from tqdm import tqdm
  with tqdm(total=len(paths), unit='image', disable=not progress, file=sys.stderr) as bar:
    for start in range(0, len(paths), batch_size):
      batch, results = [], {}
      for path in paths[start:start + batch_size]:
        try:
          too_large = image_limits.file_size_reason(os.path.getsize(path), classifier.budget)
          if too_large:  # not even read
            raise image_properties.TooLargeError(too_large)
          with open(path, 'rb') as f:
            batch.append((path, classifier.read(f.read())))
        except (OSError, image_properties.UnreadableImageError) as e:
          results[path] = {'path': path, 'error': str(e)}
      if batch:
        for (path, _), result in zip(batch, classifier.classify([image for _, image in batch])):
          results[path] = {'path': path, **result}
      for path in paths[start:start + batch_size]:
        yield results[path]
      bar.update(len(paths[start:start + batch_size]))


def write(results: Iterator[Dict[str, object]], class_names: Sequence[str], fmt: str,
          out: TextIO) -> Tuple[int, int]:
  """Writes the results as they come; returns (files skipped, images out of distribution)."""
  skipped = out_of_distribution = 0
  writer = None
  for result in results:
    error = result.get('error')
    if error:
      skipped += 1
      print(f"skipped {result['path']}: {error}", file=sys.stderr)
    probabilities = result.get('probabilities') or []
    best = max(probabilities) if probabilities else None
    score, flag = result.get('ood_score'), result.get('out_of_distribution')
    out_of_distribution += bool(flag)
    if fmt == 'text':
      if not error:
        ood = '' if score is None else f"\t{score:.4f}\t{'ood' if flag else 'ok'}"
        out.write(f"{result['path']}\t{result['class']}\t{best:.4f}{ood}\n")
    elif fmt == 'json':
      row = {'path': result['path']}
      row.update({'error': error} if error else {
          'class': result['class'], 'probability': round(best, 6),
          'probabilities': dict(zip(class_names, (round(p, 6) for p in probabilities)))})
      if score is not None:
        row.update(ood_score=round(score, 6), out_of_distribution=flag)
      out.write(json.dumps(row, ensure_ascii=False) + '\n')
    else:
      if writer is None:
        writer = csv.writer(out)
        writer.writerow(['path', 'class', 'probability', *class_names, 'ood_score',
                         'out_of_distribution', 'error'])
      cells = [f'{p:.6f}' for p in probabilities] or [''] * len(class_names)
      writer.writerow([result['path'], result.get('class', ''),
                       '' if error else f'{best:.6f}', *cells,
                       '' if score is None else f'{score:.6f}',
                       '' if flag is None else str(flag).lower(), error or ''])
    out.flush()
  return skipped, out_of_distribution


def build_parser() -> argparse.ArgumentParser:
  parser = flags.FlagParser(description=__doc__)
  parser.add_argument('paths', nargs='+', metavar='PATH', help='image files and/or folders')
  parser.add_argument('--model', help='a SavedModel folder, or a serving dir (its newest version); '
                      'default: the latest model pushed by the pipeline at --pipeline-root')
  parser.add_argument('--pipeline-root', default=DEFAULT_PIPELINE_ROOT,
                      help='where to look up the latest pushed model (default %(default)s)')
  parser.add_argument('--engine', choices=list(CLASSIFIERS),
                      help='tflite: the TFLite copy in ai-edge-litert, without TensorFlow (1-3 s '
                      'from start to answer); savedmodel: the SavedModel through TensorFlow (15-35 '
                      's); default: tflite where the model has its TFLite copy with '
                      'out-of-distribution data (every model pushed since both existed), else '
                      'savedmodel')
  parser.add_argument('--format', choices=FORMATS, default='text', help='output format')
  parser.add_argument('--batch-size', type=int, default=32,
                      help='images per SavedModel call (the TFLite engine takes one at a time)')
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  if args.batch_size < 1:
    build_parser().error('--batch-size must be a positive integer')
  try:
    paths = list_images(args.paths)
    if not paths:
      raise PredictError(f'no files under {", ".join(args.paths)}')
    model_dir = resolve_model(args.model, args.pipeline_root)
    engine = choose_engine(model_dir, args.engine)
    print(f'model: {model_dir}; engine {engine}; {len(paths)} file(s)', file=sys.stderr)
    classifier = CLASSIFIERS[engine](model_dir)
    if classifier.ood_threshold is None:
      print('this model carries no embedding baseline (saved before it existed): no '
            'out-of-distribution scores', file=sys.stderr)
  except (PredictError, NoModelError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  # The TFLite engine classifies one image a call: no batch of decoded photos is held.
  batch_size = 1 if engine == 'tflite' else args.batch_size
  skipped, out_of_distribution = write(
      predict(classifier, paths, batch_size, progress=sys.stderr.isatty()),
      classifier.class_names, args.format, sys.stdout)
  if classifier.ood_threshold is not None:
    print(f'{out_of_distribution} of {len(paths) - skipped} image(s) out of distribution: score '
          f'above {classifier.ood_threshold:.4f}, which 1 % of held-out training-like images '
          'exceed', file=sys.stderr)
  if skipped == len(paths):
    print(f'error: {", ".join(args.paths)} yields no images: none of its {len(paths)} file(s) is a '
          "decodable image within the model's image budget", file=sys.stderr)
    return 2
  if skipped:
    print(f'{skipped} of {len(paths)} file(s) skipped: not decodable images, or too large',
          file=sys.stderr)
  return 1 if skipped else 0


if __name__ == '__main__':
  sys.exit(main())
