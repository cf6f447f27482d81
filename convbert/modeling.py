"""ConvBertModel and ConvBertFor*: Hugging Face's API over a registry composition.

Every class is built from a ``ConvBertConfig`` (Hugging Face's fields) or directly from a composition; module
names inside are ours and ``convbert.interop.hf_keys`` maps checkpoints both ways.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from convbert.composition import BuildContext, parse_composition, resolve_registry
from convbert.config import ConvBertConfig
from convbert.errors import CheckpointError, InputError, ShapeMismatchError
from convbert.interop import hf_keys
from convbert.interop.files import load_state_dict_dir, save_weights
from convbert.interop.hub import pop_hub_kwargs, resolve_pretrained
from convbert.interop.key_matching import KeyMismatch
from convbert.kernels.sequence_mask import SequenceMask
from convbert.outputs import BaseModelOutput, ModelOutput
from convbert.registry import Registry

logger = logging.getLogger(__name__)
_HF_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


class ConvBertPreTrainedModel(nn.Module):
    """Construction from a config or a composition, Hugging Face's weight init, save and load."""

    config_class = ConvBertConfig
    base_model_prefix = "convbert"
    head_name: str | None = None

    # A ConvBertModel inside a task model leaves its keys to the task model, which names them as a whole
    # (set while the task model's state_dict runs; on its own, the inner model names its keys itself).
    _names_from_parent = False
    # transformers' loading hooks, read by code written for PreTrainedModel: nothing is ignored on load
    _keys_to_ignore_on_load_missing: list[str] | None = None
    _keys_to_ignore_on_load_unexpected: list[str] | None = None

    def __init__(self, config: ConvBertConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ConvBertConfig()
        self.register_load_state_dict_pre_hook(_accept_hf_names)

    # -- state-dict names ------------------------------------------------------------------------
    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> Any:
        """As ``nn.Module.state_dict``, in transformers' key names whenever transformers can express the
        model, so ``hf_model.load_state_dict(ours.state_dict())`` works (and ``load_state_dict`` takes either
        naming). The modules inside keep our names; ``own_state_dict()`` gives those."""
        with self._named_as_a_whole(include_self=False):
            state = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        if self._names_from_parent or not self.config.hf_compatible:
            return state
        keys = [k for k in state if k.startswith(prefix)]
        mapped, unmapped = self._to_hf_names({k[len(prefix):]: state[k] for k in keys})
        if unmapped:  # a block transformers does not have: keep our names rather than half of each
            return state
        for key in keys:
            del state[key]
        state.update((prefix + k, v) for k, v in mapped.items())
        return state

    @property
    def head_block(self) -> str | None:
        """The registered name of this model's head (None for the base model)."""
        head = getattr(self, "head", None)
        return self.head_name or getattr(head, "block_name", None)

    def _to_hf_names(self, state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Our names -> transformers' for the encoder and a Hugging Face task head; a head transformers does
        not have (a plugin's) keeps its weights under its own prefix ``head.``, so transformers loads the
        encoder and reports those keys as unexpected. Returns (state, our keys with no name there)."""
        head = self.head_block
        mapped, unmapped = hf_keys.to_hf(state, head)
        if head is not None and head not in hf_keys.HEAD_RULES:
            mapped.update((k, state[k]) for k in unmapped if k.startswith("head."))
            unmapped = [k for k in unmapped if not k.startswith("head.")]
        return mapped, unmapped

    def saved_state_dict(self, state_dict: dict[str, torch.Tensor] | None = None,
                         hf_format: bool | None = None) -> dict[str, torch.Tensor]:
        """The tensors ``save_pretrained`` writes, under the names it writes them; raises what saving would
        (run on the meta device, it checks a save before any training: ``Task.check``)."""
        if hf_format is None:
            hf_format = self.config.hf_compatible
        state = self._own_names(dict(state_dict if state_dict is not None else self.own_state_dict()))
        if hf_format:
            self.config.require_hf_compatible()
            if self._decoder_is_tied():
                state.pop("head.decoder.weight", None)
            state, unmapped = self._to_hf_names(state)
            if unmapped:
                raise CheckpointError(f"no Hugging Face name for: {', '.join(unmapped)}")
        return state

    def own_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict in our module names (what checkpoint conversion starts from)."""
        with self._named_as_a_whole(include_self=True):
            return dict(super().state_dict())

    @contextlib.contextmanager
    def _named_as_a_whole(self, include_self: bool):
        """While it runs, the ConvBert models inside this one (a task model's encoder) keep our key names,
        so the caller maps the whole state dict at once; on their own they name their keys themselves."""
        inner = [m for m in self.modules() if isinstance(m, ConvBertPreTrainedModel)
                 and (include_self or m is not self)]
        before = [m._names_from_parent for m in inner]
        for m in inner:
            m._names_from_parent = True
        try:
            yield
        finally:
            for m, flag in zip(inner, before, strict=True):
                m._names_from_parent = flag

    # -- weights ---------------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, only_new: bool = False) -> None:
        """Hugging Face's scheme: normal(0, initializer_range) weights, zero biases, unit LayerNorms,
        zero padding row; blocks with their own parameters provide ``init_block_weights(std)``.
        ``only_new``: only modules not initialised before (transformers' ``_is_hf_initialized`` flag)."""
        std = self.config.initializer_range
        embeddings = []
        modules = [m for m in self.modules() if not (only_new and getattr(m, "_is_hf_initialized", False))]
        for module in modules:
            module._is_hf_initialized = True
            if isinstance(module, (nn.Linear, nn.Conv1d)):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                embeddings.append(module)
            if hasattr(module, "init_block_weights"):
                module.init_block_weights(std)
        for module in embeddings:  # last: a decoder tied to them must not undo the zero padding row
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()

    def post_init(self) -> None:
        """transformers' hook for subclasses that add modules after ``__init__``: initialise those, leave the
        rest (trained, loaded or resized weights) as they are, and keep a tied decoder tied."""
        self.init_weights(only_new=True)
        self.tie_weights()

    # -- embeddings ------------------------------------------------------------------------------
    def get_output_embeddings(self) -> nn.Module | None:
        return getattr(getattr(self, "head", None), "decoder", None)

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.head.decoder = value

    def tie_weights(self) -> None:
        """Share the word embeddings with a tied decoder (after either was replaced)."""
        decoder = self.get_output_embeddings()
        if decoder is not None and self._decoder_is_tied():
            decoder.weight = self.get_input_embeddings().weight

    @torch.no_grad()
    def resize_token_embeddings(self, new_num_tokens: int | None = None,
                                pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Grow or shrink the vocabulary, keeping a tied decoder tied; transformers' arguments.

        ``pad_to_multiple_of`` rounds the size up; with neither argument nothing changes and the embedding
        is returned. ``mean_resizing`` (transformers' default) starts new rows at the mean of the old ones
        (decoder biases at their mean), so the new tokens do not skew the softmax; otherwise they are drawn
        as at initialisation.
        """
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        new_num_tokens = old.num_embeddings if new_num_tokens is None else int(new_num_tokens)
        if pad_to_multiple_of is not None and not isinstance(pad_to_multiple_of, int):
            raise ValueError(  # transformers' words
                f"Asking to pad the embedding matrix to a multiple of `{pad_to_multiple_of}`, which is not "
                "and integer. Please make sure to pass an integer")
        if pad_to_multiple_of is not None:
            new_num_tokens = -(-new_num_tokens // int(pad_to_multiple_of)) * int(pad_to_multiple_of)
        new = nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=old.padding_idx,
                           device=old.weight.device, dtype=old.weight.dtype)
        nn.init.normal_(new.weight, std=self.config.initializer_range)
        keep = min(new_num_tokens, old.num_embeddings)
        new.weight[:keep] = old.weight[:keep]
        if mean_resizing and new_num_tokens > keep:
            new.weight[keep:] = old.weight.mean(0)
        new._is_hf_initialized = True  # post_init() must not draw it again
        self.set_input_embeddings(new)
        decoder = self.get_output_embeddings()
        if decoder is not None:
            resized = nn.Linear(
                decoder.in_features, new_num_tokens, device=new.weight.device, dtype=new.weight.dtype
            )
            nn.init.zeros_(resized.bias)
            resized.bias[:keep] = decoder.bias[:keep]
            if mean_resizing:
                resized.bias[keep:] = decoder.bias.mean()
            if not self._decoder_is_tied():
                nn.init.normal_(resized.weight, std=self.config.initializer_range)
                resized.weight[:keep] = decoder.weight[:keep]
                if mean_resizing and new_num_tokens > keep:
                    resized.weight[keep:] = decoder.weight.mean(0)
            resized._is_hf_initialized = True
            self.set_output_embeddings(resized)
            self.head.vocab_size = new_num_tokens
            self.tie_weights()
        self.config.vocab_size = new_num_tokens
        return new

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameters counted once each (tied ones too); as transformers, ``exclude_embeddings`` leaves out
        the embedding tables (what ``transformers.Trainer`` logs as the model size)."""
        skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)} if exclude_embeddings \
            else set()
        params = {id(p): p for p in self.parameters()
                  if (p.requires_grad or not only_trainable) and id(p) not in skip}
        return sum(p.numel() for p in params.values())

    # -- Python objects: copies and pickles --------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Everything but the build context, which holds the registry and its plugin manager (and so
        modules, which do not pickle) and is needed only while building."""
        state = self.__dict__.copy()
        state.pop("build_context", None)
        return state

    # -- transformers' PreTrainedModel surface that user code and Trainer / pipeline read ----------
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    # transformers' attention back-ends (sdpa, flash, flex) are not used: the mixer blocks pick their kernels
    _supports_sdpa = _supports_flash_attn = _supports_flex_attn = _supports_attention_backend = False

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        return False

    @classmethod
    def _from_config(cls, config: ConvBertConfig, **kwargs: Any) -> ConvBertPreTrainedModel:
        """``cls(config)``, taking transformers' keyword arguments (``attn_implementation``, ``dtype``)."""
        config = copy.deepcopy(config)
        if kwargs.get("attn_implementation") is not None:
            config._attn_implementation = kwargs["attn_implementation"]
        model = cls(config)
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        return model.to(dtype) if isinstance(dtype, torch.dtype) else model

    @property
    def vocab_size(self) -> int:
        return self.get_input_embeddings().num_embeddings

    @property
    def _tied_weights_keys(self) -> dict[str, str]:
        """transformers 5's map of tied parameters, in ``state_dict()`` names: {decoder: word embeddings}."""
        if not self._decoder_is_tied():
            return {}
        state = self.state_dict(keep_vars=True)
        decoder = next((n for n, p in state.items() if p is self.get_output_embeddings().weight), None)
        source = next((n for n, p in state.items()
                       if p is self.get_input_embeddings().weight and n != decoder), None)
        return {decoder: source} if decoder and source else {}

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    @property
    def name_or_path(self) -> str:
        return self.config.name_or_path

    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(getattr(self.base_model, "gradient_checkpointing", False))

    is_activation_checkpointing = is_gradient_checkpointing  # transformers 5's names for the same

    def activation_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None,
                                        **kwargs: Any) -> None:
        self.gradient_checkpointing_enable(gradient_checkpointing_kwargs
                                           or kwargs.get("checkpointing_kwargs"))

    def activation_checkpointing_disable(self) -> None:
        self.gradient_checkpointing_disable()

    @classmethod
    def can_generate(cls) -> bool:
        return False  # an encoder: no generate()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # -- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        hf_format: bool | None = None,
        *,
        state_dict: dict[str, torch.Tensor] | None = None,
        is_main_process: bool = True,
        safe_serialization: bool = True,
        max_shard_size: int | str | None = None,
        **unused: Any,
    ) -> None:
        """Write config.json + model.safetensors (atomically).

        ``hf_format`` (default: whenever the composition allows it) writes Hugging Face's key names, so that
        ``transformers.ConvBertFor*.from_pretrained`` loads the directory; a composition Hugging Face cannot
        express raises NotExpressibleError when ``hf_format=True`` and is saved in our names otherwise, as
        ``convbert_model.safetensors``: a name transformers does not read, so it refuses the directory
        instead of building the model on fresh weights. transformers' ``state_dict`` (in either naming),
        ``is_main_process`` and ``max_shard_size`` (shards plus transformers' index file) are honoured;
        weights are always safetensors (``safe_serialization=False`` would be a pickle, which this project
        never writes).
        """
        if not is_main_process:
            return
        path = Path(save_directory)
        if hf_format is None:
            hf_format = self.config.hf_compatible
        state = self.saved_state_dict(state_dict, hf_format)
        self.config.architectures = [type(self).__name__]
        self.config.dtype = self.dtype
        self.config.save_pretrained(path)
        save_weights(state, path, max_shard_size, portable=hf_format)

    def _decoder_is_tied(self) -> bool:
        return bool(getattr(getattr(self, "head", None), "tie_word_embeddings", False))

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike | None,
        config: ConvBertConfig | None = None,
        *,
        dtype: torch.dtype | str | None = "auto",
        torch_dtype: torch.dtype | str | None = None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        **kwargs: Any,
    ) -> ConvBertPreTrainedModel | tuple[ConvBertPreTrainedModel, dict[str, list]]:
        """Load a checkpoint directory (ours or Hugging Face's; safetensors, or a weights-only pickle), or a
        Hugging Face Hub id such as ``"org/name"``: ``revision``, ``cache_dir``, ``local_files_only``,
        ``token``, ``force_download`` and ``subfolder`` are passed to ``convbert.interop.hub``, which fetches
        config.json and the weights (safetensors when the repo has them) into the Hub cache.

        A task class loaded from a base-model checkpoint gets a freshly initialised head (as Hugging Face).
        Encoder keys that are missing or unexpected are an error listing them. Other keyword arguments
        override config fields (``num_labels=5``, ``conv_mask_padding=True``). ``dtype="auto"`` keeps the
        checkpoint's floating dtype, as transformers 5 does; ``ignore_mismatched_sizes`` re-initialises
        tensors whose shapes differ (a new classifier) instead of failing. ``output_loading_info=True`` also
        returns transformers' dict: ``missing_keys`` (newly initialised head weights), ``unexpected_keys``
        (another head's weights, ignored), ``mismatched_keys`` and ``error_msgs``. ``state_dict=`` gives the
        weights instead of reading them (with ``pretrained_model_name_or_path=None``, pass ``config=``).
        """
        if torch.get_default_device().type == "meta":
            raise RuntimeError(
                "You are using `from_pretrained` with a meta device context manager: the weights would be "
                "read and then dropped. Load outside `with torch.device('meta')`, or build the model there "
                "with `ConvBertFor...(config)` and load weights later (`to_empty`, then `load_state_dict`)")
        state_dict = kwargs.pop("state_dict", None)
        hub_kwargs = pop_hub_kwargs(kwargs)
        if pretrained_model_name_or_path is None and (config is None or state_dict is None):
            raise TypeError("from_pretrained(None, ...) needs both config= and state_dict=")
        if config is None:  # first: a repo of another architecture is refused before its weights are fetched
            config = ConvBertConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs, **kwargs)
        else:
            for key, value in kwargs.items():
                setattr(config, key, value)
        model = cls._class_for(config)(config)
        if state_dict is not None:
            state, source = dict(state_dict), "state_dict"
        else:
            path = resolve_pretrained(pretrained_model_name_or_path, for_what="model", **hub_kwargs)
            state, source = load_state_dict_dir(path)
        info = model.load_checkpoint_state(state, source, ignore_mismatched_sizes=ignore_mismatched_sizes)
        target = _resolve_dtype(torch_dtype if torch_dtype is not None else dtype, state)
        if target is not None and target != model.dtype:
            model.to(target)
        model.eval()  # as transformers: dropout off until the caller trains
        return (model, info) if output_loading_info else model

    @classmethod
    def _class_for(cls, config: ConvBertConfig) -> type[ConvBertPreTrainedModel]:
        """The class ``from_pretrained`` builds for ``config`` (the generic ``ConvBertWithHead`` picks the
        class of the head the directory holds)."""
        return cls

    def load_checkpoint_state(
        self,
        state: dict[str, torch.Tensor],
        source: Any = "state dict",
        ignore_mismatched_sizes: bool = False,
    ) -> dict[str, list]:
        """Load a state dict in Hugging Face's names or ours, with errors that list what does not match;
        returns what was left to its initialisation or ignored (``from_pretrained``'s loading info)."""
        ours = self.own_state_dict()
        # older transformers checkpoints also saved these constant buffers
        state = {k: v for k, v in state.items() if not k.endswith(_HF_BUFFERS)}
        known = {*ours, *(k.removeprefix(hf_keys.PREFIX) for k in ours)}
        state = hf_keys.renamed_own_keys(state, known)
        prefix = hf_keys.PREFIX
        if any(k in ours or k.removeprefix(prefix) in ours or prefix + k in ours
               for k in state if not k.startswith("head.")):  # our names
            mapped, unmapped = self._adapt_own_prefix(state, ours)
        else:  # transformers' names, a plugin head's weights under their own prefix `head.`
            mapped, unmapped = hf_keys.from_hf(state, self.head_block)
            mapped.update((k, state[k]) for k in unmapped if k.startswith("head.") and k in ours)
            unmapped = [k for k in unmapped if k not in mapped]
        tied = {"head.decoder.weight"} if self._decoder_is_tied() else set()
        mismatch = KeyMismatch.sort(missing=[k for k in ours if k not in mapped and k not in tied],
                                    unexpected=unmapped, head_prefixes=(*hf_keys.HF_HEAD_PREFIXES, "head."))
        mismatch.require_match(source, type(self).__name__)
        wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(ours[k].shape)}"
                 for k, v in mapped.items() if k in ours and v.shape != ours[k].shape]
        if wrong and not ignore_mismatched_sizes:
            raise ShapeMismatchError(
                f"checkpoint {source} has tensors of the wrong shape: {'; '.join(wrong)}. Pass "
                "ignore_mismatched_sizes=True to re-initialise them "
                "(e.g. a classifier with a new num_labels)."
            )
        if wrong:
            logger.warning("%s: re-initialised tensors of another shape: %s", type(self).__name__,
                           "; ".join(wrong))
            mapped = {k: v for k, v in mapped.items() if k not in ours or v.shape == ours[k].shape}
        mismatch.log_heads(logger, type(self).__name__)
        self.load_state_dict({k: v for k, v in mapped.items() if k in ours}, strict=False)
        # sets, as transformers 5 returns them; names as named_parameters() gives them
        return {"missing_keys": set(mismatch.missing_head), "unexpected_keys": set(mismatch.foreign_heads),
                "mismatched_keys": {w.split(":", 1)[0] for w in wrong} if ignore_mismatched_sizes else set(),
                "error_msgs": []}

    def enable_input_require_grads(self) -> None:
        """Make the input embeddings' output require gradients, so gradient checkpointing works with frozen
        embeddings (PEFT / LoRA), as transformers' method of this name."""
        def require_grads(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            output.requires_grad_(True)

        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(require_grads)

    def disable_input_require_grads(self) -> None:
        hook = getattr(self, "_require_grads_hook", None)
        if hook is not None:
            hook.remove()
            self._require_grads_hook = None

    def _own_names(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict of this model in either naming -> ours (e.g. what ``transformers.Trainer`` passes
        to ``save_pretrained``, taken from ``state_dict()``)."""
        ours = self.own_state_dict()
        if not state or not self.config.hf_compatible or any(k in ours for k in state
                                                             if not k.startswith("head.")):
            return state
        mapped, unmapped = hf_keys.from_hf(state, self.head_block)
        return {**mapped, **{k: state[k] for k in unmapped}}

    def _adapt_own_prefix(self, state, ours):
        """Our names, from a base model into a task model or back (the ``convbert.`` prefix)."""
        prefix = hf_keys.PREFIX
        wants_prefix = any(k.startswith(prefix) for k in ours)
        mapped, unmapped = {}, []
        for k, v in state.items():
            if wants_prefix and not k.startswith(prefix) and not k.startswith("head."):
                k = prefix + k
            elif not wants_prefix and k.startswith(prefix):
                k = k[len(prefix):]
            (mapped.__setitem__(k, v) if k in ours else unmapped.append(k))
        return mapped, unmapped


class ConvBertModel(ConvBertPreTrainedModel):
    """The encoder: embeddings and a stack of layers, all built from the registry.

    ``ConvBertModel(config)`` builds Hugging Face's ConvBERT; ``ConvBertModel(composition=...)``
    any composition.
    """

    def __init__(
        self,
        config: ConvBertConfig | None = None,
        *,
        composition: dict | None = None,
        registry: Registry | None = None,
    ) -> None:
        if composition is None:
            config = config if config is not None else ConvBertConfig()
            composition = config.encoder_composition()
        elif config is None:
            config = ConvBertConfig.from_composition(composition, registry)
        super().__init__(config)
        parsed = parse_composition(composition)
        registry = resolve_registry(parsed, registry)
        self.build_context = BuildContext(
            registry, parsed.hidden_size, float(parsed.layer_norm_eps), float(parsed.initializer_range)
        )
        self.embeddings = self.build_context.build("embedding", parsed.embedding, "embedding")
        self.layers = nn.ModuleList(
            self.build_context.build("layer", parsed.layer, "layer") for _ in range(parsed.num_layers)
        )
        self.gradient_checkpointing = bool(getattr(config, "gradient_checkpointing", False))
        self.init_weights()

    def gradient_checkpointing_enable(self,
                                      gradient_checkpointing_kwargs: dict[str, Any] | None = None) -> None:
        """Recompute each layer in backward instead of storing its activations (long inputs, big batches).
        ``gradient_checkpointing_kwargs`` go to ``torch.utils.checkpoint`` (as transformers; re-entrant
        checkpointing is refused, it would drop gradients of inputs that need none)."""
        kwargs = dict(gradient_checkpointing_kwargs or {})
        if kwargs.pop("use_reentrant", False):
            raise InputError("gradient_checkpointing_kwargs={'use_reentrant': True} is not supported; leave "
                             "it out (non-reentrant checkpointing, torch's recommendation)")
        self.checkpoint_kwargs = kwargs
        self.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.gradient_checkpointing = False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word = value
        self.embeddings.vocab_size = value.num_embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        head_mask: Any = None,  # accepted and ignored, as transformers 5 does
    ) -> BaseModelOutput | tuple:
        output_attentions = _default(output_attentions, self.config.output_attentions)
        output_hidden_states = _default(output_hidden_states, self.config.output_hidden_states)
        _check_inputs(input_ids, inputs_embeds, attention_mask, token_type_ids, position_ids)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        mask = SequenceMask.from_attention_mask(attention_mask, hidden.dtype)
        all_hidden = [hidden] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                hidden, probs = checkpoint(layer, hidden, mask, output_attentions, use_reentrant=False,
                                           **getattr(self, "checkpoint_kwargs", {}))
            else:
                hidden, probs = layer(hidden, mask, output_attentions)
            if all_hidden is not None:
                all_hidden.append(hidden)
            if all_attentions is not None:
                all_attentions.append(probs)
        out = BaseModelOutput(
            last_hidden_state=hidden,
            hidden_states=tuple(all_hidden) if all_hidden is not None else None,
            attentions=tuple(all_attentions) if all_attentions is not None else None,
        )
        return _maybe_tuple(out, return_dict, self.config)


class ConvBertWithHead(ConvBertPreTrainedModel):
    """An encoder plus one registered head; the ConvBertFor* classes fix the head and its signature."""

    def __init__(
        self,
        config: ConvBertConfig | None = None,
        *,
        composition: dict | None = None,
        registry: Registry | None = None,
    ) -> None:
        if composition is None:
            config = config if config is not None else ConvBertConfig()
            composition = config.to_composition(self.head_name, registry)
        elif config is None:
            config = ConvBertConfig.from_composition(composition, registry)
        composition = dict(composition)
        head = composition.pop("head", None)
        if head is None:
            head = config.head_node(self.head_name, registry)
        if head is None:
            raise InputError(f"{type(self).__name__} needs a composition with a `head:` node (or a config "
                             "whose composition holds one)")
        name = head if isinstance(head, str) else head.get("name")
        if self.head_name is not None and name != self.head_name:
            raise InputError(f"{type(self).__name__} has head {self.head_name!r}, the composition has "
                             f"{name!r}: build it with convbert.build_model or ConvBertWithHead")
        super().__init__(config)
        # built from the composition itself; the config only describes it (for config.json and transformers)
        self.convbert = ConvBertModel(config, composition=composition, registry=registry)
        self.head = self.convbert.build_context.build("head", head, "head")
        self.init_weights()

    def gradient_checkpointing_enable(self,
                                      gradient_checkpointing_kwargs: dict[str, Any] | None = None) -> None:
        self.convbert.gradient_checkpointing_enable(gradient_checkpointing_kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.convbert.gradient_checkpointing_disable()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.convbert.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.convbert.set_input_embeddings(value)

    def _encode(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                output_attentions, output_hidden_states) -> BaseModelOutput:
        return self.convbert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                             output_attentions, output_hidden_states, return_dict=True)

    @classmethod
    def _class_for(cls, config: ConvBertConfig) -> type[ConvBertPreTrainedModel]:
        if cls.head_name is not None:
            return cls
        head = config.saved_head()
        if head is not None:
            return task_class_for(head["name"], config._registry(None))
        for name in config.architectures or []:  # a Hugging Face task head, named by the saved class
            found = next((c for c in _with_head_classes() if c.__name__ == name), None)
            if found is not None:
                return found
        raise InputError("this config.json names no head (no head node in its composition, no ConvBertFor* "
                         "class in `architectures`): load it with ConvBertModel or the ConvBertFor* class "
                         "of its task")

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                head_mask=None, **head_inputs):
        """The encoder, then the head with ``head_inputs`` (its own keyword arguments: ``labels`` ...).
        A plugin's subclass may fix the signature as the ConvBertFor* classes do."""
        encoded = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               output_attentions, output_hidden_states)
        return self._finish(self.head(encoded.last_hidden_state, **head_inputs), encoded, return_dict)

    def _finish(self, head_out: ModelOutput, encoded: BaseModelOutput, return_dict: bool | None):
        head_out.hidden_states = encoded.hidden_states
        head_out.attentions = encoded.attentions
        problem_type = getattr(self.head, "problem_type", None)
        if problem_type is not None:
            self.config.problem_type = problem_type  # Hugging Face records the inferred problem type
        return _maybe_tuple(head_out, return_dict, self.config)


class ConvBertForMaskedLM(ConvBertWithHead):
    head_name = "masked_lm"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, head_mask=None, logits_at_labels_only: bool = False):
        """``logits_at_labels_only=True`` (pretraining) returns logits only for labelled positions, (N, V)."""
        encoded = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               output_attentions, output_hidden_states)
        out = self.head(encoded.last_hidden_state, labels=labels, logits_at_labels_only=logits_at_labels_only)
        return self._finish(out, encoded, return_dict)


class ConvBertForSequenceClassification(ConvBertWithHead):
    head_name = "sequence_classification"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, head_mask=None):
        encoded = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               output_attentions, output_hidden_states)
        self.head.problem_type = self.config.problem_type  # the config may have been changed since
        return self._finish(self.head(encoded.last_hidden_state, labels=labels), encoded, return_dict)


class ConvBertForTokenClassification(ConvBertWithHead):
    head_name = "token_classification"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, head_mask=None):
        encoded = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               output_attentions, output_hidden_states)
        return self._finish(self.head(encoded.last_hidden_state, labels=labels), encoded, return_dict)


class ConvBertForQuestionAnswering(ConvBertWithHead):
    head_name = "question_answering"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, head_mask=None):
        encoded = self._encode(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                               output_attentions, output_hidden_states)
        out = self.head(encoded.last_hidden_state, start_positions=start_positions,
                        end_positions=end_positions)
        return self._finish(out, encoded, return_dict)


class ConvBertForMultipleChoice(ConvBertWithHead):
    head_name = "multiple_choice"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, head_mask=None):
        """Inputs are (batch, num_choices, length); logits are (batch, num_choices)."""
        source = input_ids if input_ids is not None else inputs_embeds
        if source is None or source.dim() < 3:
            raise InputError(
                "ConvBertForMultipleChoice takes input_ids of shape (batch, num_choices, length) "
                "(or inputs_embeds with a hidden axis); "
                f"got shape {None if source is None else tuple(source.shape)}"
            )
        num_choices = source.shape[1]

        def flat(t, keep):
            return None if t is None else t.reshape(-1, *t.shape[-keep:])

        encoded = self._encode(flat(input_ids, 1), flat(attention_mask, 1), flat(token_type_ids, 1),
                               flat(position_ids, 1), flat(inputs_embeds, 2), output_attentions,
                               output_hidden_states)
        out = self.head(encoded.last_hidden_state, labels=labels, num_choices=num_choices)
        return self._finish(out, encoded, return_dict)


def _with_head_classes() -> list[type[ConvBertWithHead]]:
    """Every subclass of ConvBertWithHead, breadth first: the built-in classes before subclasses of them."""
    found, pending = [], list(ConvBertWithHead.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending += cls.__subclasses__()
    return found


def task_class_for(head: str, registry: Registry | None = None) -> type[ConvBertWithHead]:
    """The class that fixes ``head`` (``ConvBertFor*``, or a plugin's subclass), else the generic one.
    The registry is loaded first, so a plugin's model class, defined beside its head, is found."""
    (registry or Registry.default()).get("head", head)
    return next((c for c in _with_head_classes() if c.__dict__.get("head_name") == head), ConvBertWithHead)


def build_model(composition: dict | Any, registry: Registry | None = None) -> ConvBertPreTrainedModel:
    """Build the model a composition describes: ConvBertModel, or the task class of its head."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(composition, DictConfig):
        composition = OmegaConf.to_container(composition, resolve=True)
    composition = dict(composition)
    head = composition.get("head")
    if head is None:
        return ConvBertModel(composition=composition, registry=registry)
    name = head if isinstance(head, str) else head.get("name")
    registry = resolve_registry(parse_composition(composition), registry)
    return task_class_for(name, registry)(composition=composition, registry=registry)


# -- helpers --------------------------------------------------------------------------------------
def _resolve_dtype(dtype: torch.dtype | str | None, state: dict[str, torch.Tensor]) -> torch.dtype | None:
    """``"auto"``: the checkpoint's floating dtype when it has exactly one; a name or dtype: that one."""
    if dtype is None:
        return None
    if dtype == "auto":
        found = {t.dtype for t in state.values() if t.is_floating_point()}
        return found.pop() if len(found) == 1 else None
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise InputError(f"dtype {dtype!r} is not a torch dtype name (e.g. 'float32', 'bfloat16')")
        return resolved
    return dtype


def _accept_hf_names(module: ConvBertPreTrainedModel, state_dict: dict[str, torch.Tensor], prefix: str,
                     *_: Any) -> None:
    """``load_state_dict`` pre-hook: keys in transformers' names (as ``state_dict()`` gives them) become
    ours in place; keys in our names pass through."""
    if module._names_from_parent:
        return
    given = {k[len(prefix):]: state_dict.pop(k) for k in [k for k in state_dict if k.startswith(prefix)]}
    if module.config.hf_compatible:
        given = module._own_names(given)
    given = hf_keys.renamed_own_keys(given, module.own_state_dict())
    state_dict.update((prefix + k, v) for k, v in given.items())


def _default(value: bool | None, fallback: bool) -> bool:
    return fallback if value is None else value


def _maybe_tuple(out: ModelOutput, return_dict: bool | None, config: ConvBertConfig):
    return out if _default(return_dict, config.use_return_dict) else out.to_tuple()


def _check_inputs(input_ids, inputs_embeds, attention_mask, token_type_ids, position_ids) -> tuple[int, int]:
    """Shapes checked up front, so a mistake reads as a sentence and not as a size error deep in torch."""
    if (input_ids is None) == (inputs_embeds is None):
        raise InputError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if input_ids.dim() != 2:
            raise InputError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        if input_ids.dtype.is_floating_point:
            raise InputError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        shape = tuple(input_ids.shape)
    else:
        if inputs_embeds.dim() != 3:
            raise InputError(
                f"inputs_embeds must be (batch, length, embedding_size), got {tuple(inputs_embeds.shape)}"
            )
        shape = tuple(inputs_embeds.shape[:2])
    for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids),
                    ("position_ids", position_ids)):
        if t is None:
            continue
        try:
            fits = torch.broadcast_shapes(tuple(t.shape), shape) == shape  # (L,) and (1, L) broadcast, as HF
        except RuntimeError:
            fits = False
        if not fits:
            raise InputError(
                f"{name} has shape {tuple(t.shape)} but the input is (batch, length) = {shape}; "
                f"pass a {name} with one entry per token (or one that broadcasts to it)"
            )
    return shape
