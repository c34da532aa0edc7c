"""TFX user module code (Transform and Trainer).

A SHA-256 of every ``.py`` file of this directory is part of Transform's and Trainer's
custom_config (pipeline/module_files.py), so a change to any of them re-runs both.
"""
