"""Benchmark: the data-quality checks (components/data_quality) on planted errors in real photos.

For cats_and_dogs_filtered (train/, validation/) and flowers (class folders, split here 80/20 per
class, seeded), a copy in a temp dir gets planted errors: 2 % of the training photos moved to a
random other class; 40 near duplicates of each kind (JPEG quality 60, resized to 0.75x, 5-10 %
cropped off, mirrored) of other training photos put in validation/; 10 photos of the other data
set put in train/ (outliers). The split is the pipeline's: train/ -> train, validation/ -> eval or
test by a hash of the path. Every image is embedded as is and mirrored (MobileNetV2 alpha 1.0 from
../shared/weights, 160 px, bilinear, [-1, 1]; cached by content hash in /tmp), then it measures

* near duplicates: planted copies found and false pairs for a sweep of thresholds, with the
  descriptors the checks use and with the raw cosine; the similarity distributions of planted
  copies and of distinct photos' nearest neighbours (what the default threshold rests on). An
  unplanted pair is false unless 24 x 24 thumbnails confirm it or it is in REVIEWED_PAIRS (looked
  at: the same photo, or the same scene shot again);
* label errors: planted ones in the top 2 / 5 / 10 % of the ranking, the flagged set's precision
  and recall;
* outliers: how many are flagged, how many of the foreign photos;
* the checks' wall time (the embedding not included), and what they find in the unmodified data.

Writes benchmarks/results/data_quality_benchmark.{json,md} (--quick: a few hundred images,
prints only). Skips when ../shared is absent.

    nice python -m benchmarks.data_quality_benchmark [--quick]
"""
import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

import bootstrap  # pylint: disable=unused-import

# pylint: disable=wrong-import-position
import numpy as np
from PIL import Image, ImageOps

from components.data_quality import checks
from benchmarks import common
from benchmarks import label_error_study

# As benchmarks/pipeline_benchmark.py (not imported: it imports the whole pipeline).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('CATS_DOGS_SHARED', os.path.join(os.path.dirname(REPO), 'shared'))
WEIGHTS = os.path.join(SHARED, 'weights', 'mobilenet_v2_1.0_160_no_top_partly_dogs_finetuned.h5')
RESULTS = os.path.join(REPO, 'benchmarks', 'results')

IMAGE_SIZE, ALPHA, BATCH = 160, 1.0, 32
DATASETS = {
    'cats_and_dogs_filtered': os.path.join(SHARED, 'datasets', 'cats_and_dogs_filtered'),
    'flowers': os.path.join(SHARED, 'datasets', 'flowers'),
}
TEST_FRACTION = 0.2
CACHE = os.path.join(tempfile.gettempdir(), 'data_quality_benchmark',
                     f'embeddings_{os.path.basename(WEIGHTS)}.npz')
COPY_KINDS = ('jpeg_quality_60', 'resized_0.75', 'cropped_5_10pct', 'mirrored')
LABEL_ERROR_SHARE = 0.02


@dataclasses.dataclass
class Planted:
  """A copy of a data set with planted errors, and what was planted."""
  images: checks.ImageSet
  files: List[str]                # absolute path of each image (in the temp copy)
  copy_of: Dict[int, int]         # planted near-duplicate -> the training image it copies
  copy_kind: Dict[int, str]
  true_label: Dict[int, int]      # training image moved to another class -> its real class
  foreign: List[int]              # photos of the other data set put in train/: outliers


# --- the data: originals, split, and planted errors ---------------------------------------------

def original_files(name: str, root: str, seed: int = 0) -> List[Tuple[str, str, str]]:
  """(split folder, class, absolute path) of every image of a data set; flowers has class folders
  only, split here 80/20 per class with a seeded shuffle."""
  out = []
  if name == 'flowers':
    rng = np.random.default_rng(seed)
    for c in sorted(os.listdir(root)):
      names = sorted(os.listdir(os.path.join(root, c)))
      validation = set(rng.permutation(len(names))[:round(0.2 * len(names))].tolist())
      out += [('validation' if i in validation else 'train', c, os.path.join(root, c, n))
              for i, n in enumerate(names)]
    return out
  for folder in ('train', 'validation'):
    for c in sorted(os.listdir(os.path.join(root, folder))):
      out += [(folder, c, os.path.join(root, folder, c, n))
              for n in sorted(os.listdir(os.path.join(root, folder, c)))]
  return out


def _split(relative_path: str) -> str:
  """The pipeline's split (components/image_example_gen/splits.py, the same hash; that package
  is not imported, it imports TFX): train/ -> train; in validation/, a hash of the path below it
  puts ``TEST_FRACTION`` of the files in test, the rest in eval."""
  folder, below = relative_path.split('/', 1)
  if folder == 'train':
    return 'train'
  fraction = int.from_bytes(hashlib.sha256(below.encode('utf-8')).digest()[:8], 'big') / 2.0**64
  return 'test' if fraction < TEST_FRACTION else 'eval'


def _copy(source: str, kind: str, target: str, rng: np.random.Generator) -> None:
  """A near-duplicate of ``source`` made the way copies happen: re-encoded, resized, cropped or
  mirrored, then saved as JPEG."""
  image = Image.open(source).convert('RGB')
  quality = 90
  if kind == 'jpeg_quality_60':
    quality = 60
  elif kind == 'resized_0.75':
    image = image.resize((round(image.width * 0.75), round(image.height * 0.75)), Image.BILINEAR)
  elif kind == 'cropped_5_10pct':
    # 5-10 % of the width and of the height off, shared at random between the two borders.
    w, h = image.size
    cut_w, cut_h = (round(s * rng.uniform(0.05, 0.10)) for s in (w, h))
    left, top = int(rng.integers(0, cut_w + 1)), int(rng.integers(0, cut_h + 1))
    image = image.crop((left, top, left + w - cut_w, top + h - cut_h))
  elif kind == 'mirrored':
    image = ImageOps.mirror(image)
  image.save(target, 'JPEG', quality=quality)


def plant(name: str, work: str, copies_per_kind: int, foreign: int, max_per_split: int = 0,
          seed: int = 0) -> Tuple[Planted, checks.ImageSet, List[str]]:
  """(a copy of data set ``name`` under ``work`` with planted errors, the unmodified data set and
  its files), without embeddings. Planted: ``LABEL_ERROR_SHARE`` of the training photos moved to a random other
  class; ``copies_per_kind`` near-duplicates of each ``COPY_KINDS`` of other training photos in
  validation/ (their own class); ``foreign`` photos of the other data set in train/ (a random
  class), the outliers. ``max_per_split`` > 0 keeps a random subset of each split folder."""
  rng = np.random.default_rng(seed)
  files = original_files(name, DATASETS[name], seed)
  if max_per_split:
    keep = []
    for folder in ('train', 'validation'):
      rows = [f for f in files if f[0] == folder]
      keep += [rows[i] for i in sorted(rng.permutation(len(rows))[:max_per_split])]
    files = keep
  class_names = sorted({c for _, c, _ in files})
  train = [i for i, f in enumerate(files) if f[0] == 'train']
  chosen = rng.permutation(train)
  n_errors = round(LABEL_ERROR_SHARE * len(train))
  moved = {int(i): int(rng.choice([k for k in range(len(class_names))
                                   if class_names[k] != files[i][1]])) for i in chosen[:n_errors]}
  sources = chosen[n_errors:n_errors + copies_per_kind * len(COPY_KINDS)]
  rows, copy_of, copy_kind, true_label, outliers = [], {}, {}, {}, []

  def add(relative, label, make):
    target = os.path.join(work, relative)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    make(target)
    rows.append((relative, label, target))

  for i, (folder, c, path) in enumerate(files):
    label = moved.get(i, class_names.index(c))
    if i in moved:
      true_label[i] = class_names.index(c)
    add(f'{folder}/{class_names[label]}/{os.path.basename(path)}', label,
        lambda target, path=path: shutil.copyfile(path, target))
  for k, source in enumerate(sources):
    kind = COPY_KINDS[k // copies_per_kind]
    _, c, path = files[source]
    copy_of[len(rows)], copy_kind[len(rows)] = int(source), kind
    add(f'validation/{c}/copy_{kind}_{os.path.basename(path)}', class_names.index(c),
        lambda target, path=path, kind=kind: _copy(path, kind, target, rng))
  other = [n for n in DATASETS if n != name][0]
  strangers = original_files(other, DATASETS[other], seed)
  for k in rng.permutation(len(strangers))[:foreign]:
    label = int(rng.integers(len(class_names)))
    outliers.append(len(rows))
    add(f'train/{class_names[label]}/foreign_{os.path.basename(strangers[k][2])}', label,
        lambda target, path=strangers[k][2]: shutil.copyfile(path, target))
  unmodified = [(f'{folder}/{c}/{os.path.basename(path)}', class_names.index(c), path)
                for folder, c, path in files]
  planted = Planted(_image_set(rows, class_names), [r[2] for r in rows], copy_of, copy_kind,
                    true_label, outliers)
  return planted, _image_set(unmodified, class_names), [r[2] for r in unmodified]


def _image_set(rows: Sequence[Tuple[str, int, str]], class_names: List[str]) -> checks.ImageSet:
  return checks.ImageSet(
      paths=[r[0] for r in rows], splits=[_split(r[0]) for r in rows],
      labels=np.array([r[1] for r in rows]), class_names=class_names,
      hashes=[checks.content_hash(_read(r[2])) for r in rows],
      embeddings=np.zeros((len(rows), 0, 0), np.float32))


def _read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


# --- embeddings (benchmark only; the pipeline computes them in the Trainer) ----------------------

def _load_cache() -> Dict[str, np.ndarray]:
  if not os.path.exists(CACHE):
    return {}
  with np.load(CACHE) as data:
    return dict(zip(data['hashes'].tolist(), data['embeddings']))


def _save_cache(cache: Dict[str, np.ndarray]) -> None:
  os.makedirs(os.path.dirname(CACHE), exist_ok=True)
  hashes = sorted(cache)
  np.savez(CACHE + '.tmp.npz', hashes=np.array(hashes),
           embeddings=np.stack([cache[h] for h in hashes]))
  os.replace(CACHE + '.tmp.npz', CACHE)


def embed(files: Sequence[str], hashes: Sequence[str]) -> Tuple[np.ndarray, float]:
  """(pooled features [N, 2, 1280] of each file as is and mirrored, seconds spent embedding the
  files that were not cached yet); cached in CACHE by content hash."""
  cache = _load_cache()
  todo = sorted({h: f for f, h in zip(files, hashes) if h not in cache}.items())
  start = time.time()
  if todo:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    base = tf.keras.applications.MobileNetV2(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                             include_top=False, alpha=ALPHA, weights=WEIGHTS,
                                             pooling='avg')

    @tf.function(input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)])
    def views(images):
      return tf.stack([base(images, training=False),
                       base(tf.image.flip_left_right(images), training=False)], axis=1)

    def decode(path):
      image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
      return tf.image.resize(tf.cast(image, tf.float32), [IMAGE_SIZE, IMAGE_SIZE]) / 127.5 - 1.0

    for i in range(0, len(todo), BATCH):
      batch = todo[i:i + BATCH]
      out = views(tf.stack([decode(f) for _, f in batch])).numpy()
      cache.update({h: e for (h, _), e in zip(batch, out)})
      if (i // BATCH) % 20 == 19:
        print(f'  embedded {i + len(batch)}/{len(todo)} in {time.time() - start:.0f}s', flush=True)
    _save_cache(cache)
  return np.stack([cache[h] for h in hashes]).astype(np.float32), time.time() - start



# --- the measurements -----------------------------------------------------------------------------

def thumbnails(files: Sequence[str]) -> np.ndarray:
  """[N, 2, 576]: 24 x 24 grey thumbnails of each file and of its mirror image, centred and
  normalised: a pixel-level check of a reported pair that owes nothing to the embeddings."""
  out = []
  for path in files:
    grey = Image.open(path).convert('L').resize((24, 24), Image.BILINEAR)
    out.append([np.asarray(grey, np.float32).ravel(),
                np.asarray(ImageOps.mirror(grey), np.float32).ravel()])
  out = np.array(out)
  out -= out.mean(axis=-1, keepdims=True)
  return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-6)


PIXEL_DUPLICATE = 0.9  # thumbnails' correlation (either orientation) of the same photo re-saved


def pixel_correlation(thumbs: np.ndarray, a: int, b: int) -> float:
  return float(max(thumbs[a, 0] @ thumbs[b, 0], thumbs[a, 0] @ thumbs[b, 1]))


def duplicate_sweep(planted: Planted, thumbs: np.ndarray, components, thresholds) -> List[dict]:
  """Per threshold: planted copies found (all, per kind), and the pairs reported that are not
  planted, split into duplicates that the pixels confirm (the same photo twice in the original
  data, or a copy and a pixel-level duplicate of its source) and the rest, the false pairs."""
  images, n = planted.images, len(planted.images.paths)
  pairs = checks.near_duplicates(images, min(thresholds), components)
  planted_pairs = {(min(c, s), max(c, s)): c for c, s in planted.copy_of.items()}
  source = lambda i: planted.copy_of.get(i, i)
  by_pixels = lambda p: (pixel_correlation(thumbs, p.first, p.second) >= PIXEL_DUPLICATE or
                         pixel_correlation(thumbs, source(p.first), source(p.second))
                         >= PIXEL_DUPLICATE)
  by_eye = lambda p: REVIEWED_PAIRS.get(frozenset(
      os.path.basename(images.paths[source(i)]) for i in (p.first, p.second)), 'not looked at')
  kinds = {(a, b): planted.copy_kind[c] for (a, b), c in planted_pairs.items()}
  rows = []
  for threshold in thresholds:
    reported = [p for p in pairs if p.similarity >= threshold]
    found = {(p.first, p.second) for p in reported} & set(planted_pairs)
    other = [p for p in reported if (p.first, p.second) not in planted_pairs]
    unconfirmed = [p for p in other if not by_pixels(p)]
    false = [p for p in unconfirmed if by_eye(p) not in ('same photo', 'same scene')]
    rows.append({
        'threshold': threshold, 'reported_pairs': len(reported),
        'planted_found': round(len(found) / max(len(planted_pairs), 1), 4),
        'planted_found_by_kind': {kind: round(
            sum(kinds[key] == kind for key in found) /
            max(sum(v == kind for v in kinds.values()), 1), 4) for kind in COPY_KINDS},
        'unplanted_pixel_duplicates': len(other) - len(unconfirmed),
        'unplanted_same_photo_or_scene_by_eye': len(unconfirmed) - len(false),
        'false_pairs': len(false),
        'false_not_looked_at': sum(by_eye(p) == 'not looked at' for p in false),
        'false_share_of_reported': round(len(false) / max(len(reported), 1), 4),
        'false_share_of_images': round(len(false) / n, 4),
        'false_examples': [[images.paths[p.first], images.paths[p.second], round(p.similarity, 4),
                            round(pixel_correlation(thumbs, p.first, p.second), 3), by_eye(p)]
                           for p in false[:6]],
        'by_eye_examples': [[images.paths[p.first], images.paths[p.second], round(p.similarity, 4),
                             by_eye(p)] for p in unconfirmed if p not in false][:8]})
  return rows


def similarity_distributions(planted: Planted, thumbs: np.ndarray, components) -> dict:
  """The planted copies' similarity to their source (per kind) against the nearest neighbour's
  similarity of each original photo among the other originals, pixel-level duplicates left out."""
  units = checks.descriptors(planted.images, components)
  copies = np.array(sorted(planted.copy_of))
  sources = np.array([planted.copy_of[c] for c in copies])
  pair = lambda a, b: np.maximum.reduce([units[a, 0] @ units[b, v] for v in (0, 1)] +
                                        [units[b, 0] @ units[a, 1]])
  copy_similarity = np.array([pair(c, s) for c, s in zip(copies, sources)])
  originals = np.setdiff1d(np.arange(len(units)), np.concatenate([copies, planted.foreign]))
  nearest = []
  sub = units[originals]
  for start, block in checks.similarity_blocks(sub):
    top = np.argpartition(-block, 5, axis=1)[:, :5]
    for row in range(len(block)):
      for column in top[row][np.argsort(-block[row, top[row]])]:  # the nearest the pixels don't confirm
        if pixel_correlation(thumbs, originals[start + row], originals[column]) < PIXEL_DUPLICATE:
          nearest.append(block[row, column])
          break
  nearest = np.array(nearest)
  quantiles = lambda x, qs: {str(q): round(float(np.quantile(x, q)), 4) for q in qs}
  return {
      'planted_copies': {kind: {'min': round(float(v.min()), 4), **quantiles(v, (0.05, 0.5))}
                         for kind in COPY_KINDS
                         for v in [copy_similarity[[planted.copy_kind[c] == kind for c in copies]]]},
      'planted_copies_all': {'min': round(float(copy_similarity.min()), 4),
                             **quantiles(copy_similarity, (0.02, 0.05, 0.5))},
      'distinct_nearest_neighbour': {**quantiles(nearest, (0.5, 0.9, 0.99, 0.999)),
                                     'max': round(float(nearest.max()), 4),
                                     'images': len(nearest)},
  }


def label_metrics(planted: Planted, ranking) -> dict:
  """Planted label errors in the top of the ranking, and the flagged set's precision and recall."""
  planted_errors = set(planted.true_label)
  order = ranking.indices.tolist()
  top = lambda share: set(order[:int(round(share * len(order)))])
  flagged = set(ranking.indices[ranking.flagged].tolist())
  found = flagged & planted_errors
  suggested = dict(zip(ranking.indices.tolist(), ranking.suggested.tolist()))
  return {
      'ranked_images': len(order), 'planted_errors': len(planted_errors),
      **{f'recall_top_{int(share * 100)}pct': round(len(top(share) & planted_errors) /
                                                      len(planted_errors), 4)
         for share in (0.02, 0.05, 0.10)},
      'median_rank_share_of_planted': round(float(np.median(
          [order.index(i) for i in planted_errors]) / len(order)), 4),
      'flagged': len(flagged), 'flagged_planted': len(found),
      'flagged_foreign': len(flagged & set(planted.foreign)),
      'precision': round(len(found) / max(len(flagged), 1), 4),
      'recall': round(len(found) / len(planted_errors), 4),
      'suggested_label_right': round(float(np.mean(
          [suggested[i] == planted.true_label[i] for i in found])) if found else 0.0, 4),
      'out_of_fold_accuracy': round(float(np.mean(
          ranking.probabilities.argmax(axis=1) == planted.images.labels[ranking.indices])), 4),
      **_by_confusion(planted, ranking, top(0.05)),
  }


def _by_confusion(planted: Planted, ranking, top: set) -> dict:
  """Planted errors in the top of the ranking, split by whether the probe confuses their true and
  given classes on the clean images (either way, >= 10 % of a class predicted as the other): a
  photo moved between classes that the probe tells apart stands out; between confused ones it
  hides among the probe's own mistakes."""
  labels = planted.images.labels[ranking.indices]
  predicted = ranking.probabilities.argmax(axis=1)
  clean = ~np.isin(ranking.indices, list(planted.true_label))
  classes = len(planted.images.class_names)
  rate = np.array([[np.mean(predicted[clean & (labels == t)] == g) for g in range(classes)]
                   for t in range(classes)])
  confused = {i for i, true in planted.true_label.items()
              if max(rate[true, planted.images.labels[i]], rate[planted.images.labels[i], true])
              >= 0.1}
  recall = lambda group: round(len(group & top) / len(group), 4) if group else None
  return {'planted_between_confused_classes': len(confused),
          'recall_top_5pct_confused_classes': recall(confused),
          'recall_top_5pct_other_classes': recall(set(planted.true_label) - confused)}


def timed_analysis(images: checks.ImageSet) -> Tuple[dict, dict]:
  """(analyse's report, seconds: all of it and each check alone), each on a fresh ImageSet so that
  none reuses another's spectrum."""
  fresh = lambda: dataclasses.replace(images)
  seconds = {}
  start = time.time()
  report = checks.analyse(fresh())
  seconds['analyse'] = round(time.time() - start, 2)
  for name, check in (('spectrum', lambda i: i.spectrum), ('near_duplicates', checks.near_duplicates),
                      ('label_issue_ranking', checks.label_issue_ranking),
                      ('outliers', checks.outliers)):
    start = time.time()
    check(fresh())
    seconds[name] = round(time.time() - start, 2)
  seconds['load_average'] = round(os.getloadavg()[0], 2)
  return report, seconds


def summary(report: dict, examples: int = 8) -> dict:
  """The counts and the first few findings of a report (the JSON keeps them short)."""
  leaks = [p for p in report['near_duplicates'] if ('train' in p['splits']) and
           any(s != 'train' for s in p['splits'])]
  return {'counts': report['counts'], 'thresholds': report['thresholds'],
          'near_duplicates': report['near_duplicates'][:examples * 2], 'cross_split': leaks[:examples],
          'label_issues': report['label_issues'][:examples],
          'outliers': report['outliers'][:examples]}


def run_dataset(name: str, work: str, copies_per_kind: int, foreign: int,
                max_per_split: int) -> dict:
  planted, unmodified, original_files_ = plant(name, os.path.join(work, name), copies_per_kind,
                                               foreign, max_per_split)
  embeddings, embed_seconds = embed(planted.files, planted.images.hashes)
  images = dataclasses.replace(planted.images, embeddings=embeddings)
  planted = dataclasses.replace(planted, images=images)
  print(f'{name}: {len(planted.files)} images ({embed_seconds:.0f}s embedding the uncached)',
        flush=True)
  report, seconds = timed_analysis(images)
  thumbs = thumbnails(planted.files)
  result = {
      'images': len(planted.files), 'planted_copies': len(planted.copy_of),
      'planted_label_errors': len(planted.true_label), 'planted_foreign': len(planted.foreign),
      'splits': {s: int(np.sum(np.array(images.splits) == s)) for s in sorted(set(images.splits))},
      'embedding_seconds_uncached': round(embed_seconds, 1), 'check_seconds': seconds,
      'near_duplicates': {
          'descriptors': duplicate_sweep(planted, thumbs, checks.DESCRIPTOR_COMPONENTS,
                                         [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85]),
          'raw_cosine': duplicate_sweep(planted, thumbs, None,
                                        [0.85, 0.88, 0.9, 0.92, 0.94, 0.96]),
          'distributions': {
              'descriptors': similarity_distributions(planted, thumbs,
                                                      checks.DESCRIPTOR_COMPONENTS),
              'raw_cosine': similarity_distributions(planted, thumbs, None)}},
      'label_issues': label_metrics(planted, checks.label_issue_ranking(images)),
      'label_ranking_study': label_error_study.study(
          images, planted.true_label,
          [i for i, s in enumerate(images.splits) if s == 'train' and i not in planted.foreign]),
      'outliers': {
          'flagged': report['counts']['outliers'],
          'foreign_flagged': sum(images.paths[i] in {o['path'] for o in report['outliers']}
                                 for i in planted.foreign),
          'foreign': len(planted.foreign),
          'threshold': report['thresholds']['outlier_distance'],
          'top': report['outliers'][:10]},
      'report_counts': report['counts'],
  }
  print(f"{name} planted: {json.dumps({k: result[k] for k in ('check_seconds', 'label_issues', 'outliers')})}",
        flush=True)
  original_embeddings, _ = embed(original_files_, unmodified.hashes)
  unmodified = dataclasses.replace(unmodified, embeddings=original_embeddings)
  original_report, original_seconds = timed_analysis(unmodified)
  result['unmodified'] = {**summary(original_report), 'check_seconds': original_seconds}
  print(f"{name} unmodified: {json.dumps(original_report['counts'])}", flush=True)
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true',
                      help='300 images per split folder, 10 copies of each kind, 5 foreign photos; '
                           'prints, writes no results')
  args = parser.parse_args(argv)
  missing = [path for path in list(DATASETS.values()) + [WEIGHTS] if not os.path.exists(path)]
  if missing:
    print(f'skipped: {missing} absent')
    return 0
  work = tempfile.mkdtemp(prefix='data_quality_benchmark_')
  try:
    results = {
        'model': f'MobileNetV2 alpha {ALPHA}, {IMAGE_SIZE} px, {os.path.basename(WEIGHTS)}, frozen, '
                 'pooled features; views: as is, mirrored',
        'cpus': os.cpu_count(), 'quick': args.quick,
        'defaults': {'near_duplicate_similarity': checks.NEAR_DUPLICATE_SIMILARITY,
                     'descriptor_components': checks.DESCRIPTOR_COMPONENTS,
                     'outlier_neighbour': checks.OUTLIER_NEIGHBOUR,
                     'outlier_quantile': checks.OUTLIER_QUANTILE,
                     'pixel_duplicate_correlation': PIXEL_DUPLICATE},
        'datasets': {name: run_dataset(name, work, 10 if args.quick else 40, 5 if args.quick else 10,
                                       300 if args.quick else 0) for name in DATASETS}}
  finally:
    shutil.rmtree(work, ignore_errors=True)
  if args.quick:
    print(json.dumps(results, indent=1, default=str)[:20000])
  else:
    write_results(results)
  return 0


def _share(value) -> str:
  return '-' if value is None else f'{value:.1%}'


def _study_lines(study: dict) -> List[str]:
  """benchmarks/label_error_study.py's table: each planting's top-5 % recall by ranking, the
  probe's accuracy and the share of planted errors it recognises."""
  names = label_error_study.RANKINGS
  row = lambda label, p: (f'| {label} | ' + ' | '.join(f'{p[k]:.1%}' for k in names)
                          + f" | {p['out_of_fold_accuracy']:.3f} | {p['recognised']:.1%} |")
  return ['Planted errors in the top 5 % by ranking (benchmarks/label_error_study.py), for this '
          "planting and the same share moved again by other seeds; 'recognised': planted errors "
          "whose real class is the probe's out-of-fold argmax, about what a ranking on this probe "
          'can find (a photo it does not recognise hides among the hard photos of its new class).',
          '',
          '| planting | ' + ' | '.join(n.replace('_', ' ') for n in names)
          + ' | probe accuracy | recognised |', '|---' * (len(names) + 3) + '|',
          *[row(seed, p) for seed, p in zip(study['seeds'], study['plantings'])],
          row('mean', study['mean'])]


def write_results(results: dict) -> None:
  d = results['defaults']
  lines = [
      '# Data quality benchmark', '',
      f"Embeddings: {results['model']}. Checks: components/data_quality (numpy, scikit-learn). "
      f"Defaults: near duplicates at similarity >= {d['near_duplicate_similarity']} of descriptors "
      f"with the top {d['descriptor_components']} principal directions flattened; outliers: cosine "
      f"distance to the {d['outlier_neighbour']}th neighbour above its {d['outlier_quantile']} "
      f"quantile; label issues: confident learning, 5-fold logistic regression. {results['cpus']} "
      'CPUs, the machine shared.', '',
      'Planted in a temp copy of each data set: 2 % of the training photos moved to a random other '
      'class; near duplicates of other training photos in validation/ (JPEG quality 60, resized '
      '0.75x, 5-10 % cropped off, mirrored); photos of the other data set in train/ (outliers). '
      'A reported pair that is not planted is a false pair unless 24x24 grey thumbnails correlate '
      f">= {d['pixel_duplicate_correlation']} (either orientation; for a copy, with its source): "
      'the same photo twice in the original data.', '']
  for name, r in results['datasets'].items():
    t = r['check_seconds']
    lines += [f'## {name}', '',
              f"{r['images']} images ({', '.join(f'{k} {v}' for k, v in r['splits'].items())}): "
              f"{r['planted_copies']} planted copies, {r['planted_label_errors']} label errors, "
              f"{r['planted_foreign']} foreign photos. Checks' wall time (embedding not included): "
              f"analyse {t['analyse']} s; alone: spectrum {t['spectrum']} s, near_duplicates "
              f"{t['near_duplicates']} s, label_issue_ranking {t['label_issue_ranking']} s, outliers "
              f"{t['outliers']} s (load average {t['load_average']}).", '',
              '### Near duplicates: threshold sweep', '',
              '| similarity | threshold | copies found | jpeg q60 | resized | cropped | mirrored '
              '| reported pairs | unplanted: pixel-confirmed | same photo / scene by eye '
              '| false pairs (not looked at) | of reported | of images |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for kind in ('descriptors', 'raw_cosine'):
      for row in r['near_duplicates'][kind]:
        k = row['planted_found_by_kind']
        lines.append(
            f"| {kind} | {row['threshold']} | {row['planted_found']:.1%} | "
            + ' | '.join(f'{k[c]:.0%}' for c in COPY_KINDS)
            + f" | {row['reported_pairs']} | {row['unplanted_pixel_duplicates']} | "
              f"{row['unplanted_same_photo_or_scene_by_eye']} | {row['false_pairs']} "
              f"({row['false_not_looked_at']}) | {row['false_share_of_reported']:.1%} | "
              f"{row['false_share_of_images']:.2%} |")
    lines += ['', '| similarity | planted copies: min, 5 %, median (crops / mirrors min) | distinct '
              'photos\' nearest neighbour: median, 99 %, 99.9 %, max |', '|---|---|---|']
    for kind, dist in r['near_duplicates']['distributions'].items():
      c, n = dist['planted_copies_all'], dist['distinct_nearest_neighbour']
      lines.append(f"| {kind} | {c['min']}, {c['0.05']}, {c['0.5']} "
                   f"({dist['planted_copies']['cropped_5_10pct']['min']} / "
                   f"{dist['planted_copies']['mirrored']['min']}) | {n['0.5']}, {n['0.99']}, "
                   f"{n['0.999']}, {n['max']} |")
    at_default = [row for row in r['near_duplicates']['descriptors']
                  if row['threshold'] == d['near_duplicate_similarity']][0]
    if at_default['false_examples']:
      lines += ['', 'False pairs at the default (similarity, thumbnail correlation, by eye): ' +
                '; '.join(f'{a} ~ {b} ({s}, {p}, {e})'
                          for a, b, s, p, e in at_default['false_examples'])]
    if at_default['by_eye_examples']:
      lines += ['', 'Unplanted pairs at the default that the thumbnails miss and the eye confirms: '
                + '; '.join(f'{a} ~ {b} ({s}, {e})' for a, b, s, e in at_default['by_eye_examples'])]
    lab = r['label_issues']
    lines += ['', '### Label errors', '',
              f"{lab['planted_errors']} planted among {lab['ranked_images']} ranked images (every "
              f"split); out-of-fold accuracy of the probe {lab['out_of_fold_accuracy']}. In the top "
              f"2 / 5 / 10 % of the ranking: {lab['recall_top_2pct']:.1%} / "
              f"{lab['recall_top_5pct']:.1%} / {lab['recall_top_10pct']:.1%}; median rank "
              f"{lab['median_rank_share_of_planted']:.1%}. Flagged: {lab['flagged']} "
              f"({lab['flagged_planted']} planted, {lab['flagged_foreign']} foreign photos): "
              f"precision {lab['precision']:.1%}, recall {lab['recall']:.1%}; suggested label right "
              f"for {lab['suggested_label_right']:.1%} of the planted ones found. In the top 5 %: "
              f"{_share(lab['recall_top_5pct_confused_classes'])} of the "
              f"{lab['planted_between_confused_classes']} moved between two classes that the probe "
              f"confuses (>= 10 % of the clean images of one predicted as the other), "
              f"{_share(lab['recall_top_5pct_other_classes'])} of the others.", '',
              *_study_lines(r['label_ranking_study']), '',
              '### Outliers', '',
              f"{r['outliers']['flagged']} flagged (distance > {r['outliers']['threshold']}), "
              f"{r['outliers']['foreign_flagged']} of the {r['outliers']['foreign']} foreign photos. "
              'Farthest: ' + ', '.join(f"{o['path']} ({o['score']})" for o in r['outliers']['top'][:6])
              + '.']
    u = r['unmodified']
    c = u['counts']
    lines += ['', '### The unmodified data set', '',
              f"{c['images']} images: {c['exact_duplicate_pairs']} exact and "
              f"{c['near_duplicate_pairs']} near duplicate pairs (exact included), "
              f"{c['cross_split_pairs']} across train and eval/test, "
              f"{c['conflicting_label_pairs']} with two different labels, {c['label_issues']} label "
              f"issues flagged, {c['outliers']} outliers; analyse {u['check_seconds']['analyse']} s.", '']
    lines += ['Near duplicates: ' + '; '.join(
        f"{p['paths'][0]} ~ {p['paths'][1]} ({'/'.join(p['splits'])}, {p['similarity']}"
        f"{', exact' if p['exact'] else ''})" for p in u['near_duplicates'][:12]), '',
              'Most suspicious labels: ' + '; '.join(
                  f"{i['path']} ({i['split']}) {i['given_label']} -> {i['suggested_label']} "
                  f"({i['score']})" for i in u['label_issues'][:8]), '',
              'Farthest outliers: ' + '; '.join(f"{o['path']} ({o['score']})"
                                                for o in u['outliers'][:8])]
    if REVIEWED_FINDINGS.get(name):
      lines += ['', 'Looked at:', ''] + [f'* {note}' for note in REVIEWED_FINDINGS[name]]
    lines.append('')
  common.write_results('data_quality_benchmark', results, '\n'.join(lines) + '\n')


# Unplanted pairs at similarity >= 0.65 that the thumbnails do not confirm, looked at side by side
# (a planted copy by its source's name): 'same photo' (another crop or processing of it), 'same
# scene' (the same flower shot again, seconds apart: a leak all the same) or 'distinct'.
REVIEWED_PAIRS = {frozenset(pair.split(' ~ ')): verdict for pair, verdict in {
    'dog.455.jpg ~ dog.775.jpg': 'distinct',  # two white poodles
    'dog.748.jpg ~ dog.2117.jpg': 'distinct',  # two huskies
    'dog.455.jpg ~ dog.581.jpg': 'distinct',
    '14741866338_bdc8bfc8d5_n.jpg ~ 14925398301_55a180f919_n.jpg': 'same photo',
    '7630517248_98fb8bee1f_n.jpg ~ 9204730092_a7f2182347.jpg': 'same photo',
    '18995294384_77543e96b6_n.jpg ~ 19437710780_c5f2156438.jpg': 'same photo',
    '17420983523_2e32d70359.jpg ~ 19440910519_cb1162470e.jpg': 'same photo',
    '18243351371_5fda92ac0a_n.jpg ~ 18999743619_cec3f39bee.jpg': 'same photo',
    '14741813110_94964c39e2_n.jpg ~ 14741907467_fab96f3b2b_n.jpg': 'same scene',
    '8978962053_0727b41d26.jpg ~ 8980145452_efbd6e3b04.jpg': 'same scene',
    '16817037661_2980d823e1_n.jpg ~ 34697163155_5dc2571f23_n.jpg': 'same scene',
    '18995294384_77543e96b6_n.jpg ~ 19586799286_beb9d684b5.jpg': 'same scene',
    '3990989735_59e2751151_n.jpg ~ 5738195260_b3fc107aa7_n.jpg': 'distinct',  # tulip fields
    '12163418275_bd6a1edd61.jpg ~ 3254533919_cb0b8af26c.jpg': 'distinct',
    '16907559551_05ded87fb2_n.jpg ~ 443600168_cb08d56511.jpg': 'distinct',
    '4209052442_7e754f617c_n.jpg ~ 5738195260_b3fc107aa7_n.jpg': 'distinct',
    '2256230386_08b54ca760.jpg ~ 5632006303_15acd2cf1e_n.jpg': 'distinct',
    '14275234071_6e6f473356.jpg ~ 2256230386_08b54ca760.jpg': 'distinct',
    '4572738670_4787a11058_n.jpg ~ 1128626197_3f52424215_n.jpg': 'distinct',  # two dandelions
    '420216121_3ee33723d7_m.jpg ~ 5632006303_15acd2cf1e_n.jpg': 'distinct',
    '485266837_671def8627.jpg ~ 5632006303_15acd2cf1e_n.jpg': 'distinct',
    '14275234071_6e6f473356.jpg ~ 485266837_671def8627.jpg': 'distinct',
}.items()}

# What the findings in the unmodified data are, from looking at the images (shown in the .md).
REVIEWED_FINDINGS: Dict[str, List[str]] = {
    'cats_and_dogs_filtered': [
        'train/dogs/dog.180.jpg ~ dog.74.jpg: the same photo (four boxer puppies with their names '
        'written on it), two files: a duplicate of the Kaggle set itself; both in train, no leak.',
        'dog.455 ~ dog.775 (0.75), the one false pair at the default: two different white poodles.',
        'Label issues: cat.883 is a black-and-white cat in a pop-up tunnel (the label is right); '
        'cat.724 a German shepherd licking a kitten (both animals: ambiguous).',
        'Outliers: shelter photos through chain-link or cage bars (dog.729, dog.418, dog.2422 with '
        'the dog almost hidden, dog.2171, dog.410, cat.438 in a cage) and shaggy black dogs '
        '(dog.207, dog.2292): unusual framings, not errors.',
    ],
    'flowers': [
        'Exact duplicates: 4 files are in both rose/ and tulip/ (17291930305, 15922772266, '
        '17291451621, 17104364030: red roses in a vase, pink tulips): one of the two labels is '
        'wrong for sure, and each pair straddles train and eval; 2 are two names for the same '
        'bytes in sunflower/ (15069459615 ~ 15072973261, 14889392928 ~ 15066430311), across splits.',
        'Near duplicates: tulip/7166*.jpg and 7166*_n.jpg are the same Flickr photos at two '
        'sizes; daisy 10466290366 ~ 10994032453 the same daisies cropped otherwise.',
        'Label issues: tulip/3637371174 (eval) is a white daisy-like flower, suggested daisy: a '
        'real error; rose/475947979 (a pink petal close-up, suggested tulip) and sunflower/'
        '9461693602 (a small yellow flower in the dark, suggested dandelion) are ambiguous; '
        'daisy/29821115270 (a heart of white daisies, suggested rose) and dandelion/5033866477 (a '
        'seed head before a red car, suggested tulip) have the right label.',
        'Outliers: sunflower/4795924955 is a lit window at night, no flower (a stray photo); '
        'tulip/4589624702 a grey blur; the others unusual renderings: rose/534228982 painted-'
        'looking, dandelion/7355522 and 4258272073 framed, daisies on white (7133935763, '
        '5512287917), sunflower petals in extreme close-up (15042911059).',
    ],
}


if __name__ == '__main__':
  sys.exit(main())
