"""The trained model shipped inside the package, and loading any saved chatsr model.

The default checkpoint lives in ``chatsr/checkpoints/default`` (weights in float16 to keep the
package small; they are loaded as float32). Nothing is downloaded: loading works offline.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from chatsr.model.modeling import ChatSRForCausalLM

__all__ = ["DEFAULT_CHECKPOINT", "load_pretrained"]

DEFAULT_CHECKPOINT = Path(__file__).parents[1] / "checkpoints" / "default"


def load_pretrained(path: str | Path | None = None
                    ) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    """Load a chatsr model directory (default: the shipped checkpoint) in eval mode, float32.

    A model is loaded once per process and shared (treat it as read-only), until its weights
    file changes: a run retrained into the same directory is loaded afresh.

    >>> model, tokenizer = load_pretrained()  # doctest: +SKIP
    """
    path = (DEFAULT_CHECKPOINT if path is None else Path(path)).resolve()
    weights = path / "model.safetensors"
    return _load(path, weights.stat().st_mtime_ns if weights.exists() else None)


@functools.lru_cache(maxsize=4)
def _load(path: Path, version: int | None) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    if not (path / "config.json").exists():
        hint = (" The package ships none yet: train one with `chatsr train` and pass its "
                "directory." if path == DEFAULT_CHECKPOINT.resolve() else "")
        raise FileNotFoundError(f"no chatsr model in {path} (config.json missing).{hint}")
    progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar in every notebook is noise
    try:
        model = ChatSRForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    finally:
        if progress:
            hf_logging.enable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer
