"""Keras 3 on TensorFlow, selected before keras is first imported.

Keras reads ``KERAS_BACKEND`` once, at its first import; this module imports Keras with it set to
``tensorflow`` when unset (and restores the environment afterwards: no lasting write) and refuses a Keras
already bound to another backend (its layers would then not run on TensorFlow tensors).
"""

from __future__ import annotations

from convbert.settings import environment

try:
    with environment(KERAS_BACKEND="tensorflow"):  # read by Keras's first import; the environment is restored
        import keras
        import tensorflow as tf
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("convbert.tf needs TensorFlow >= 2.16 and Keras 3: pip install 'convbert[tf]'") from exc

if not keras.__version__.startswith("3."):  # pragma: no cover
    raise ImportError(f"convbert.tf needs Keras 3, found keras {keras.__version__}: pip install 'keras>=3'")
if keras.backend.backend() != "tensorflow":  # pragma: no cover
    raise ImportError(
        "convbert.tf runs on Keras's TensorFlow backend, but Keras was loaded with "
        f"{keras.backend.backend()!r} (KERAS_BACKEND). Set KERAS_BACKEND=tensorflow before anything "
        "imports keras."
    )

ops = keras.ops

__all__ = ["keras", "ops", "tf"]
