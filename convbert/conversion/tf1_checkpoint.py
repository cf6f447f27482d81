"""The original release's TensorFlow 1 checkpoints -> a ``save_pretrained`` directory.

The authors' code (yitu-opensource/ConvBert, an ELECTRA fork) trains a generator and a discriminator together
and saves both in one TF1 checkpoint (``model.ckpt.index`` / ``.data-*``), optimizer slots included:

- the discriminator under ``electra/`` (``embeddings/``, ``embeddings_project`` when the embedding size
  differs from the hidden size, ``encoder/layer_{i}/``) and its head under ``discriminator_predictions/``;
- the generator under ``generator/`` with its own, smaller sizes, sharing ``electra/embeddings`` (unless it
  was trained with ``untied_generator_embeddings``: then ``generator/embeddings``), and its masked-LM head
  under ``generator_predictions/`` whose decoder is the word-embedding table itself.

``RULES`` is the one name table (TF1 name -> Hugging Face name -> layout change); a model's Hugging Face
names come from ``convbert.interop.hf_keys`` and the weights are loaded through the model's own checkpoint
loader, so no name is written twice. The checkpoints carry no config: it comes from a released size name
(the release's own hyperparameter rules, ``config_from_hparams``), the release's hparams JSON, or a
``config.json``.

The discriminator becomes a ``ConvBertModel`` (neither this package nor transformers has a ConvBERT class with
ELECTRA's discriminator head; the head's two dense layers are reported and dropped), the generator a
``ConvBertForMaskedLM``. TensorFlow is imported only when a checkpoint is read.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convbert.blocks.mixed import split_heads
from convbert.config import CONFIG_NAME, ConvBertConfig
from convbert.errors import CheckpointError, ConfigError
from convbert.interop import hf_keys
from convbert.interop.files import SAFE_INDEX, SAFE_WEIGHTS

logger = logging.getLogger(__name__)

SIZES = ("small", "medium-small", "base")
MODELS = ("discriminator", "generator")
_SCOPE = {"discriminator": "electra", "generator": "generator"}


# -- layouts: a TF1 array -> the Hugging Face tensor, and back (for the shapes error messages name) ----------
@dataclass(frozen=True)
class Layout:
    name: str
    to_hf: Callable[[np.ndarray], np.ndarray]
    to_tf1: Callable[[np.ndarray], np.ndarray]


SAME = Layout("as is", lambda a: a, lambda a: a)
# tf.layers.dense keeps (in, out), nn.Linear (out, in)
TRANSPOSE = Layout("transpose", lambda a: a.T, lambda a: a.T)
# separable_conv1d: depthwise (k, C, 1) -> Conv1d (C, 1, k); pointwise (1, C, W) -> Conv1d (W, C, 1)
DEPTHWISE = Layout("permute(1, 2, 0)", lambda a: a.transpose(1, 2, 0), lambda a: a.transpose(2, 0, 1))
POINTWISE = Layout("permute(2, 1, 0)", lambda a: a.transpose(2, 1, 0), lambda a: a.transpose(2, 1, 0))
# the separable convolution's bias (W,) -> Hugging Face's (W, 1)
COLUMN = Layout("unsqueeze(-1)", lambda a: a[:, None], lambda a: a[:, 0])


@dataclass(frozen=True)
class Rule:
    """One row of the name table.

    ``tf1`` placeholders: {scope} (``electra`` or ``generator``), {emb} (the embeddings' scope), {i} (layer),
    {qkv}. ``hf`` is Hugging Face's name in the base model (heads: their own names); None means the variable
    is known but not kept. ``model`` limits a head's row to one model; ``groups`` a feed-forward row to
    ``num_groups == 1`` ("dense": ``tf.layers.dense``) or ``> 1`` ("grouped": the authors' ``GDense``, kept
    as (groups, in/groups, out/groups) exactly as Hugging Face's GroupedLinearLayer).
    """

    tf1: str
    hf: str | None
    layout: Layout = SAME
    model: str | None = None
    groups: str | None = None


_LAYER, _HF_LAYER = "{scope}/encoder/layer_{i}", "encoder.layer.{i}"
_SELF, _HF_SELF = _LAYER + "/attention/self", _HF_LAYER + ".attention.self"
RULES: tuple[Rule, ...] = (
    Rule("{emb}/word_embeddings", "embeddings.word_embeddings.weight"),
    Rule("{emb}/position_embeddings", "embeddings.position_embeddings.weight"),
    Rule("{emb}/token_type_embeddings", "embeddings.token_type_embeddings.weight"),
    Rule("{emb}/LayerNorm/gamma", "embeddings.LayerNorm.weight"),
    Rule("{emb}/LayerNorm/beta", "embeddings.LayerNorm.bias"),
    Rule("{scope}/embeddings_project/kernel", "embeddings_project.weight", TRANSPOSE),
    Rule("{scope}/embeddings_project/bias", "embeddings_project.bias"),
    Rule(_SELF + "/{qkv}/kernel", _HF_SELF + ".{qkv}.weight", TRANSPOSE),
    Rule(_SELF + "/{qkv}/bias", _HF_SELF + ".{qkv}.bias"),
    Rule(_SELF + "/conv_attn_key/depthwise_kernel", _HF_SELF + ".key_conv_attn_layer.depthwise.weight",
         DEPTHWISE),
    Rule(_SELF + "/conv_attn_key/pointwise_kernel", _HF_SELF + ".key_conv_attn_layer.pointwise.weight",
         POINTWISE),
    Rule(_SELF + "/conv_attn_key/bias", _HF_SELF + ".key_conv_attn_layer.bias", COLUMN),
    Rule(_SELF + "/conv_attn_kernel/kernel", _HF_SELF + ".conv_kernel_layer.weight", TRANSPOSE),
    Rule(_SELF + "/conv_attn_kernel/bias", _HF_SELF + ".conv_kernel_layer.bias"),
    Rule(_SELF + "/conv_attn_point/kernel", _HF_SELF + ".conv_out_layer.weight", TRANSPOSE),
    Rule(_SELF + "/conv_attn_point/bias", _HF_SELF + ".conv_out_layer.bias"),
    Rule(_LAYER + "/attention/output/dense/kernel", _HF_LAYER + ".attention.output.dense.weight", TRANSPOSE),
    Rule(_LAYER + "/attention/output/dense/bias", _HF_LAYER + ".attention.output.dense.bias"),
    Rule(_LAYER + "/attention/output/LayerNorm/gamma", _HF_LAYER + ".attention.output.LayerNorm.weight"),
    Rule(_LAYER + "/attention/output/LayerNorm/beta", _HF_LAYER + ".attention.output.LayerNorm.bias"),
    Rule(_LAYER + "/intermediate/dense/kernel", _HF_LAYER + ".intermediate.dense.weight", TRANSPOSE,
         groups="dense"),
    Rule(_LAYER + "/intermediate/dense/bias", _HF_LAYER + ".intermediate.dense.bias", groups="dense"),
    Rule(_LAYER + "/intermediate/g_dense/kernel", _HF_LAYER + ".intermediate.dense.weight", groups="grouped"),
    Rule(_LAYER + "/intermediate/g_dense/bias", _HF_LAYER + ".intermediate.dense.bias", groups="grouped"),
    Rule(_LAYER + "/output/dense/kernel", _HF_LAYER + ".output.dense.weight", TRANSPOSE, groups="dense"),
    Rule(_LAYER + "/output/dense/bias", _HF_LAYER + ".output.dense.bias", groups="dense"),
    Rule(_LAYER + "/output/g_dense/kernel", _HF_LAYER + ".output.dense.weight", groups="grouped"),
    Rule(_LAYER + "/output/g_dense/bias", _HF_LAYER + ".output.dense.bias", groups="grouped"),
    Rule(_LAYER + "/output/LayerNorm/gamma", _HF_LAYER + ".output.LayerNorm.weight"),
    Rule(_LAYER + "/output/LayerNorm/beta", _HF_LAYER + ".output.LayerNorm.bias"),
    Rule("generator_predictions/dense/kernel", "generator_predictions.dense.weight", TRANSPOSE,
         model="generator"),
    Rule("generator_predictions/dense/bias", "generator_predictions.dense.bias", model="generator"),
    Rule("generator_predictions/LayerNorm/gamma", "generator_predictions.LayerNorm.weight",
         model="generator"),
    Rule("generator_predictions/LayerNorm/beta", "generator_predictions.LayerNorm.bias",
         model="generator"),
    Rule("generator_predictions/output_bias", "generator_lm_head.bias", model="generator"),
    # ELECTRA's discriminator head (dense, activation, dense to one logit): no ConvBERT class holds it
    Rule("discriminator_predictions/dense/kernel", None, model="discriminator"),
    Rule("discriminator_predictions/dense/bias", None, model="discriminator"),
    Rule("discriminator_predictions/dense_1/kernel", None, model="discriminator"),
    Rule("discriminator_predictions/dense_1/bias", None, model="discriminator"),
)
# the generator's decoder is the word-embedding table (tied): Hugging Face's generator_lm_head.weight
TIED_DECODER = "generator_lm_head.weight"

# optimizer state and counters: never model weights, ignored without a word
_OPTIMIZER_SLOTS = re.compile(r"(^|/)(adam_m|adam_v|Adam|Adam_1|Momentum|RMSProp|RMSProp_1)$")
_COUNTERS = {"global_step", "beta1_power", "beta2_power"}


def _hf_regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, sub in {"i": r"\d+", "qkv": r"query|key|value"}.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{sub})")
    return re.compile(pattern)


_HF_PATTERNS = [(rule, _hf_regex(rule.hf)) for rule in RULES if rule.hf is not None]


def tf1_name(hf_key: str, *, model: str, num_groups: int, emb_scope: str | None = None) -> tuple[str, Layout]:
    """The TF1 variable that holds Hugging Face's ``hf_key`` (base-model names, heads by their own names)."""
    groups = "grouped" if num_groups > 1 else "dense"
    scope = _SCOPE[model]
    for rule, regex in _HF_PATTERNS:
        if rule.model not in (None, model) or rule.groups not in (None, groups):
            continue
        match = regex.fullmatch(hf_key)
        if match:
            name = rule.tf1.format(scope=scope, emb=emb_scope or "electra/embeddings", **match.groupdict())
            return name, rule.layout
    raise KeyError(f"no TF1 name for {hf_key!r}")


def mapping_table() -> list[tuple[str, str, str]]:
    """(TF1 name, Hugging Face name, layout change) for every row: the table the docs print."""
    rows = []
    for rule in RULES:
        note = {"dense": " (num_groups = 1)", "grouped": " (num_groups > 1)"}.get(rule.groups or "", "")
        rows.append((rule.tf1 + note, rule.hf or "(dropped)", rule.layout.name if rule.hf else "-"))
        if rule.hf == "generator_lm_head.bias":
            rows.append(("{emb}/word_embeddings", TIED_DECODER, "tied: the word-embedding table"))
    return rows


# -- configs: the release's hyperparameter rules ------------------------------------------------------------
# Every key of the release's PretrainingConfig (configure_pretraining.py); only the architectural ones matter.
_HPARAM_KEYS = frozenset((
    "model_name", "data_dir", "debug", "do_train", "do_eval", "electra_objective", "gen_weight",
    "disc_weight", "mask_prob", "learning_rate", "lr_decay_power", "weight_decay_rate", "num_warmup_steps",
    "iterations_per_loop", "save_checkpoints_steps", "num_train_steps", "num_eval_steps", "model_size",
    "model_hparam_overrides", "embedding_size", "vocab_size", "do_lower_case", "conv_kernel_size",
    "linear_groups", "head_ratio", "conv_type", "uniform_generator", "untied_generator_embeddings",
    "untied_generator", "generator_layers", "generator_hidden_size", "disallow_correct", "temperature",
    "max_seq_length", "train_batch_size", "eval_batch_size", "use_tpu", "tpu_job_name", "num_tpu_cores",
    "tpu_name", "tpu_zone", "gcp_project", "pretrain_tfrecords", "vocab_file", "model_dir", "results_txt",
    "results_pkl", "max_predictions_per_seq",
))
_SIZE_DEFAULTS = {  # configure_pretraining.py: what each model_size sets before the user's hparams
    "medium-small": {"embedding_size": 128, "conv_kernel_size": 9, "linear_groups": 2, "head_ratio": 2},
    "small": {"embedding_size": 128, "conv_kernel_size": 9, "linear_groups": 1, "head_ratio": 2},
    "base": {"generator_hidden_size": 1 / 3, "conv_kernel_size": 9, "linear_groups": 1, "head_ratio": 2},
}
_SIZE_HIDDEN = {"small": 256, "medium-small": 384, "base": 768}  # training_utils.get_bert_config; 12 layers


def config_from_hparams(hparams: Mapping[str, Any], model: str = "discriminator") -> ConvBertConfig:
    """The ``model``'s config from the release's pretraining hparams (``run_pretraining.py --hparams``).

    Follows the release's rules: ``model_size`` picks hidden size and defaults, heads are hidden // 64
    (// 48 for medium-small), the FFN is 4 x hidden, ``model_hparam_overrides`` win; the generator has
    ``generator_hidden_size`` of the hidden size and of the heads, ``generator_layers`` of the layers, and
    the discriminator's embedding size (its embeddings are shared).
    """
    _check_model(model)
    unknown = sorted(set(hparams) - _HPARAM_KEYS)
    if unknown:
        close = {k: difflib.get_close_matches(k, _HPARAM_KEYS, n=1) for k in unknown}
        hints = ", ".join(f"{k}" + (f" (did you mean {c[0]}?)" if c else "") for k, c in close.items())
        raise ConfigError(f"unknown pretraining hparams: {hints}; the release's keys are in its "
                          "configure_pretraining.py")
    p: dict[str, Any] = {"model_size": "medium-small", "embedding_size": None, "vocab_size": 30522,
                         "conv_kernel_size": 9, "linear_groups": 2, "head_ratio": 2, "conv_type": "sdconv",
                         "generator_hidden_size": 0.25, "generator_layers": 1.0,
                         "untied_generator_embeddings": False, "untied_generator": True,
                         "electra_objective": True, "uniform_generator": False, "debug": False,
                         "model_hparam_overrides": {}}
    p.update(hparams)
    size = p["model_size"]
    if size not in _SIZE_HIDDEN:
        raise ConfigError(f"hparams model_size={size!r}: the release knows {', '.join(SIZES)}")
    p.update(_SIZE_DEFAULTS[size])
    p.update(hparams)
    overrides = dict(p["model_hparam_overrides"] or {})
    bert: dict[str, Any] = {"hidden_size": _SIZE_HIDDEN[size], "num_hidden_layers": 12,
                            "head_ratio": p["head_ratio"], "conv_kernel_size": p["conv_kernel_size"],
                            "linear_groups": p["linear_groups"], "conv_type": p["conv_type"],
                            "vocab_size": p["vocab_size"]}
    bert.update(overrides)
    bert["num_attention_heads"] = max(1, bert["hidden_size"] // (48 if size == "medium-small" else 64))
    bert["intermediate_size"] = 4 * bert["hidden_size"]
    bert.update(overrides)
    if p["debug"]:
        bert.update(num_hidden_layers=3, hidden_size=144, intermediate_size=576, num_attention_heads=4)
    if bert["conv_type"] != "sdconv":
        raise ConfigError(f"hparams conv_type={bert['conv_type']!r}: only ConvBERT's 'sdconv' (mixed "
                          "attention) is convertible; 'noconv' is a plain ELECTRA/BERT")
    embedding_size = p["embedding_size"] or bert["hidden_size"]
    if model == "generator":
        if not p["electra_objective"] or p["uniform_generator"] or not p["untied_generator"]:
            raise ConfigError("these hparams train no separate generator (electra_objective, "
                              "uniform_generator or untied_generator): convert the discriminator")
        ratio = float(p["generator_hidden_size"])
        gen_hidden = round(bert["hidden_size"] * ratio)
        heads = max(1.0, bert["num_attention_heads"] * ratio)
        if abs(heads - round(heads)) > 1e-6:
            raise ConfigError(f"the generator's head count {bert['num_attention_heads']} x {ratio} = {heads} "
                              "is not whole: the release's code would run it with a fractional head count, "
                              "which no config can describe")
        layers = round(bert["num_hidden_layers"] * float(p["generator_layers"]))
        bert.update(hidden_size=gen_hidden, intermediate_size=4 * gen_hidden,
                    num_attention_heads=round(heads), num_hidden_layers=layers)
        embedding_size = gen_hidden if p["untied_generator_embeddings"] else embedding_size
    return _release_config(bert, embedding_size)


def released_config(size: str, model: str = "discriminator") -> ConvBertConfig:
    """The config of a released checkpoint's discriminator or generator: small, medium-small or base."""
    if size not in SIZES:
        close = difflib.get_close_matches(str(size), SIZES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown released size {size!r}{hint}; the release has {', '.join(SIZES)}")
    return config_from_hparams({"model_size": size}, model)


def _release_config(bert: dict[str, Any], embedding_size: int) -> ConvBertConfig:
    """A ConvBertConfig with the release's fixed values (pad id 0, LayerNorm eps 1e-12, GELU ...).

    The release splits heads as the paper does (head size hidden / heads whatever the ratio); where Hugging
    Face's rule gives another split (one head at head ratio 2, as the small generator), the composition keeps
    the paper's rule, and transformers cannot load the result.
    """
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "head_ratio", "conv_kernel_size", "hidden_act", "hidden_dropout_prob",
            "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range")
    fields = {key: bert[key] for key in keys if key in bert}
    fields.update(num_groups=bert["linear_groups"], embedding_size=embedding_size, pad_token_id=0,
                  layer_norm_eps=1e-12)
    hidden, heads, ratio = fields["hidden_size"], fields["num_attention_heads"], fields["head_ratio"]
    if hidden % heads:
        raise ConfigError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}, which the "
                          "release's code requires")
    config = ConvBertConfig(**fields)
    if split_heads(hidden, heads, ratio, "hf") != split_heads(hidden, heads, ratio, "paper"):
        composition = config.encoder_composition()
        composition["layer"]["mixer"]["head_size_rule"] = "paper"
        config = ConvBertConfig(**fields, composition=composition)
    return config


def resolve_config(config: Any, model: str) -> tuple[ConvBertConfig, str]:
    """(config, a label for messages) from a size name, a ConvBertConfig, a JSON file or a dict.

    A JSON file or dict with ``model_size`` is the release's pretraining hparams; otherwise it holds
    ``config.json`` fields (Hugging Face's or ours) of the model to convert.
    """
    if isinstance(config, ConvBertConfig):
        return config, "the given config"
    if isinstance(config, str) and config in SIZES:
        return released_config(config, model), f"conv-bert-{config}"
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            path = path / CONFIG_NAME
        if not path.is_file():
            raise ConfigError(f"config {str(config)!r} is neither a released size ({', '.join(SIZES)}) nor "
                              "a JSON file: pass a size, a config.json, or the release's pretraining hparams "
                              "JSON")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} holds {type(data).__name__}, not a JSON object")
        return resolve_config(data, model)[0], f"config {path}"
    if isinstance(config, Mapping):
        if "model_size" in config:
            return config_from_hparams(config, model), "the given hparams"
        return ConvBertConfig.from_dict(dict(config)), "the given config"
    raise ConfigError(f"config must be a released size ({', '.join(SIZES)}), a ConvBertConfig, a JSON "
                      f"file or a dict, got {type(config).__name__}")


# -- reading ------------------------------------------------------------------------------------------------
def _import_tf():
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ConfigError("reading TF1 checkpoints needs TensorFlow: pip install 'convbert[tf]'") from exc
    return tf


def checkpoint_prefix(path: str | os.PathLike) -> str:
    """The prefix (``.../model.ckpt``) of a checkpoint given as the prefix, one of its files or its folder."""
    path = Path(path)
    for suffix in (".index", ".meta"):
        if path.name.endswith(suffix) and path.is_file():
            return str(path)[: -len(suffix)]
    if re.search(r"\.data-\d+-of-\d+$", path.name) and path.is_file():
        return re.sub(r"\.data-\d+-of-\d+$", "", str(path))
    if Path(str(path) + ".index").is_file():
        return str(path)
    how = ("pass the checkpoint prefix (model.ckpt for model.ckpt.index and model.ckpt.data-*) or the "
           "directory holding it")
    if path.is_dir():
        if (path / CONFIG_NAME).is_file() and any((path / n).exists() for n in (SAFE_WEIGHTS, SAFE_INDEX)):
            raise CheckpointError(f"{path} is a save_pretrained directory, not a TF1 checkpoint: it is "
                                  "converted already; load it with ConvBertModel.from_pretrained")
        state = path / "checkpoint"
        if state.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(errors="replace"), re.M)
            if match:
                prefix = Path(match.group(1))
                prefix = prefix if prefix.is_absolute() else path / prefix
                if Path(str(prefix) + ".index").is_file():
                    return str(prefix)
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0])[: -len(".index")]
        if indexes:
            names = ", ".join(str(p)[: -len(".index")] for p in indexes[:5])
            raise CheckpointError(f"{path} holds {len(indexes)} checkpoints ({names}): pass one prefix")
        raise CheckpointError(f"no TF1 checkpoint in {path} (no *.index file): {how}")
    if path.exists():
        raise CheckpointError(f"{path} is not a TF1 checkpoint (no {path.name}.index beside it): {how}")
    raise CheckpointError(f"no TF1 checkpoint at {path} (neither it nor {path.name}.index exists): {how}")


class Tf1Checkpoint:
    """A TF1 checkpoint's variable shapes, and its arrays on demand."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.prefix = checkpoint_prefix(path)
        tf = _import_tf()
        try:
            self._reader = tf.train.load_checkpoint(self.prefix)
            shapes = self._reader.get_variable_to_shape_map()
        except (tf.errors.OpError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{self.prefix} is not a readable TF1 checkpoint ({first}); pass the "
                                  "release's model.ckpt prefix") from exc
        self.shapes: dict[str, tuple[int, ...]] = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
        if any("/.ATTRIBUTES/" in name for name in self.shapes):
            raise CheckpointError(f"{self.prefix} is a TF2 object-based checkpoint (tf.train.Checkpoint or "
                                  "Keras), not the original release's TF1 checkpoint; this converter reads "
                                  "the TF1 release (variables named electra/... and generator/...)")

    def array(self, name: str) -> np.ndarray:
        return np.asarray(self._reader.get_tensor(name))


# -- converting ---------------------------------------------------------------------------------------------
def convert_tf1_checkpoint(checkpoint_path: str | os.PathLike, out_dir: str | os.PathLike | None, *,
                           model: str = "discriminator", config: Any):
    """Convert the ``model`` of a release checkpoint and ``save_pretrained`` it to ``out_dir``; returns it.

    ``config``: a released size (``"small"``, ``"medium-small"``, ``"base"``), a ``ConvBertConfig``, a path
    to a ``config.json`` or to the release's pretraining hparams JSON, or such a dict. The discriminator is
    a ``ConvBertModel``, the generator a ``ConvBertForMaskedLM`` with the decoder tied to the embeddings.
    Missing variables and wrong shapes raise ``CheckpointError`` naming them and the size the checkpoint
    looks like; optimizer slots are ignored; any other variable left over is reported with a warning.
    ``out_dir=None`` converts without saving.
    """
    import torch

    from convbert.modeling import ConvBertForMaskedLM, ConvBertModel

    _check_model(model)
    checkpoint = Tf1Checkpoint(checkpoint_path)
    config, label = resolve_config(config, model)
    cls = ConvBertForMaskedLM if model == "generator" else ConvBertModel
    head = cls.head_name
    with torch.device("meta"):  # shapes only: a wrong size fails before any memory is spent
        skeleton = cls(config)
    shapes = checkpoint.shapes
    emb_scope = "generator/embeddings" if model == "generator" and \
        "generator/embeddings/word_embeddings" in shapes else "electra/embeddings"
    wanted, unmapped = hf_keys.to_hf(skeleton.own_state_dict(), head)
    if unmapped:  # a ConvBertConfig whose composition has blocks the release never had
        raise ConfigError(f"{label} describes a model the release cannot hold (no TF1 variable for "
                          f"{', '.join(unmapped[:5])}): pass a released size, the hparams or a ConvBERT "
                          "config.json")
    if head is not None and skeleton._decoder_is_tied():
        wanted.pop(TIED_DECODER)
    plan = []
    for hf_key, tensor in wanted.items():
        is_head = hf_key.startswith(hf_keys.HF_HEAD_PREFIXES)
        bare = hf_key if is_head else hf_key.removeprefix(hf_keys.PREFIX)
        name, layout = tf1_name(bare, model=model, num_groups=config.num_groups, emb_scope=emb_scope)
        plan.append((name, hf_key, layout, tuple(tensor.shape)))
    _require_fit(checkpoint, plan, model, label)

    net = cls(config)
    state = {hf_key: torch.from_numpy(np.ascontiguousarray(layout.to_hf(checkpoint.array(name)),
                                                            dtype=np.float32))
             for name, hf_key, layout, _ in plan}
    net.load_checkpoint_state(state, checkpoint.prefix)
    _report_leftovers(shapes, {name for name, *_ in plan}, model)
    if not config.hf_compatible:
        logger.warning("%s: this %s (%d head(s) at head ratio %d, split as the release splits them) has no "
                       "Hugging Face ConvBertConfig: it is saved in convbert's format, and transformers "
                       "cannot load it", checkpoint.prefix, model, config.num_attention_heads,
                       config.head_ratio)
    if out_dir is not None:
        net.save_pretrained(out_dir)
    return net.eval()


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ConfigError(f"model={model!r}: choose one of {', '.join(MODELS)}")


def _require_fit(checkpoint: Tf1Checkpoint, plan: list, model: str, label: str) -> None:
    shapes = checkpoint.shapes
    missing = [name for name, *_ in plan if name not in shapes]
    wrong = []
    for name, _, layout, hf_shape in plan:
        if name in shapes:
            expected = tuple(layout.to_tf1(np.broadcast_to(np.zeros((), np.int8), hf_shape)).shape)
            if shapes[name] != expected:
                wrong.append(f"{name}: expected {expected}, found {shapes[name]}")
    if not missing and not wrong:
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the {len(plan)} variables it needs are missing "
                        f"(first: {', '.join(missing[:5])})")
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        problems.append(f"{len(wrong)} have another shape ({'; '.join(wrong[:3])}{more})")
    raise CheckpointError(f"checkpoint {checkpoint.prefix} does not fit the {model} of {label}: "
                          f"{'; '.join(problems)}. {suggest(shapes, model)}")


def describe(shapes: Mapping[str, tuple[int, ...]], model: str) -> dict[str, int] | None:
    """What a checkpoint's ``model`` looks like from its shapes alone (hidden, layers, groups, embedding,
    vocab, whichever are present), or None when it holds no variable of that model."""
    scope = _SCOPE[model]
    layers = {int(m.group(1)) for name in shapes if (m := re.match(rf"{scope}/encoder/layer_(\d+)/", name))}
    if not layers:
        return None
    found = {"layers": max(layers) + 1}
    for name, shape in shapes.items():
        if name == f"{scope}/encoder/layer_0/output/LayerNorm/gamma":
            found["hidden"] = shape[0]
        elif name == f"{scope}/encoder/layer_0/intermediate/g_dense/kernel":
            found["groups"] = shape[0]
        elif name == f"{scope}/encoder/layer_0/intermediate/dense/kernel":
            found["groups"] = 1
    untied = model == "generator" and "generator/embeddings/LayerNorm/gamma" in shapes
    emb = "generator/embeddings" if untied else "electra/embeddings"
    if f"{emb}/LayerNorm/gamma" in shapes:
        found["embedding"] = shapes[f"{emb}/LayerNorm/gamma"][0]
    if f"{emb}/word_embeddings" in shapes:
        found["vocab"] = shapes[f"{emb}/word_embeddings"][0]
    return found


def _summary(config: ConvBertConfig) -> dict[str, int]:
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size, "groups": config.num_groups,
            "embedding": config.embedding_size, "vocab": config.vocab_size}


def suggest(shapes: Mapping[str, tuple[int, ...]], model: str) -> str:
    """One sentence: which released size (or which model, or what sizes) the checkpoint's variables fit."""
    found = describe(shapes, model)
    if found is None:
        other = MODELS[1 - MODELS.index(model)]
        if describe(shapes, other) is not None:
            return (f"It holds no {model} (no {_SCOPE[model]}/encoder/... variables) but a {other}: convert "
                    f"that with model={other!r} (--model {other})")
        sample = ", ".join(sorted(shapes)[:3]) or "nothing"
        return (f"It holds none of the release's variables (found {sample}): is it a ConvBERT checkpoint of "
                "yitu-opensource/ConvBert?")
    for size in SIZES:
        summary = _summary(released_config(size, model))
        if all(summary[k] == v for k, v in found.items()):
            return f"It looks like conv-bert-{size}'s {model}: use size {size!r} (--size {size})"
    sizes = ", ".join(f"{k} {v}" for k, v in found.items())
    return (f"Its {model} has {sizes}, which is no released size: pass --config with the pretraining hparams "
            "JSON it was trained with, or a config.json describing it")


def _report_leftovers(shapes: Mapping[str, tuple[int, ...]], used: set[str], model: str) -> None:
    other = MODELS[1 - MODELS.index(model)]
    others_prefixes = {"discriminator": ("electra/encoder/", "electra/embeddings_project/",
                                         "discriminator_predictions/"),
                       "generator": ("generator/", "generator_predictions/")}[other]
    dropped = {rule.tf1 for rule in RULES if rule.hf is None and rule.model == model}
    kept_out, others, unknown = [], 0, []
    for name in sorted(shapes):
        if name in used or name in _COUNTERS or _OPTIMIZER_SLOTS.search(name):
            continue
        if name in dropped:
            kept_out.append(name)
        elif name.startswith(others_prefixes):
            others += 1
        else:
            unknown.append(name)
    if kept_out:
        logger.info("not converted: ELECTRA's discriminator head (%s); no ConvBERT class holds it",
                    ", ".join(kept_out))
    if others:
        logger.info("ignored the %s's %d variables (convert them with model=%r)", other, others, other)
    if unknown:
        logger.warning("%d variables of the checkpoint are not part of the %s and were not converted: %s",
                       len(unknown), model, ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""))
