"""TensorFlow (Keras 3) twins of the six Hugging Face ConvBERT classes: ``pip install 'convbert[tf]'``.

Importing this subpackage selects Keras's TensorFlow backend when ``KERAS_BACKEND`` is unset. The core
package never imports TensorFlow; only ``import convbert.tf`` does.
"""

from convbert.tf.backend import keras, tf  # noqa: F401  (first: selects Keras's backend)
from convbert.tf.modeling import (
    TFConvBertForMaskedLM,
    TFConvBertForMultipleChoice,
    TFConvBertForQuestionAnswering,
    TFConvBertForSequenceClassification,
    TFConvBertForTokenClassification,
    TFConvBertModel,
    TFConvBertPreTrainedModel,
)

__all__ = [
    "TFConvBertForMaskedLM", "TFConvBertForMultipleChoice", "TFConvBertForQuestionAnswering",
    "TFConvBertForSequenceClassification", "TFConvBertForTokenClassification", "TFConvBertModel",
    "TFConvBertPreTrainedModel",
]
