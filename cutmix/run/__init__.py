"""The run format that training writes and evaluation reads: the declared settings and their config
(:mod:`~cutmix.run.config`, presets), checkpoints, and opening the datasets a config names.

It sits below :mod:`cutmix.train` and :mod:`cutmix.evaluate` so that neither imports the other.
"""
