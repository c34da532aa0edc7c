"""Pipeline definition: one config object (configs.PipelineConfig) -> create_pipeline(...)."""
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
