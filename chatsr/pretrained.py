"""The trained model shipped inside the package, and loading any saved chatsr model.

The default checkpoint lives in ``chatsr/checkpoints/default`` (weights in float16 to keep the
package small; they are loaded as float32). Nothing is downloaded: loading works offline.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .modeling import ChatSRForCausalLM

__all__ = ["DEFAULT_CHECKPOINT", "load_pretrained"]

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default"


def load_pretrained(path: str | Path | None = None
                    ) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    """Load a chatsr model directory (default: the shipped checkpoint) in eval mode, float32.

    The shipped model is loaded once per process and shared; treat it as read-only.

    >>> model, tokenizer = load_pretrained()  # doctest: +SKIP
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    return _load(path.resolve())


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
    if not (path / "config.json").exists():
        hint = (" The package ships none yet: train one with `chatsr train` and pass its "
                "directory." if path == DEFAULT_CHECKPOINT.resolve() else "")
        raise FileNotFoundError(f"no chatsr model in {path} (config.json missing).{hint}")
    model = ChatSRForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer
