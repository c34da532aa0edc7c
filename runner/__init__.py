"""Runner plumbing: command-line flags, the local resources check, logging, the run lock, the
Airflow launcher."""
import bootstrap  # pylint: disable=unused-import  # the Keras switch, before TensorFlow
