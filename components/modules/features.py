"""Feature names shared by the ExampleGen, the Transform graph, the model and the signatures, and
the ExampleGen's split names."""

# The ExampleGen's output splits: train (Trainer), eval (Trainer's validation), test (Evaluator).
SPLIT_NAMES = ('train', 'eval', 'test')

# Raw tf.Example features written by the image ExampleGen.
IMAGE_KEY = 'image_raw'
LABEL_KEY = 'label'
LABEL_NAME_KEY = 'label_name'
FILENAME_KEY = 'filename'
HEIGHT_KEY = 'height'
WIDTH_KEY = 'width'
FORMAT_KEY = 'format'
# Image properties for statistics and drift checks only; the model never sees them (the Transform
# graph reads IMAGE_KEY and LABEL_KEY alone).
FILE_SIZE_KEY = 'file_size_bytes'
ASPECT_RATIO_KEY = 'aspect_ratio'
COLOR_MODE_KEY = 'color_mode'
BRIGHTNESS_KEY = 'mean_brightness'
CONTRAST_KEY = 'contrast'
SATURATION_KEY = 'mean_saturation'
# Numeric and categorical image properties, as the drift checks compare them.
NUMERIC_IMAGE_PROPERTIES = (HEIGHT_KEY, WIDTH_KEY, ASPECT_RATIO_KEY, FILE_SIZE_KEY, BRIGHTNESS_KEY,
                            CONTRAST_KEY, SATURATION_KEY)
CATEGORICAL_IMAGE_PROPERTIES = (FORMAT_KEY, COLOR_MODE_KEY)

# Outputs of the Transform graph.
TRANSFORMED_IMAGE_KEY = 'image'
TRANSFORMED_LABEL_KEY = 'label'

# Serving contract of the pushed SavedModel.
IMAGE_BYTES_SIGNATURE = 'serving_image_bytes'
IMAGE_BYTES_INPUT = 'image_bytes'
PROBABILITIES_OUTPUT = 'probabilities'
CLASS_IDS_OUTPUT = 'class_ids'
CLASS_NAMES_OUTPUT = 'class_names'
