"""Pipeline definition: one config object (configs.PipelineConfig) -> create_pipeline(...)."""
import bootstrap  # pylint: disable=unused-import  # the Keras switch, before TensorFlow
