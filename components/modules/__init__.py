"""TFX user module code (Transform and Trainer).

TFX packages every ``.py`` file of this directory into the user-code wheel whose hash keys the cache,
so a change to any of them re-runs Transform and Trainer.
"""
