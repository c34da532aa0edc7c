# The project's image: every step of the Kubeflow/Vertex pipeline runs in it, and so do the Beam
# workers of the dataflow, flink and spark presets (its entrypoint is Beam's SDK harness boot).
# Build from the repository root:  docker build -t cats-dogs-tfx:0.1.0 .
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# TFT and TFMA 1.16 need Keras 2 (tf-keras); TensorFlow 2.16 would pick Keras 3.
ENV TF_USE_LEGACY_KERAS=1

# kubeflow_runner.IMAGE_PROJECT_ROOT: the compiled spec names the module files under it.
WORKDIR /pipeline
COPY . /pipeline

# The base image already holds TFX 1.16 and its stack, pillow (from TFMA) and tf-keras (from TFT)
# included; --no-deps installs the project into it without re-resolving that stack. The import
# check fails the build, not a pipeline run, when something is missing.
RUN python -m pip install --no-cache-dir --no-deps -e /pipeline \
    && python -c "import PIL, tf_keras, components.label_balance, pipeline.pipeline"
