"""What ``validate.py`` writes: anomalies.pbtxt, report.txt, distributions.png (baseline vs new
data, feature by feature, from the TFDV statistics alone), embedding_drift.png (when a model was
compared) and report.html."""
import html
import io
import os
from typing import Optional

import matplotlib

matplotlib.use('Agg')  # no display: PNGs only
# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import pyplot as plt
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import display_util

from components.drift.drift_comparison import COMPARED_FEATURES
from components.drift.embedding_check import PICTURE_FILE as EMBEDDING_PICTURE


def _feature_stats(statistics, name: str):
  """The FeatureNameStatistics of ``name`` in the first data set of ``statistics``, or None."""
  for feature in statistics.datasets[0].features:
    if feature.path.step and feature.path.step[-1] == name:
      return feature
  return None


def distributions_png(new_statistics, baseline_statistics, feature_names) -> bytes:
  """One panel per feature: baseline vs new data, as shares of the examples (histogram buckets
  of numeric features, values of categorical ones), from the TFDV statistics alone."""
  columns = 4
  rows = -(-len(feature_names) // columns)
  figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
  for axis, name in zip(axes.flat, feature_names):
    axis.set_title(name, fontsize=9)
    categories = sorted({b.label for statistics in (baseline_statistics, new_statistics)
                         for feature in [_feature_stats(statistics, name)] if feature
                         for b in feature.string_stats.rank_histogram.buckets})
    for offset, (statistics, label) in zip((-0.2, 0.2), ((baseline_statistics, 'baseline'),
                                                         (new_statistics, 'new data'))):
      feature = _feature_stats(statistics, name)
      if feature is None:
        continue
      if feature.HasField('num_stats'):
        histogram = next((h for h in feature.num_stats.histograms if h.type == h.STANDARD), None)
        if histogram and histogram.buckets:
          total = sum(b.sample_count for b in histogram.buckets) or 1
          axis.stairs([b.sample_count / total for b in histogram.buckets],
                      [histogram.buckets[0].low_value] + [b.high_value for b in histogram.buckets],
                      label=label, fill=label == 'baseline', alpha=0.6)
      else:
        counts = {b.label: b.sample_count for b in feature.string_stats.rank_histogram.buckets}
        total = sum(counts.values()) or 1
        axis.bar([i + offset for i in range(len(categories))],
                 [counts.get(c, 0) / total for c in categories], width=0.4, label=label)
        axis.set_xticks(range(len(categories)), categories)
    axis.tick_params(labelsize=7)
  for axis in list(axes.flat)[len(feature_names):]:
    axis.axis('off')
  axes.flat[0].legend(fontsize=8)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=80)
  plt.close(figure)
  return buffer.getvalue()


def write_outputs(output_dir: str, new_statistics, baseline_statistics, anomalies,
                  report: str, embedding_png: Optional[bytes] = None) -> None:
  """anomalies.pbtxt, report.txt, distributions.png, embedding_drift.png and report.html in
  ``output_dir``."""
  tfdv.write_anomalies_text(anomalies, os.path.join(output_dir, 'anomalies.pbtxt'))
  with open(os.path.join(output_dir, 'distributions.png'), 'wb') as f:
    f.write(distributions_png(new_statistics, baseline_statistics, COMPARED_FEATURES))
  with open(os.path.join(output_dir, 'report.txt'), 'w') as f:
    f.write(report + '\n')
  embedding_section = []
  if embedding_png:
    with open(os.path.join(output_dir, EMBEDDING_PICTURE), 'wb') as f:
      f.write(embedding_png)
    embedding_section = [
        '<h2>What the photos show: embeddings and confidence</h2>',
        f'<img src="{EMBEDDING_PICTURE}" alt="baseline vs new embeddings and confidence">']
  page = [
      '<html><head><meta charset="utf-8"><title>Image data validation</title></head><body>',
      '<h1>New data against the baseline</h1>', f'<pre>{html.escape(report)}</pre>',
      '<h2>TFDV anomalies</h2>', display_util.get_anomalies_dataframe(anomalies).to_html(),
      '<h2>Distributions</h2><img src="distributions.png" alt="baseline vs new data">',
      *embedding_section,
      # Facets Overview: loads its scripts from the web when the page is opened.
      '<h2>Facets Overview (needs a network: loads its scripts from the web)</h2>',
      display_util.get_statistics_html(new_statistics, baseline_statistics,
                                       lhs_name='new data', rhs_name='baseline'),
      '</body></html>']
  with open(os.path.join(output_dir, 'report.html'), 'w') as f:
    f.write('\n'.join(page))
