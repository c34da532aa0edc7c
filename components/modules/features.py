"""Feature names shared by the ExampleGen, the Transform graph, the model and the signatures."""

# Raw tf.Example features written by the image ExampleGen.
IMAGE_KEY = 'image_raw'
LABEL_KEY = 'label'
LABEL_NAME_KEY = 'label_name'
FILENAME_KEY = 'filename'
HEIGHT_KEY = 'height'
WIDTH_KEY = 'width'
FORMAT_KEY = 'format'

# Outputs of the Transform graph.
TRANSFORMED_IMAGE_KEY = 'image'
TRANSFORMED_LABEL_KEY = 'label'

# Serving contract of the pushed SavedModel.
IMAGE_BYTES_SIGNATURE = 'serving_image_bytes'
IMAGE_BYTES_INPUT = 'image_bytes'
PROBABILITIES_OUTPUT = 'probabilities'
CLASS_IDS_OUTPUT = 'class_ids'
CLASS_NAMES_OUTPUT = 'class_names'
