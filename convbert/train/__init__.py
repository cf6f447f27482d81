"""Training: Hydra-composed pretraining (masked LM, replaced-token detection) and fine-tuning.

``convbert-train`` (``cli.py``) composes ``convbert/conf`` and calls ``job.run``, which checks the config
(``schema.py``, ``model_config.py``), runs each stage's loop (``loop.py``) on a task (``tasks.py``,
``mlm.py``, ``rtd.py``) and writes the run directory; ``convbert-report`` (``report.py``) compares runs.
"""
