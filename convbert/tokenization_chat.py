"""Chat templates: ``apply_chat_template`` and how templates are saved and loaded, as in transformers.

A ConvBERT checkpoint has no chat format of its own, but pipelines and trainers written for Hugging Face call
these methods on any tokenizer, and a folder may carry a template.  Rendering follows transformers 5: a
sandboxed Jinja environment (``trim_blocks``/``lstrip_blocks``, loop controls, ``tojson``, ``strftime_now``,
``raise_exception``, ``{% generation %}`` blocks), message objects turned into dicts with None fields dropped,
``continue_final_message`` and ``add_generation_prompt``.  jinja2 is imported only to render a template.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

CHAT_TEMPLATE_FILE = "chat_template.jinja"
ADDITIONAL_CHAT_TEMPLATES_DIR = "additional_chat_templates"
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "
# Names a message's reasoning is passed under; templates read the first.
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


@lru_cache(maxsize=32)
def compile_template(template: str):
    """The template compiled in transformers' sandboxed environment (cached: chats reuse one template)."""
    try:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ImportError("chat templates need jinja2 (pip install 'jinja2>=3.1.6')") from None

    class Generation(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` renders its body (it marks assistant output, whose token
        mask is not offered), so templates written for assistant masks still render."""

        tags = frozenset({"generation"})

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # Jinja's own tojson escapes HTML characters, which chat formats do not want.
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def _plain(value: Any) -> Any:
    """Message objects (dataclasses, pydantic models) as dicts; what a template sees is plain data only."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return (
            type(value)(_plain(item) for item in value)
            if isinstance(value, tuple)
            else [_plain(v) for v in value]
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return _plain(value.model_dump())
    for kind in (str, int, float):  # subclasses (enums, numpy scalars) lose their extra methods
        if isinstance(value, kind):
            return kind(value)
    return f"<{type(value).__name__}>"


def normalize_messages(conversation: Any) -> list[dict]:
    """Each message as a dict without its None fields (APIs send ``content=None``; templates test for a
    key's presence)."""
    messages = _plain(getattr(conversation, "messages", conversation))
    out = []
    for message in messages:
        if not isinstance(message, dict):
            raise TypeError(f"chat messages must be dicts, dataclasses or pydantic models, got {message!r}")
        message = {key: value for key, value in message.items() if value is not None}
        reasoning = next((message[key] for key in _REASONING_FIELDS if key in message), None)
        if reasoning is not None:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        out.append(message)
    return out


def render(
    template: str,
    messages: list[dict],
    *,
    continue_final_message: bool | str,
    add_generation_prompt: bool,
    variables: dict[str, Any],
) -> str:
    """One conversation as text; with ``continue_final_message`` the text stops inside the last message."""
    field = None
    if continue_final_message:
        field = continue_final_message if isinstance(continue_final_message, str) else "content"
        final = messages[-1].get(field)
        if final is None:
            raise ValueError(
                f'continue_final_message is set but the final message has no "{field}" to continue'
            )
        fields = [field]
        if field in _REASONING_FIELDS:
            fields = [name for name in _REASONING_FIELDS if messages[-1].get(name) == final]
        if not any(name in template for name in fields):
            raise ValueError(
                f'continue_final_message is set to "{field}", which the chat template never reads'
            )
        if not isinstance(final, str):
            raise ValueError("continue_final_message needs the final message's field to be a str")
        messages[-1] = {**messages[-1], **dict.fromkeys(fields, final + _CONTINUE_TAG)}
    text = compile_template(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, **variables
    )
    if field is None:
        return text
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in text or tag not in text:
        raise ValueError(
            "continue_final_message is set but the chat template dropped part of the final message; "
            f"final message: {final.strip()!r}"
        )
    at = text.rindex(tag)
    # A template that trims the message also trimmed the space before the tag: trim what precedes it too.
    return text[:at] if text[at : at + len(_CONTINUE_TAG)] == _CONTINUE_TAG else text[:at].rstrip()


def pick_template(templates: str | dict[str, str] | None, chosen: str | None, tools: Any) -> str:
    """The template to use: ``chosen`` (a template, or a name in a dict of them), else the tokenizer's own."""
    if isinstance(templates, dict):
        if chosen is not None:
            return templates.get(chosen, chosen)
        if tools is not None and "tool_use" in templates:
            return templates["tool_use"]
        if "default" in templates:
            return templates["default"]
        raise ValueError(
            f"this tokenizer has several chat templates and none is named 'default'; pass chat_template= one "
            f"of {sorted(templates)}"
        )
    if chosen is not None:
        return chosen
    if templates is None:
        raise ValueError("tokenizer.chat_template is not set and no chat_template argument was passed")
    return templates


def as_template_dict(value: Any) -> str | dict[str, str] | None:
    """A config's ``chat_template``: a str, or the {"name", "template"} list saved for several."""
    if isinstance(value, (list, tuple)):
        return {item["name"]: item["template"] for item in value}
    return value


def check_template_names(templates: str | dict[str, str] | None) -> None:
    """Refuse template names that are not plain file names: saving writes NAME.jinja, so "../x" would
    escape the folder."""
    for name in templates if isinstance(templates, dict) else ():
        if (
            not isinstance(name, str)
            or name in ("", ".", "..")
            or any(char in name for char in "/\\\0")
            or Path(name).name != name
        ):
            raise ValueError(f"chat template name {name!r} is not a plain file name")


def save_templates(
    templates: str | dict[str, str] | None, directory: Path, save_jinja_files: bool
) -> tuple[dict[str, Any], list[str]]:
    """Write the template(s) as transformers does: .jinja files, or (``save_jinja_files=False``) entries of
    tokenizer_config.json.  Returns (keys for tokenizer_config.json, files written)."""
    check_template_names(templates)
    if templates is None:
        return {}, []
    if not save_jinja_files:
        if isinstance(templates, dict):
            return {"chat_template": [{"name": k, "template": v} for k, v in templates.items()]}, []
        return {"chat_template": templates}, []
    written = []
    single = templates if isinstance(templates, str) else templates.get("default")
    if single is not None:
        path = directory / CHAT_TEMPLATE_FILE
        path.write_text(single, encoding="utf-8")
        written.append(str(path))
    if isinstance(templates, dict):
        others = {name: text for name, text in templates.items() if name != "default"}
        if others:
            (directory / ADDITIONAL_CHAT_TEMPLATES_DIR).mkdir(exist_ok=True)
        for name, text in others.items():
            path = directory / ADDITIONAL_CHAT_TEMPLATES_DIR / f"{name}.jinja"
            path.write_text(text, encoding="utf-8")
            written.append(str(path))
    return {}, written


def load_templates(directory: Path, configured: Any) -> str | dict[str, str] | None:
    """The folder's template(s): .jinja files win over tokenizer_config.json's ``chat_template``."""
    templates = as_template_dict(configured)
    single = directory / CHAT_TEMPLATE_FILE
    extra_dir = directory / ADDITIONAL_CHAT_TEMPLATES_DIR
    extra = sorted(extra_dir.glob("*.jinja")) if extra_dir.is_dir() else []
    if not single.is_file() and not extra:
        return templates
    found = {path.stem: path.read_text(encoding="utf-8") for path in extra}
    if single.is_file():
        if not found:
            return single.read_text(encoding="utf-8")
        found = {"default": single.read_text(encoding="utf-8"), **found}
    return found


class ChatTemplateMixin:
    """``chat_template`` and ``apply_chat_template`` for a tokenizer with ``__call__`` and
    ``special_tokens_map``."""

    chat_template: str | dict[str, str] | None = None

    def get_chat_template(self, chat_template: str | None = None, tools: list | None = None) -> str:
        return pick_template(self.chat_template, chat_template, tools)

    def apply_chat_template(
        self,
        conversation: Any,
        tools: list | None = None,
        documents: list | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool | str = False,
        tokenize: bool = True,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_dict: bool = True,
        return_assistant_tokens_mask: bool = False,
        tokenizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Render a conversation (a list of messages) or a batch of them with a Jinja chat template, then
        tokenize it without [CLS]/[SEP] unless ``tokenize=False`` (transformers' semantics; the template sees
        ``messages``, ``tools``, ``documents``, ``add_generation_prompt``, the special tokens, ``kwargs``)."""
        if return_assistant_tokens_mask:
            raise NotImplementedError("return_assistant_tokens_mask is not offered by convbert's tokenizers")
        if continue_final_message and add_generation_prompt:
            raise ValueError("continue_final_message and add_generation_prompt cannot be used together")
        template = self.get_chat_template(chat_template, tools)
        if isinstance(conversation, (list, tuple)) and not conversation:
            raise ValueError("cannot apply a chat template to an empty conversation")
        batched = isinstance(conversation, (list, tuple)) and (
            isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages")
        )
        conversations = [normalize_messages(chat) for chat in (conversation if batched else [conversation])]
        if documents is not None and not all(isinstance(document, dict) for document in documents):
            raise TypeError("documents must be a list of dicts (with 'title' and 'text' keys)")
        if tools is not None and not all(isinstance(tool, dict) for tool in tools):
            raise TypeError("tools must be JSON schemas (dicts); convbert does not convert Python functions")
        variables = _plain({**self.special_tokens_map, **kwargs, "tools": tools, "documents": documents})
        texts = [
            render(
                template,
                messages,
                continue_final_message=continue_final_message,
                add_generation_prompt=add_generation_prompt,
                variables=variables,
            )
            for messages in conversations
        ]
        if not tokenize:
            return texts if batched else texts[0]
        encoded = self(
            texts if batched else texts[0],
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            add_special_tokens=False,
            return_tensors=return_tensors,
            **(tokenizer_kwargs or {}),
        )
        return encoded if return_dict else encoded["input_ids"]
