"""Training: Hydra-composed pretraining (masked LM, replaced-token detection) and fine-tuning.

``convbert-train`` (``cli.py``) composes ``convbert/conf`` and calls ``job.run``, which checks the config
(``schema.py``, ``model_config.py``), runs each stage's loop (``loop.py``) on a registered task (the
``tasks`` package, or a plugin's) and writes the run directory; ``convbert-report`` (``report.py``) compares
runs.
"""
