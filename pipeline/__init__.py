"""Pipeline definition: one config object (configs.PipelineConfig) -> create_pipeline(...)."""
import components  # pylint: disable=unused-import  # sets the Keras switch before TensorFlow loads
