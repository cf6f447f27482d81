"""Hugging Face Hub ids in ``from_pretrained``: ``"org/name"`` -> the local directory of its files.

A directory is used as it is. Anything else that reads as a repo id is fetched with ``huggingface_hub`` into
the Hub's own cache (``HF_HUB_CACHE``, or ``cache_dir``), so that a model fetched once loads offline
(``HF_HUB_OFFLINE=1`` or ``local_files_only=True``) and ``transformers`` reads the same copy. Only the files
the caller reads are fetched; weights as safetensors whenever the repo has them, ``pytorch_model.bin`` (read
with ``weights_only=True``) only when it has none. This module imports neither torch nor, until a repo id
is resolved, ``huggingface_hub`` (the optional ``hub`` extra).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from convbert.errors import CheckpointError, ConfigError

# The keyword arguments every from_pretrained takes for the Hub (transformers' names); never config fields.
HUB_KEYWORDS = ("revision", "cache_dir", "local_files_only", "token", "force_download", "subfolder")

CONFIG_FILES = ("config.json",)
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "chat_template.jinja", "additional_chat_templates/*")
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors",
                     "convbert_model.safetensors", "convbert_model.safetensors.index.json",
                     "convbert_model-*-of-*.safetensors")
_WEIGHTS_ENTRY = tuple(n for n in SAFETENSORS_FILES if "*" not in n)  # a file or index to start loading from
PICKLE_FILES = ("pytorch_model.bin",)

ForWhat = Literal["config", "tokenizer", "model", "tf_model", "all"]
_FILES: dict[str, tuple[str, ...]] = {
    "config": CONFIG_FILES,
    "tokenizer": TOKENIZER_FILES,
    "model": CONFIG_FILES + SAFETENSORS_FILES,
    "tf_model": CONFIG_FILES + SAFETENSORS_FILES,
    "all": CONFIG_FILES + TOKENIZER_FILES + SAFETENSORS_FILES,
}
# huggingface_hub's REPO_ID_REGEX and validate_repo_id rules: telling an id from a path needs no import
_REPO_ID = re.compile(r"(\b[\w\-.]{1,96}\b/)?\b[\w\-.]{1,96}\b")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """Neither a local directory nor a Hub repo that could be fetched. Also an ``OSError``, which is what
    transformers raises for the same, so code written for transformers catches it."""


def pop_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the Hub keywords from a from_pretrained's ``**kwargs`` (so they never become config fields)."""
    return {key: kwargs.pop(key) for key in HUB_KEYWORDS if key in kwargs}


def looks_like_local_path(name_or_path: str | os.PathLike) -> bool:
    """True for a path object, an absolute path, ``./x``, ``~/x``, ``a/b/c`` or anything that cannot be a
    repo id; False for ``name`` and ``org/name``."""
    if not isinstance(name_or_path, str):
        return True
    name = name_or_path
    if os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1:
        return True
    if os.sep != "/" and os.sep in name:
        return True
    return (_REPO_ID.fullmatch(name) is None or "--" in name or ".." in name or name.endswith(".git"))


def resolve_pretrained(
    name_or_path: str | os.PathLike,
    *,
    for_what: ForWhat = "model",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    subfolder: str = "",
) -> Path:
    """The local directory holding ``name_or_path``'s files for ``for_what``.

    An existing directory (``/subfolder``) is returned unchanged. A string that reads as a repo id
    (``name`` or ``org/name``) is resolved with ``huggingface_hub.snapshot_download`` at ``revision`` (a
    branch, tag or commit), fetching only: ``config.json`` ("config"); the tokenizer files ("tokenizer");
    config and weights ("model": safetensors, else ``pytorch_model.bin``; "tf_model": safetensors only);
    all of these ("all", for ``init_from=``). Errors name the id, the revision and the fix.
    """
    path = Path(name_or_path).expanduser() if isinstance(name_or_path, str) else Path(name_or_path)
    if path.is_dir():
        return _in_subfolder(path, subfolder)
    if path.exists():
        raise CheckpointError(f"{str(name_or_path)!r} is a file; pass the checkpoint directory that holds it")
    if looks_like_local_path(name_or_path):
        raise CheckpointNotFoundError(
            f"checkpoint directory {str(name_or_path)!r} does not exist; pass a local directory written by "
            "save_pretrained (convbert's or transformers') or a Hugging Face Hub id such as 'org/name'"
        )
    repo_id = str(name_or_path)
    hub = _import_hub(repo_id)
    fetch = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token,
                 force_download=force_download)
    directory = _snapshot(hub, repo_id, _FILES[for_what], subfolder, fetch)
    if for_what in ("model", "tf_model", "all") and not _has(directory, _WEIGHTS_ENTRY):
        weights = _WEIGHTS_ENTRY
        if for_what != "tf_model":  # only a repo without safetensors is asked for its pickle
            directory = _snapshot(hub, repo_id, PICKLE_FILES, subfolder, fetch)
            weights += PICKLE_FILES
        if not _has(directory, weights):
            only = (f" (convbert.tf reads safetensors only: convert once with ConvBertModel.from_pretrained("
                    f"{repo_id!r}).save_pretrained(<dir>) and load <dir>)") if for_what == "tf_model" else ""
            offline = f"; {_not_cached(hub, fetch)}" if _offline(hub, fetch) else ""
            raise CheckpointNotFoundError(
                f"{repo_id!r} (revision {revision or 'main'!r}) has no weights convbert reads: none of "
                f"{', '.join(weights)}{only} in {directory}{offline}"
            )
    return directory


def _in_subfolder(path: Path, subfolder: str) -> Path:
    if not subfolder:
        return path
    inside = path / subfolder
    if not inside.is_dir():
        raise CheckpointNotFoundError(f"{str(path)!r} has no subfolder {subfolder!r}")
    return inside


def _import_hub(repo_id: str) -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants  # a lazily loaded submodule
    except ImportError as exc:
        raise ConfigError(
            f"{repo_id!r} is not a local directory, and loading it from the Hugging Face Hub needs "
            "huggingface_hub: pip install 'convbert[hub]' (or pass a local directory written by "
            "save_pretrained)"
        ) from exc
    return huggingface_hub


def _snapshot(hub: Any, repo_id: str, files: tuple[str, ...], subfolder: str, fetch: dict[str, Any]) -> Path:
    patterns = [f"{subfolder.strip('/')}/{name}" if subfolder else name for name in files]
    try:
        folder = hub.snapshot_download(repo_id, allow_patterns=patterns, library_name="convbert", **fetch)
    except (OSError, ValueError) as exc:
        raise CheckpointNotFoundError(_explain(hub, repo_id, fetch, exc)) from exc
    return _in_subfolder(Path(folder), subfolder)


def _explain(hub: Any, repo_id: str, fetch: dict[str, Any], exc: BaseException) -> str:
    """The message for a failed snapshot_download, by the error's class name (stable across hub versions)."""
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    at = f"{repo_id!r} (revision {fetch['revision'] or 'main'!r})"
    local = "or pass a local directory written by save_pretrained"
    if "RevisionNotFoundError" in kinds:
        return f"{at}: the Hub has no such revision; check the branch, tag or commit name, {local}"
    if "GatedRepoError" in kinds:
        return (f"{at} is gated: accept its conditions on huggingface.co and pass token=... (or log in with "
                f"`hf auth login`), {local}")
    if "RepositoryNotFoundError" in kinds:
        return (f"{at}: no such repository on the Hugging Face Hub, or it is private; check the spelling, "
                f"pass token=... for a private repo, {local}")
    if "LocalEntryNotFoundError" in kinds or "OfflineModeIsEnabled" in kinds:
        return f"{at} could not be loaded: {_not_cached(hub, fetch)}"
    if "HFValidationError" in kinds:
        return f"{repo_id!r} is neither a local directory nor a valid Hugging Face Hub id ({exc})"
    return (f"could not fetch {at} from the Hugging Face Hub ({type(exc).__name__}: {exc}); check the "
            f"network and the spelling, {local}")


def _offline(hub: Any, fetch: dict[str, Any]) -> str | None:
    if fetch["local_files_only"]:
        return "local_files_only=True"
    return "HF_HUB_OFFLINE=1 is set" if hub.constants.HF_HUB_OFFLINE else None


def _not_cached(hub: Any, fetch: dict[str, Any]) -> str:
    cache = fetch["cache_dir"] or hub.constants.HF_HUB_CACHE
    offline = _offline(hub, fetch)
    why = f"{offline}, so convbert does not download" if offline else "the Hub could not be reached"
    return (f"it is not (completely) in the Hugging Face cache at {cache} and {why}. Check the spelling, run "
            "once online to fill the cache, or pass a local directory written by save_pretrained")


def _has(directory: Path, names: tuple[str, ...]) -> bool:
    return any((directory / name).is_file() for name in names)
