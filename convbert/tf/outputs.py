"""The PyTorch classes' output types (``convbert.outputs``), made safe to return from a ``tf.function``.

``tf.function`` rebuilds a returned mapping as ``type(output)(iterator of (key, value))``; these subclasses
accept that form, so ``@tf.function``-wrapped calls and Keras's graph steps return the same objects as eager
calls: attribute, key and tuple access, ``None`` fields skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from convbert import outputs


class _Rebuildable:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs and isinstance(args[0], Iterator):
            args, kwargs = (), dict(args[0])
        super().__init__(*args, **kwargs)


class TFBaseModelOutput(_Rebuildable, outputs.BaseModelOutput):
    pass


class TFMaskedLMOutput(_Rebuildable, outputs.MaskedLMOutput):
    pass


class TFSequenceClassifierOutput(_Rebuildable, outputs.SequenceClassifierOutput):
    pass


class TFTokenClassifierOutput(_Rebuildable, outputs.TokenClassifierOutput):
    pass


class TFMultipleChoiceModelOutput(_Rebuildable, outputs.MultipleChoiceModelOutput):
    pass


class TFQuestionAnsweringModelOutput(_Rebuildable, outputs.QuestionAnsweringModelOutput):
    pass
