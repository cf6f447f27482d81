"""convbert: ConvBERT as one composition of swappable, registered blocks, with Hugging Face's API."""

from convbert.blocks.head_layout import head_layout
from convbert.composition import normalize_composition
from convbert.config import ConvBertConfig
from convbert.errors import (
    CheckpointError,
    ConfigError,
    ConvBertError,
    DuplicateBlockError,
    InputError,
    NotExpressibleError,
    PluginError,
    UnknownBlockError,
)
from convbert.hookspecs import hookimpl
from convbert.kernels.sequence_mask import SequenceMask
from convbert.modeling import (
    ConvBertForMaskedLM,
    ConvBertForMultipleChoice,
    ConvBertForQuestionAnswering,
    ConvBertForSequenceClassification,
    ConvBertForTokenClassification,
    ConvBertModel,
    ConvBertPreTrainedModel,
    ConvBertWithHead,
    build_model,
)
from convbert.pipelines import pipeline
from convbert.registry import Registry, list_blocks
from convbert.tokenization import ConvBertTokenizer
from convbert.tokenization_fast import ConvBertTokenizerFast

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "ConfigError", "ConvBertConfig", "ConvBertError", "ConvBertForMaskedLM",
    "ConvBertForMultipleChoice", "ConvBertForQuestionAnswering", "ConvBertForSequenceClassification",
    "ConvBertForTokenClassification", "ConvBertModel", "ConvBertPreTrainedModel", "ConvBertTokenizer",
    "ConvBertTokenizerFast", "ConvBertWithHead", "DuplicateBlockError", "InputError", "NotExpressibleError",
    "PluginError", "Registry", "SequenceMask", "UnknownBlockError",
    "build_model", "head_layout", "hookimpl", "list_blocks", "normalize_composition",
    "pipeline",
]
