"""The trained model shipped inside the package, and loading any saved chatsr model.

The default checkpoint lives in ``chatsr/checkpoints/default`` (weights in float16 to keep the
package small; they are loaded as float32). Nothing is downloaded: loading works offline.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.tokenizer import DATA

__all__ = ["DEFAULT_CHECKPOINT", "load_pretrained", "resolve_model"]

DEFAULT_CHECKPOINT = Path(__file__).parents[1] / "checkpoints" / "default"

WEIGHTS = "model.safetensors"
# weights in torch's pickle formats: loading them can run code, so they are refused, not read
_PICKLED = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")


def load_pretrained(path: str | os.PathLike | None = None
                    ) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    """Load a chatsr model folder (default: the shipped checkpoint) in eval mode, float32.

    The folder holds ``config.json``, ``model.safetensors`` and the tokenizer's files, as
    ``save_pretrained`` and ``chatsr train`` write them. Weights are read from safetensors only,
    never unpickled. A model is loaded once per process and shared (treat it as read-only),
    until its weights file changes: a run retrained into the same folder is loaded afresh.

    Raises ``FileNotFoundError`` for a folder or file that is missing, ``ValueError`` for one
    that cannot be used (a file given as the folder, a config that is not JSON or not a chatsr
    model's, corrupt weights or weights of another shape, pickled weights only, no tokenizer);
    the message names the path and what is wrong.

    >>> model, tokenizer = load_pretrained()  # doctest: +SKIP
    >>> load_pretrained("no/such/folder")
    Traceback (most recent call last):
        ...
    FileNotFoundError: no chatsr model folder .../no/such/folder: it does not exist
    """
    if not isinstance(path, str | os.PathLike | None):
        raise TypeError(f"path must be a model folder (str or Path) or None, got "
                        f"{type(path).__name__}: {path!r}")
    path = (DEFAULT_CHECKPOINT if path is None else Path(path)).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"no chatsr model folder {path}: it does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is a file, not a chatsr model folder (one with config.json, "
                         f"{WEIGHTS} and the tokenizer's files)")
    weights = path / WEIGHTS
    return _load(path, weights.stat().st_mtime_ns if weights.exists() else None)


def resolve_model(model: object) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    """The ``(model, tokenizer)`` pair that a ``model=`` argument names.

    ``None`` is the shipped model, a ``str`` or ``Path`` a model folder (`load_pretrained`), and
    a ``(ChatSRForCausalLM, tokenizer)`` tuple is used as it is. Anything else is a
    ``TypeError`` that names ``model`` and the value.

    >>> resolve_model(("a", "b"))
    Traceback (most recent call last):
        ...
    TypeError: model must be None (the shipped model), a model folder (str or Path) or a \
(ChatSRForCausalLM, tokenizer) pair as load_pretrained returns, got tuple: ('a', 'b')
    """
    if model is None or isinstance(model, str | os.PathLike):
        return load_pretrained(model)
    if (isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], ChatSRForCausalLM)
            and isinstance(model[1], PreTrainedTokenizerBase)):
        return model
    shown = repr(model)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise TypeError(f"model must be None (the shipped model), a model folder (str or Path) or "
                    f"a (ChatSRForCausalLM, tokenizer) pair as load_pretrained returns, got "
                    f"{type(model).__name__}: {shown}")


@functools.lru_cache(maxsize=4)
def _load(path: Path, version: int | None) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    config = _read_config(path)
    _check_weights(path, config)
    progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar in every notebook is noise
    try:
        model = ChatSRForCausalLM.from_pretrained(path, config=config, dtype=torch.float32,
                                                  use_safetensors=True).eval()
    except (OSError, RuntimeError, ValueError) as error:  # what the checks above cannot see
        raise ValueError(f"the weights in {path / WEIGHTS} cannot be loaded into the model "
                         f"that config.json describes ({error})") from None
    finally:
        if progress:
            hf_logging.enable_progress_bar()
    return model, _read_tokenizer(path, model)


def _read_config(path: Path) -> ChatSRConfig:
    file = path / "config.json"
    if not file.is_file():
        hint = (" The package ships none yet: train one with `chatsr train` and pass its "
                "directory." if path == DEFAULT_CHECKPOINT.resolve() else "")
        raise FileNotFoundError(f"no chatsr model in {path} (config.json missing).{hint}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file} is not a JSON file ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object, got a {type(data).__name__}")
    if data.get("model_type") != ChatSRConfig.model_type:
        raise ValueError(f"{file} is not a chatsr model's config: model_type must be "
                         f"{ChatSRConfig.model_type!r}, got {data.get('model_type')!r}")
    try:
        return ChatSRConfig.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{file} is not a valid chatsr model config ({error})") from None


def _check_weights(path: Path, config: ChatSRConfig) -> None:
    """Raise unless ``path`` holds safetensors weights with the shapes ``config`` implies."""
    weights = path / WEIGHTS
    if not weights.is_file():
        pickled = sorted(p.name for pattern in _PICKLED for p in path.glob(pattern))
        if pickled:
            raise ValueError(f"{path} holds weights only as {', '.join(pickled)}, a pickle "
                             f"format that chatsr never loads (unpickling can run code): "
                             f"{WEIGHTS} is required (save the model with save_pretrained)")
        raise FileNotFoundError(f"no {WEIGHTS} in the chatsr model folder {path}")
    try:
        with safe_open(weights, framework="pt") as file:
            stored = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
    except Exception as error:  # safetensors' own error type is not importable as an API
        raise ValueError(f"{weights} is not a readable safetensors file (corrupt or "
                         f"truncated: {type(error).__name__})") from None
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {name: tuple(t.shape)
                        for name, t in ChatSRForCausalLM(config).state_dict().items()}
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"{path / 'config.json'} describes no model that can be built "
                         f"({error})") from None
    missing = sorted(set(expected) - set(stored))
    wrong = [f"{name} {stored[name]} (config: {shape})" for name, shape in expected.items()
             if name in stored and stored[name] != shape]
    if missing or wrong:
        problems = ([f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"] if missing else []
                    ) + ([f"{len(wrong)} of another shape, e.g. {wrong[0]}"] if wrong else [])
        raise ValueError(f"{weights} does not fit the model config.json describes: "
                         f"{'; '.join(problems)}")


def _read_tokenizer(path: Path, model: ChatSRForCausalLM) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, KeyError, TypeError, ValueError):
        raise ValueError(f"no usable tokenizer in the chatsr model folder {path}: save the "
                         f"model's tokenizer there (tokenizer.save_pretrained)") from None
    if DATA not in tokenizer.get_vocab():
        raise ValueError(f"the tokenizer in {path} has no {DATA} token, so it is no chatsr "
                         f"model's (chatsr.model.tokenizer.extend_tokenizer adds it)")
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(f"the tokenizer in {path} has {len(tokenizer)} tokens but the model "
                         f"only {rows} embedding rows: they do not belong together")
    return tokenizer
