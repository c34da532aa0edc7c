"""Finished runs read back from MLMD and the files they wrote: summaries, the HTML report, model
cards, the registry of pushed versions and which SavedModel a command serves."""
import bootstrap  # pylint: disable=unused-import  # the Keras switch, before TensorFlow
