"""``create_pipeline``: the cats-vs-dogs TFX pipeline, the same for every orchestrator.

The project imports TFX's classes from their modules, which ``tfx.v1`` re-exports: ``tfx.v1``
also imports TFX's Google Cloud extensions (google-cloud-aiplatform), ~4 s and ~140 MiB in every
process that runs a component (tests/test_pipeline.py checks that a run leaves it out).
"""
import json
from typing import List, Optional, Tuple

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tfx.components import (BulkInferrer, Evaluator, ExampleValidator, SchemaGen, StatisticsGen,
                            Trainer, Transform, Tuner)
from tfx.components.distribution_validator.component import DistributionValidator
from tfx.dsl.components.base.base_node import BaseNode
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration import metadata
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import pusher_pb2
from tfx.proto import bulk_inferrer_pb2
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel
from ml_metadata.proto import metadata_store_pb2

from components.atomic_pusher import AtomicPusher
from components.drift.drift_comparison import COMPARED_SPLIT_PAIRS, distribution_validator_config
from components.drift.drift_gate import (ACCEPTED_KEY, AcceptedStatistics, DriftGate,
                                   LatestOrNoStatisticsStrategy)
from components.drift.drift_thresholds import DriftThresholds
from components.data_quality.component import DataQuality
from components.drift.embedding_drift_gate import EmbeddingDriftGate
from components.feature_extractor import FeatureExtractor, bulk_inferrer_specs
from components.image_example_gen import ImageExampleGen, detect_layout
from components.image_schema import ImageSchema
from components.label_balance import LabelBalance
from components.modules import features
from components.tflite_check import TFLiteCheck
from pipeline import blessing_gate
from pipeline import module_files
from pipeline import configs
from pipeline.configs import PipelineConfig


def statistics_options() -> tfdv.StatsOptions:
  """TFDV's options for the image data.

  The class name (a string) gives the per-class counts and the label's domain in the schema. (A
  categorical hint on the integer label would too, but SchemaGen then infers a string domain for
  an INT feature, which TFDV's validation reports as an anomaly on every run.) TFDV's image domain
  statistics (format histogram, largest size) mark the encoded bytes as an image_domain in the
  schema; they decode each image once more, ~1 ms, a few seconds per 3000 images. Top-k and
  unique counts use TFDV's sketches: the exact ones group every distinct value, here every image's
  bytes, which the DirectRunner holds in memory all at once.
  """
  return tfdv.StatsOptions(enable_semantic_domain_stats=True, use_sketch_based_topk_uniques=True)


def drift_check(
    statistics_gen: StatisticsGen, thresholds: DriftThresholds, on_drift: str,
    kubeflow: bool = False,
) -> Tuple[Resolver, DistributionValidator, BaseNode, BaseNode]:
  """This run's training statistics against the latest that passed this check before: the
  baseline's resolver, TFX's DistributionValidator, the DriftGate that acts on its verdict, and
  AcceptedStatistics, which makes this run's statistics the next baseline once the gate passed.

  Kubeflow V2 compiles TFX's own LatestArtifactStrategy only; elsewhere a subclass of it spares
  the resolver node a failure on the first run, when there is no baseline yet.
  """
  baseline_resolver = Resolver(
      strategy_class=LatestArtifactStrategy if kubeflow else LatestOrNoStatisticsStrategy,
      statistics=Channel(type=standard_artifacts.ExampleStatistics,
                         producer_component_id='AcceptedStatistics', output_key=ACCEPTED_KEY),
  ).with_id('baseline_statistics_resolver')
  distribution_validator = DistributionValidator(
      statistics=statistics_gen.outputs['statistics'],
      # Optional: with no baseline yet (a cold start) the validator passes and says so.
      baseline_statistics=baseline_resolver.outputs['statistics'].as_optional(),
      config=distribution_validator_config(thresholds),
      include_split_pairs=COMPARED_SPLIT_PAIRS)
  drift_gate = DriftGate(anomalies=distribution_validator.outputs['anomalies'], on_drift=on_drift)
  accepted_statistics = AcceptedStatistics(statistics=statistics_gen.outputs['statistics'])
  accepted_statistics.add_upstream_node(drift_gate)
  return baseline_resolver, distribution_validator, drift_gate, accepted_statistics


def make_eval_config(gate_metric: str, minimum: float, num_classes: int, gate: str,
                     significance: float) -> tfma.EvalConfig:
  """The gates (``gate_metric`` at least ``minimum``, and against the latest blessed model by
  ``gate``, see pipeline/blessing_gate.py) and diagnostic metrics, overall and per class."""
  return tfma.EvalConfig(
      # The served signature, loaded as a plain SavedModel: with no model_type, TFMA would load
      # each model with Keras twice (once only to find out that it is a Keras model).
      model_specs=[tfma.ModelSpec(
          model_type=tfma.TF_GENERIC,
          signature_name='serving_default',
          label_key=features.LABEL_KEY,
          prediction_key=features.PROBABILITIES_OUTPUT,
          preprocessing_function_names=[])],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.LABEL_KEY])],
      # Keras' compiled loss would be computed on the signature's probabilities as if they were
      # logits; the metrics below are the ones that count.
      options=tfma.Options(include_default_metrics={'value': False}),
      metrics_specs=[
          tfma.MetricsSpec(metrics=[
              tfma.MetricConfig(class_name='ExampleCount'),
              *blessing_gate.overall_metrics(gate_metric, minimum, gate),
              *blessing_gate.comparison_metrics(gate, significance),
              tfma.MetricConfig(class_name='MultiClassConfusionMatrixPlot'),
          ]),
          # Each class's ROC AUC, one class against the rest. (Its recall, the accuracy of its
          # slice, and its precision come from the confusion matrix of the arg-max classes: TFMA's
          # one-vs-rest Recall and Precision count a class as predicted only above 0.5.)
          tfma.MetricsSpec(
              binarize=tfma.BinarizationOptions(class_ids={'values': list(range(num_classes))}),
              metrics=[tfma.MetricConfig(class_name='AUC')]),
      ])


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config: Optional[
                        metadata_store_pb2.ConnectionConfig] = None) -> Pipeline:
  """Image folders -> statistics, schema, checks -> Transform -> Trainer -> Evaluator -> Pusher."""
  layout = config.layout or detect_layout(config.data_root)
  example_gen = ImageExampleGen(
      input_base=config.data_root,
      test_fraction=config.test_fraction,
      split_ratios=config.split_ratios,
      max_skipped_fraction=config.max_skipped_fraction,
      max_image_pixels=config.max_image_pixels,
      max_image_bytes=config.max_image_bytes,
      layout=layout)

  statistics_gen = StatisticsGen(
      examples=example_gen.outputs['examples'], stats_options=statistics_options())
  schema_gen = SchemaGen(
      statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True)
  image_schema = ImageSchema(schema=schema_gen.outputs['schema'])
  schema = image_schema.outputs['curated_schema']
  label_balance = LabelBalance(
      statistics=statistics_gen.outputs['statistics'],
      class_names=json.dumps(list(layout.class_names)), warn_class_ratio=config.warn_class_ratio,
      max_class_ratio=config.max_class_ratio, min_class_images=config.min_class_images)
  example_validator = ExampleValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema)
  baseline_resolver, distribution_validator, drift_gate, accepted_statistics = drift_check(
      statistics_gen, config.drift_thresholds, config.on_drift,
      kubeflow=config.orchestrator == configs.KUBEFLOW)

  model_resolver = Resolver(
      strategy_class=LatestBlessedModelStrategy,
      model=Channel(type=standard_artifacts.Model),
      model_blessing=Channel(type=standard_artifacts.ModelBlessing),
  ).with_id('latest_blessed_model_resolver')

  # What the training photos show, against the latest blessed model's training photos.
  embedding_gate = EmbeddingDriftGate(
      examples=example_gen.outputs['examples'], model=model_resolver.outputs['model'],
      on_drift=config.on_drift, embedding_p_value=config.drift_thresholds.embedding_p_value,
      embedding_auc=config.drift_thresholds.embedding_auc,
      label_linf=config.drift_thresholds.label_linf,
      confidence_js=config.drift_thresholds.confidence_js)

  # Analyse only; the Transform graph runs inside the Trainer's input pipeline, the feature
  # extractor and the serving signatures, so no float copy of every image is written.
  code_version = {module_files.FINGERPRINT_KEY: module_files.fingerprint()}
  trainer_config = {**config.trainer_custom_config(layout.class_names), **code_version}
  train_args = trainer_pb2.TrainArgs(splits=['train'])
  eval_args = trainer_pb2.EvalArgs(splits=['eval'])
  with module_files.used_where_installed():
    transform = Transform(
        examples=example_gen.outputs['examples'],
        schema=schema,
        module_file=config.transform_module_file,
        materialize=False,
        # Pre-transform statistics would repeat StatisticsGen's; post-transform ones would
        # describe every pixel of every decoded image: slow and of no use.
        disable_statistics=True,
        custom_config={'image_size': config.image_size, 'max_image_pixels': config.max_image_pixels,
                       'max_image_bytes': config.max_image_bytes, **code_version})
  # The data checks run before any image is decoded: a failed LabelBalance, DriftGate or
  # EmbeddingDriftGate stops the run before Transform. (ExampleValidator records anomalies; it
  # does not stop the run.)
  transform.add_upstream_nodes([label_balance, example_validator, drift_gate, embedding_gate])

  # A frozen pretrained base: its features of every image, computed once, are what the Tuner and
  # the Trainer train the head on (components/modules/frozen_features.py).
  feature_nodes: List[BaseNode] = []
  training_examples = example_gen.outputs['examples']
  hyperparameters = None
  if config.trains_on_features:
    feature_extractor = FeatureExtractor(
        transform_graph=transform.outputs['transform_graph'], image_size=config.image_size,
        alpha=config.alpha, weights=config.weights, rotation_factor=config.rotation_factor,
        module_fingerprint=code_version[module_files.FINGERPRINT_KEY])
    model_spec, output_example_spec = bulk_inferrer_specs()
    base_features = BulkInferrer(
        examples=example_gen.outputs['examples'], model=feature_extractor.outputs['model'],
        data_spec=bulk_inferrer_pb2.DataSpec(), model_spec=model_spec,
        output_example_spec=output_example_spec).with_id('BaseFeatures')
    training_examples = base_features.outputs['output_examples']
    # Duplicates, leaks, label errors and outliers, from the same features; a leak stops the run
    # before the Tuner and the Trainer.
    data_quality = DataQuality(
        examples=training_examples, class_names=json.dumps(list(layout.class_names)),
        rotation_factor=config.rotation_factor, max_leak_fraction=config.max_leak_fraction)
    feature_nodes = [feature_extractor, base_features, data_quality]
    if config.tuner_trials:
      with module_files.used_where_installed():
        tuner = Tuner(module_file=config.tuner_module_file, examples=training_examples,
                      train_args=train_args, eval_args=eval_args, custom_config=trainer_config)
      tuner.add_upstream_node(data_quality)
      hyperparameters = tuner.outputs['best_hyperparameters']
      feature_nodes.append(tuner)

  with module_files.used_where_installed():
    trainer = Trainer(
        module_file=config.trainer_module_file,
        examples=training_examples,
        transform_graph=transform.outputs['transform_graph'],
        schema=schema,
        hyperparameters=hyperparameters,
        train_args=train_args,
        eval_args=eval_args,
        custom_config=trainer_config)
  if config.trains_on_features:
    trainer.add_upstream_node(data_quality)

  evaluator = Evaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=model_resolver.outputs['model'],
      example_splits=['test'],
      eval_config=make_eval_config(
          config.gate_metric, config.gate_minimum(len(layout.class_names)),
          len(layout.class_names), config.blessing_gate, config.blessing_significance))

  # The TFLite copy against the SavedModel on the same test split; a blessed model whose TFLite
  # copy lost too much accuracy fails the run here, before the Pusher.
  tflite_check = TFLiteCheck(
      model=trainer.outputs['model'], examples=example_gen.outputs['examples'],
      transform_graph=transform.outputs['transform_graph'],
      blessing=evaluator.outputs['blessing'],
      max_accuracy_drop=config.tflite_max_accuracy_drop)

  pusher = AtomicPusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=config.serving_dir))
  ).with_id('Pusher')
  pusher.add_upstream_node(tflite_check)

  components: List[BaseNode] = [
      example_gen, statistics_gen, schema_gen, image_schema, label_balance, example_validator,
      baseline_resolver, distribution_validator, drift_gate, accepted_statistics, model_resolver,
      embedding_gate, transform, *feature_nodes, trainer, evaluator, tflite_check, pusher,
  ]
  if metadata_connection_config is None and config.metadata_path:
    metadata_connection_config = metadata.sqlite_metadata_connection_config(
        config.metadata_path)
  return Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=components,
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=config.beam_pipeline_args)
