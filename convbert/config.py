"""ConvBertConfig: Hugging Face's flat ``config.json`` fields, validated, and the composition
they describe."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from convbert.activations import ACTIVATIONS
from convbert.errors import CheckpointError, ConfigError, NotExpressibleError

CONFIG_NAME = "config.json"

# Hugging Face's ConvBertConfig fields and defaults (transformers 5), plus the generic PretrainedConfig
# fields a ConvBERT config.json carries.
HF_DEFAULTS: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "embedding_size": 768,
    "head_ratio": 2,
    "conv_kernel_size": 9,
    "num_groups": 1,
    "classifier_dropout": None,
    "is_decoder": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
    "problem_type": None,
    "output_hidden_states": False,
    "output_attentions": False,
    "return_dict": True,
    "architectures": None,
}
# Ours: off by default so that released weights give Hugging Face's numbers.
EXTRA_DEFAULTS: dict[str, Any] = {
    "conv_mask_padding": False,
    "composition": None,
}
_IGNORED_KEYS = {"model_type", "transformers_version", "_name_or_path", "name_or_path", "torch_dtype",
                 "num_labels"}
# The transformers version whose ConvBertConfig this mirrors, written to config.json as transformers does.
TRANSFORMERS_VERSION = "5.25.0"


class ConvBertConfig:
    """Hugging Face compatible configuration of a ConvBERT model.

    Accepts every field of ``transformers.ConvBertConfig`` with the same defaults (note pad_token_id=1 there,
    while the released YituTech checkpoints use 0), keeps unknown fields (as Hugging Face does), and checks
    the values on construction. ``to_composition()`` gives the registry composition of the same model.
    """

    model_type = "convbert"

    def __init__(self, **kwargs: Any) -> None:
        num_labels = kwargs.pop("num_labels", None)
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        self.name_or_path = str(kwargs.pop("name_or_path", kwargs.pop("_name_or_path", "")))
        self.dtype = kwargs.pop("dtype", None) or kwargs.get("torch_dtype")
        # transformers' runtime choices, never written to config.json: the attention kernel (ours picks its
        # own; the value is kept for code that reads it) and activation checkpointing from the start
        self._attn_implementation = kwargs.pop("attn_implementation", None)
        self.gradient_checkpointing = bool(kwargs.pop("gradient_checkpointing", False))
        for key in _IGNORED_KEYS:
            kwargs.pop(key, None)
        for key, default in {**HF_DEFAULTS, **EXTRA_DEFAULTS}.items():
            setattr(self, key, copy.deepcopy(kwargs.pop(key, default)))
        for key, value in kwargs.items():  # unknown fields are kept and written back
            setattr(self, key, value)
        self._extra_keys = sorted(kwargs)
        if id2label is not None:
            self.id2label = {int(k): v for k, v in id2label.items()}
        else:
            self.id2label = {i: f"LABEL_{i}" for i in range(2 if num_labels is None else int(num_labels))}
        self._label2id = None
        if label2id is not None and id2label is not None:  # kept when it is more than the inverse
            given = {str(k): v for k, v in label2id.items()}  # values as given, as transformers keeps them
            self._label2id = None if given == {v: k for k, v in self.id2label.items()} else given
        self.validate()

    # -- labels -----------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        self.id2label = {i: f"LABEL_{i}" for i in range(n)}
        self._label2id = None

    @property
    def label2id(self) -> dict[str, int]:
        """The inverse of ``id2label`` unless set on its own (transformers keeps the two apart)."""
        label2id = getattr(self, "_label2id", None)
        return dict(label2id) if label2id is not None else {v: k for k, v in self.id2label.items()}

    @label2id.setter
    def label2id(self, mapping: dict[str, int]) -> None:
        self._label2id = {str(k): v for k, v in mapping.items()}

    # -- transformers' generic PretrainedConfig surface ----------------------------------------------
    is_encoder_decoder = False
    chunk_size_feed_forward = 0  # no feed-forward chunking (the only value ConvBERT supports)
    sub_configs: ClassVar[dict[str, Any]] = {}  # no nested configs (transformers' composite models have them)
    base_model_tp_plan = None  # no tensor-parallel or pipeline plans (transformers' distributed loading)
    base_model_pp_plan = None

    def get_text_config(self, decoder: bool | None = None, encoder: bool | None = None) -> ConvBertConfig:
        """This config: ConvBERT is a text model without sub-configs (transformers' rule for such models)."""
        return self

    def __iter__(self):
        """The field names, as iterating a transformers config gives its attributes."""
        return iter(self.to_dict())

    def to_diff_dict(self) -> dict[str, Any]:
        """``to_dict()`` without the fields that equal the defaults (what transformers writes by default)."""
        default = ConvBertConfig().to_dict()
        return {k: v for k, v in self.to_dict().items()
                if k in ("model_type", "transformers_version") or default.get(k) != v}

    @property
    def dtype(self) -> Any:
        """The weights' dtype recorded in config.json (``torch.float32`` ...), or None."""
        if self._dtype is None:
            return None
        import torch

        return getattr(torch, self._dtype)

    @dtype.setter
    def dtype(self, value: Any) -> None:
        self._dtype = None if value is None else str(value).removeprefix("torch.")

    @property
    def use_return_dict(self) -> bool:
        """Outputs as ModelOutput, or as tuples when ``torchscript=True`` (what ``torch.jit.trace`` needs)."""
        return bool(self.return_dict) and not getattr(self, "torchscript", False)

    def update(self, values: dict[str, Any]) -> None:
        """Set several fields at once, then check them (as ``PretrainedConfig.update``)."""
        for key, value in values.items():
            if not hasattr(self, key):  # a new field is kept and written back, as in __init__
                self._extra_keys = sorted({*self._extra_keys, key})
            setattr(self, key, value)
        self.validate()

    # -- validation -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the field, the value and the fix."""

        def need(ok: bool, field: str, why: str) -> None:
            if not ok:
                raise ConfigError(f"ConvBertConfig.{field}={getattr(self, field)!r}: {why}")

        for field in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                      "max_position_embeddings", "type_vocab_size", "embedding_size", "head_ratio",
                      "conv_kernel_size", "num_groups"):
            value = getattr(self, field)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 1, field,
                 "must be a positive integer")
        need(isinstance(self.num_hidden_layers, int) and self.num_hidden_layers >= 0, "num_hidden_layers",
             "must be an integer >= 0")
        need(self.conv_kernel_size % 2 == 1, "conv_kernel_size",
             "must be odd so the span is centred on the token; use e.g. 3, 5, 9 or 17")
        need(self.hidden_size % self.num_groups == 0 and self.intermediate_size % self.num_groups == 0,
             "num_groups", f"must divide hidden_size ({self.hidden_size}) and intermediate_size "
             f"({self.intermediate_size}); use a common divisor such as 1, 2 or 4")
        need(self.hidden_act in ACTIVATIONS, "hidden_act",
             f"unknown activation; choose one of {sorted(ACTIVATIONS)}")
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            need(0.0 <= float(getattr(self, field)) < 1.0, field, "must be in [0, 1)")
        need(self.classifier_dropout is None or 0.0 <= float(self.classifier_dropout) < 1.0,
             "classifier_dropout", "must be None or in [0, 1)")
        need(self.pad_token_id is None or 0 <= self.pad_token_id < self.vocab_size, "pad_token_id",
             f"must be None or an id below vocab_size ({self.vocab_size})")
        need(float(self.layer_norm_eps) > 0, "layer_norm_eps", "must be > 0")
        need(not self.is_decoder and not self.add_cross_attention, "is_decoder",
             "ConvBERT here is an encoder; decoder use and cross-attention are not supported "
             "(set both False)")

    # -- composition ------------------------------------------------------------------------------
    # config.json's ``composition`` holds what the flat fields cannot say: the whole encoder (hidden_size,
    # num_layers, embedding, layer ...) when Hugging Face's ConvBertConfig cannot say it, and the ``head``
    # node when the flat fields cannot describe the head (a plugin head, registered with only its params
    # dataclass and module). Either part may be there without the other.
    def _saved_encoder(self) -> dict[str, Any] | None:
        comp = self.composition
        if not comp or set(comp) <= {"head", "plugins"}:
            return None
        return {k: v for k, v in comp.items() if k != "head"}

    @property
    def plugins(self) -> list[str]:
        """The plugin modules the composition lists (``plugins:``), loaded before its blocks are looked up."""
        return list((self.composition or {}).get("plugins") or [])

    def _registry(self, registry: Any) -> Any:
        """``registry``, or the process-wide one with this config's ``plugins:`` (a child registry)."""
        if registry is not None:
            if self.plugins:
                registry.load_modules(self.plugins)
            return registry
        from convbert.registry import Registry

        return Registry.default().with_modules(self.plugins)

    def saved_head(self) -> dict[str, Any] | None:
        """The head node saved whole in config.json's composition (None when the flat fields hold it)."""
        head = (self.composition or {}).get("head")
        return copy.deepcopy(dict(head)) if head is not None else None

    def check_heads_fill(self) -> None:
        """Raise ConfigError unless the attention and convolution heads fill hidden_size exactly (Hugging
        Face's rule). Checked when a model is built, not when the config is: transformers builds such a
        config (its own tests use hidden_size=37 with 4 heads) and refuses only the model."""
        heads = max(self.num_attention_heads // self.head_ratio, 1)
        if self.hidden_size % (2 * heads):
            raise ConfigError(
                f"ConvBertConfig.hidden_size={self.hidden_size!r}: must be divisible by 2 * "
                f"(num_attention_heads // head_ratio) = {2 * heads} so that the attention and convolution "
                "heads (Hugging Face's rule) fill it exactly; change hidden_size, num_attention_heads or "
                "head_ratio")

    def encoder_composition(self) -> dict[str, Any]:
        """The registry composition of the encoder (embeddings and layers, no head)."""
        saved = self._saved_encoder()
        if saved is not None:
            return copy.deepcopy(saved)
        self.check_heads_fill()
        plugins = {"plugins": self.plugins} if self.plugins else {}
        ffn: dict[str, Any] = {"name": "dense", "intermediate_size": self.intermediate_size,
                               "activation": self.hidden_act}
        if self.num_groups > 1:
            ffn = {"name": "grouped", "intermediate_size": self.intermediate_size,
                   "num_groups": self.num_groups, "activation": self.hidden_act}
        return {
            "hidden_size": self.hidden_size,
            "num_layers": self.num_hidden_layers,
            "layer_norm_eps": float(self.layer_norm_eps),
            "initializer_range": float(self.initializer_range),
            "embedding": {
                "name": "bert",
                "vocab_size": self.vocab_size,
                "embedding_size": self.embedding_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "pad_token_id": self.pad_token_id,
                "dropout": float(self.hidden_dropout_prob),
            },
            "layer": {
                "name": "transformer",
                "dropout": float(self.hidden_dropout_prob),
                "norm": "post",
                "mixer": {
                    "name": "mixed",
                    "num_heads": self.num_attention_heads,
                    "head_ratio": self.head_ratio,
                    "head_size_rule": "hf",
                    "parts": [
                        {"name": "self_attention", "dropout": float(self.attention_probs_dropout_prob)},
                        {"name": "span_conv", "kernel_size": self.conv_kernel_size,
                         "mask_padding": bool(self.conv_mask_padding)},
                    ],
                },
                "ffn": ffn,
            },
            **plugins,
        }

    def head_node(self, head: str | None = None, registry: Any = None) -> dict[str, Any] | None:
        """The node of the model's head: the one saved whole in config.json's composition when it is ``head``
        (or ``head`` is None), else the Hugging Face task head ``head`` rebuilt from the flat fields (each
        registered head with flat fields says how: ``from_config``). None when ``head`` is None and no head
        is saved."""
        saved = self.saved_head()
        if saved is not None and (head is None or saved.get("name") == head):
            return saved
        if head is None:
            return None
        specs = self._registry(registry).specs["head"]
        spec = specs.get(head)
        if spec is None or spec.from_config is None:
            flat = sorted(name for name, s in specs.items() if s.from_config is not None)
            has = f"holds head {saved.get('name')!r}" if saved else "holds no head node"
            raise ConfigError(
                f"head {head!r}: this config's composition {has}, and {head!r} is not one of the Hugging "
                f"Face task heads that the flat fields describe ({', '.join(flat)}). Load the directory with "
                "the model class of the head it was saved with, or with "
                "convbert.ConvBertWithHead.from_pretrained, which builds whatever head a directory holds"
            )
        return {"name": head, **spec.from_config(self)}

    def set_head(self, node: dict[str, Any], registry: Any = None) -> None:
        """Describe ``node`` (a head block node) in this config: in the flat fields when its registration
        says how (``config_fields`` / ``from_config``) and they rebuild it exactly, else saved whole in
        config.json's composition. Either way ``head_node(node["name"])`` gives it back."""
        registry = self._registry(registry)
        spec, params = registry.parse("head", node, "model.head")
        full = {"name": spec.name, **_asdict(params)}
        comp = dict(self.composition or {})
        comp.pop("head", None)
        self.composition = comp or None
        if spec.from_config is not None and spec.config_fields:
            _, current = registry.parse("head", self.head_node(spec.name, registry), "config.json")
            current = _asdict(current)
            for param, field in spec.config_fields.items():
                if full.get(param) == current.get(param):
                    continue  # already what the fields give (classifier_dropout None stays None ...)
                if field == "num_labels":
                    self.num_labels = int(full[param])
                else:
                    if not hasattr(self, field):  # the head's own field, written back as transformers does
                        self._extra_keys = sorted({*self._extra_keys, field})
                    setattr(self, field, full.get(param))
            self.validate()
            _, rebuilt = registry.parse("head", self.head_node(spec.name, registry), "config.json")
            if _asdict(rebuilt) == _asdict(params):
                return
        self.composition = {**comp, "head": full}

    def to_composition(self, head: str | None = None, registry: Any = None) -> dict[str, Any]:
        """The composition that builds the same model (with the named task head, if any; ``head=None``: with
        the head saved in config.json's composition, if any)."""
        composition = self.encoder_composition()
        node = self.head_node(head, registry)
        if node is not None:
            composition["head"] = node
        return composition

    @classmethod
    def from_composition(
        cls, composition: dict[str, Any], registry: Any = None, **kwargs: Any
    ) -> ConvBertConfig:
        """A config describing ``composition``: flat fields where Hugging Face's can express it, otherwise
        the composition itself is kept (``hf_compatible`` is then False). A ``head`` node is described too
        (``set_head``)."""
        from convbert.composition import normalize_composition

        comp = copy.deepcopy(dict(composition))
        head = comp.pop("head", None)
        normalized = normalize_composition(comp, registry)  # validates every node first
        fields = _flat_fields_of(normalized)  # every default filled in, parts as a list
        config = cls(**{**fields, **kwargs})
        if normalize_composition(config.encoder_composition(), registry) != normalized:
            config = cls(**{**fields, **kwargs, "composition": comp})
        elif comp.get("plugins"):  # Hugging Face's fields, with the plugin modules its head may need
            config.composition = {"plugins": list(comp["plugins"])}
        if head is not None:
            config.set_head({"name": head} if isinstance(head, str) else dict(head), registry)
        return config

    @property
    def hf_compatible(self) -> bool:
        """Whether Hugging Face's ConvBertConfig can describe this model's encoder (a head that it cannot
        describe is saved in config.json's composition and its weights under their own prefix)."""
        return self._saved_encoder() is None

    def require_hf_compatible(self) -> None:
        if not self.hf_compatible:
            raise NotExpressibleError(
                "this model's composition (e.g. other mixers, a different head split or layer type) "
                "cannot be described by Hugging Face's ConvBertConfig, so transformers cannot load it. "
                "Save it in convbert's format (save_pretrained(dir, hf_format=False)) and load it with "
                "convbert."
            )

    # -- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_type": self.model_type}
        for key in HF_DEFAULTS:
            out[key] = copy.deepcopy(getattr(self, key))
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = self.label2id
        out["conv_mask_padding"] = self.conv_mask_padding
        if self.composition is not None:
            out["composition"] = copy.deepcopy(self.composition)
        for key in self._extra_keys:
            out[key] = copy.deepcopy(getattr(self, key))
        if self._dtype is not None:
            out["dtype"] = self._dtype
        out["transformers_version"] = TRANSFORMERS_VERSION
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> ConvBertConfig:
        data = dict(data)
        if data.get("model_type", "convbert") != "convbert":
            raise ConfigError(
                f"config.json has model_type={data['model_type']!r}; convbert loads ConvBERT configs only"
            )
        if "num_labels" in kwargs or "id2label" in kwargs:  # the caller's labels replace the file's
            data.pop("id2label", None)
            data.pop("label2id", None)
        return cls(**{**data, **kwargs})

    def to_json_string(self, use_diff: bool = False) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        """Write the config as JSON (by default only what differs from the defaults, as transformers)."""
        from convbert.interop.files import atomic_write_text

        atomic_write_text(Path(json_file_path), self.to_json_string(use_diff=use_diff))

    @classmethod
    def from_json_file(cls, json_file: str | os.PathLike) -> ConvBertConfig:
        """A config from one JSON file (``from_pretrained`` also takes the file's path)."""
        return cls.from_pretrained(json_file)

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        from convbert.interop.files import atomic_write_text

        atomic_write_text(path / CONFIG_NAME, self.to_json_string())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, return_unused_kwargs: bool = False,
                        **kwargs: Any) -> ConvBertConfig | tuple[ConvBertConfig, dict[str, Any]]:
        """Read ``config.json`` (a directory, the file, or a Hugging Face Hub id such as ``"org/name"``);
        keyword arguments override its fields. ``revision``, ``cache_dir``, ``local_files_only``, ``token``,
        ``force_download`` and ``subfolder`` choose what the Hub gives (``convbert.interop.hub``) and are
        never config fields. With ``return_unused_kwargs=True``, as transformers, the keywords that are not
        config fields are returned beside the config instead of being stored in it."""
        from convbert.interop.hub import pop_hub_kwargs, resolve_pretrained

        hub_kwargs = pop_hub_kwargs(kwargs)
        if return_unused_kwargs:
            known = {*HF_DEFAULTS, *EXTRA_DEFAULTS, "num_labels", "id2label", "label2id"}
            unused = {k: kwargs.pop(k) for k in list(kwargs) if k not in known}
            config = cls.from_pretrained(path, **hub_kwargs, **kwargs)
            return config, unused
        name = str(path)
        local = Path(path).exists() and not hub_kwargs.get("subfolder")
        path = Path(path) if local else resolve_pretrained(path, for_what="config", **hub_kwargs)
        file = path / CONFIG_NAME if path.is_dir() else path
        if not file.exists():
            if path.is_dir() and any(path.glob("*.safetensors")):
                raise CheckpointError(
                    f"{path} holds weights but no {CONFIG_NAME} (transformers.Trainer.save_model writes that "
                    "for a model that is not a transformers.PreTrainedModel): load it with "
                    "from_pretrained(path, config=model.config), or write the directory with "
                    "model.save_pretrained(path)"
                )
            raise CheckpointError(
                f"no {CONFIG_NAME} at {file}: pass a checkpoint directory written by save_pretrained "
                "(convbert's or transformers') or a Hugging Face Hub id such as 'org/name'"
            )
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{file} is not valid JSON: {exc}") from exc
        if isinstance(data, dict) and data.get("model_type", "convbert") != "convbert":
            raise ConfigError(
                f"{name!r} is a {data['model_type']!r} checkpoint (model_type in its {CONFIG_NAME}), not "
                "ConvBERT; convbert loads ConvBERT checkpoints only"
            )
        config = cls.from_dict(data, **kwargs)
        config.name_or_path = str(path) if local else name  # a Hub id, as transformers does
        return config

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConvBertConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ConvBertConfig {self.to_json_string(use_diff=True)}"


def _asdict(params: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def _flat_fields_of(comp: dict[str, Any]) -> dict[str, Any]:
    """Best-effort flat fields of a normalized composition (exact for Hugging Face's ConvBERT, approximate
    otherwise). Every value comes from the composition, whose blocks' dataclasses hold the defaults; a field
    the composition does not have keeps Hugging Face's default (HF_DEFAULTS): no default is written here."""
    emb = comp.get("embedding") or {}
    layer = comp.get("layer") or {}
    mixer = layer.get("mixer") or {}
    ffn = layer.get("ffn") or {}
    fields: dict[str, Any] = {"hidden_size": comp["hidden_size"], "num_hidden_layers": comp["num_layers"],
                              "layer_norm_eps": comp["layer_norm_eps"],
                              "initializer_range": comp["initializer_range"]}

    def take(node: dict[str, Any], key: str, field: str) -> None:
        if node.get(key) is not None:
            fields[field] = node[key]

    take(layer, "dropout", "hidden_dropout_prob")
    for key in ("vocab_size", "max_position_embeddings", "type_vocab_size", "pad_token_id"):
        take(emb, key, key)
    fields["embedding_size"] = emb.get("embedding_size") or comp["hidden_size"]
    take(ffn, "intermediate_size", "intermediate_size")
    take(ffn, "num_groups", "num_groups")
    take(ffn, "activation", "hidden_act")
    if mixer.get("name") == "mixed":
        take(mixer, "num_heads", "num_attention_heads")
        take(mixer, "head_ratio", "head_ratio")
        for part in mixer.get("parts") or []:
            if part.get("name") == "self_attention":
                take(part, "dropout", "attention_probs_dropout_prob")
            if part.get("name") == "span_conv":
                take(part, "kernel_size", "conv_kernel_size")
                take(part, "mask_padding", "conv_mask_padding")
    elif mixer.get("name") == "self_attention" and mixer.get("num_heads"):
        fields["num_attention_heads"] = mixer["num_heads"]
        fields["head_ratio"] = 1
    # keep the flat fields valid even when they only approximate a custom composition
    try:
        ConvBertConfig(**fields).check_heads_fill()
    except ConfigError:
        for key in ("num_attention_heads", "head_ratio", "conv_kernel_size", "num_groups"):
            fields.pop(key, None)
        fields["num_attention_heads"], fields["head_ratio"] = 1, 1
        if fields["hidden_size"] % 2:
            raise
    return fields
