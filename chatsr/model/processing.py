"""Turns point sets, prompts and formulas into the model's tensors (LLaVA's processor role).

A sequence is ``prompt + ANSWER_MARKER + formula tokens + EOS``. The prompt's single ``<data>``
is expanded to the ``k`` placeholders the model fills with encoded points. Labels are -100
everywhere but on the formula and EOS, so the loss trains only the answer. Points are validated
here, where the user's mistake can be named, and not deep inside torch.

>>> from chatsr.model.tokenizer import load_tokenizer
>>> proc = ChatSRProcessor(load_tokenizer(), num_data_tokens=2, max_dims=2)
>>> batch = proc([np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])], ["<data> fit y"],
...              [["<|math_add|>", "<|math_x1|>", "<|math_x2|>"]])
>>> batch["points"].shape, batch["point_mask"].tolist()
(torch.Size([1, 2, 3]), [[True, True]])
>>> proc.tokenizer.convert_ids_to_tokens(batch["input_ids"][0][batch["labels"][0] >= 0])
['<|math_add|>', '<|math_x1|>', '<|math_x2|>', '<|endoftext|>']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from chatsr.data.prompts import REFERENCE_REQUEST
from chatsr.data.records import pack_points
from chatsr.model.tokenizer import DATA
from chatsr.symbolic.operators import math_token
from chatsr.symbolic.validation import check_array

__all__ = ["ANSWER_MARKER", "DEFAULT_PROMPT", "IGNORE_INDEX", "MAX_CONTEXT_CHARACTERS",
           "MAX_PROMPT_TOKENS", "ChatSRProcessor", "answer_tokens", "pack_points", "user_prompt"]

ANSWER_MARKER = "\nFormula:"
DEFAULT_PROMPT = f"{DATA}\n{REFERENCE_REQUEST}"


MAX_CONTEXT_CHARACTERS = 1000
"""The most characters of context `user_prompt` takes (the facts training prompts state fit in
under 200): a bound on the time and memory a prompt costs, checked before anything is tokenized."""
MAX_PROMPT_TOKENS = 512
"""The most tokens of an encoded prompt, ``<data>`` placeholders and answer marker included
(`ChatSRProcessor.encode_prompt`); a context of `MAX_CONTEXT_CHARACTERS` characters of text
fits, one of as many emoji (four byte tokens each) does not."""


def user_prompt(context: str | None) -> str:
    """The model's prompt for a user's sentence of context (None or blank: `DEFAULT_PROMPT`).

    The context follows the request, where training put its facts (`chatsr.data.prompts`). It
    is plain text: a ``<data>`` or ``<|math_sin|>`` written in it stays text and never becomes
    that token (`ChatSRProcessor.encode_text`). Raises ``TypeError`` unless ``context`` is a
    string or None, and ``ValueError`` past `MAX_CONTEXT_CHARACTERS` characters.

    >>> user_prompt("It contains sin.")
    '<data>\\nPlease derive the expression that fits these data. It contains sin.'
    >>> user_prompt(123)
    Traceback (most recent call last):
        ...
    TypeError: prompt must be a string or None, got int: 123
    """
    if context is not None and not isinstance(context, str):
        raise TypeError(f"prompt must be a string or None, got {type(context).__name__}: "
                        f"{_shorten(repr(context))}")
    if context is None or not context.strip():
        return DEFAULT_PROMPT
    if len(context) > MAX_CONTEXT_CHARACTERS:
        raise ValueError(f"prompt has {len(context):,} characters, more than the "
                         f"{MAX_CONTEXT_CHARACTERS:,} allowed: give a few sentences of context "
                         f"(e.g. 'It contains sin. All values of x1 are positive.')")
    return f"{DEFAULT_PROMPT} {context.strip()}"


def _shorten(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[:most - 3] + "..."


IGNORE_INDEX = -100  # the label of tokens the loss skips (HF's convention)


class ChatSRProcessor:
    """Batches of ``points``, ``point_mask``, ``input_ids``, ``attention_mask`` (+ ``labels``).

    Parameters
    ----------
    tokenizer
        A tokenizer extended with the math tokens (`chatsr.model.tokenizer.extend_tokenizer`).
    num_data_tokens
        ``k``, the number of vectors the model's set encoder gives per point set.
    max_dims
        The number of x columns the model reads; point rows have ``max_dims + 1`` values.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, num_data_tokens: int,
                 max_dims: int):
        self.tokenizer = tokenizer
        self.num_data_tokens = num_data_tokens
        self.max_dims = max_dims
        self.data_token_id = tokenizer.convert_tokens_to_ids(DATA)
        added = set(tokenizer.get_added_vocab()) | set(tokenizer.all_special_tokens)
        # longest first, so that a token is never matched by a shorter one it begins with
        self._added = re.compile("|".join(map(re.escape, sorted(added, key=len, reverse=True))))
        # byte-level BPE: a token spells at most this many bytes, so at least len/this tokens
        self._bytes_per_token = max(len(t) for t in tokenizer.get_vocab() if t not in added)
        self._marker = self.encode_text(ANSWER_MARKER)

    @classmethod
    def for_model(cls, tokenizer: PreTrainedTokenizerBase, model: torch.nn.Module
                  ) -> ChatSRProcessor:
        """The processor matching a `ChatSRForCausalLM`'s config."""
        return cls(tokenizer, num_data_tokens=model.config.num_data_tokens,
                   max_dims=model.config.max_dims)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text: the spelling of an added or special token in it
        (``<data>``, ``<|math_sin|>``, ``<|endoftext|>``) is encoded as characters, never as
        that token, so that text cannot inject one.

        >>> from chatsr.model.tokenizer import load_tokenizer
        >>> proc = ChatSRProcessor(load_tokenizer(), num_data_tokens=2, max_dims=2)
        >>> ids = proc.encode_text("<|math_sin|>")
        >>> proc.tokenizer.decode(ids), proc.tokenizer.convert_tokens_to_ids("<|math_sin|>") in ids
        ('<|math_sin|>', False)
        """
        ids, start = [], 0
        while (match := self._added.search(text, start)) is not None:
            # the text before the token holds none; its first character alone is no token
            cut = match.start() + 1
            ids += self.tokenizer.encode(text[start:cut], add_special_tokens=False)
            start = cut
        return ids + self.tokenizer.encode(text[start:], add_special_tokens=False)

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of ``prompt`` with its first ``<data>`` expanded, then the answer marker.

        The first ``<data>`` is where the points go; the rest is text (`encode_text`), so that a
        user's context appended to a request cannot add a token. Raises ``TypeError`` for a
        prompt that is not a string, ``ValueError`` for one without ``<data>`` or longer than
        `MAX_PROMPT_TOKENS` tokens (checked before tokenizing when its length alone shows it).
        """
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}: "
                            f"{_shorten(repr(prompt))}")
        if DATA not in prompt:
            raise ValueError(f"prompt must contain {DATA}, where the points go; got "
                             f"{_shorten(repr(prompt))}")
        room = MAX_PROMPT_TOKENS - self.num_data_tokens - len(self._marker)
        if len(prompt.encode()) - len(DATA) > room * self._bytes_per_token:
            raise ValueError(f"prompt has {len(prompt):,} characters, more than "
                             f"{MAX_PROMPT_TOKENS} tokens can hold: shorten it")
        before, after = prompt.split(DATA, 1)
        ids = (self.encode_text(before) + [self.data_token_id] * self.num_data_tokens
               + self.encode_text(after) + self._marker)
        if len(ids) > MAX_PROMPT_TOKENS:
            raise ValueError(f"prompt is {len(ids)} tokens long with the points' "
                             f"{self.num_data_tokens} placeholders, more than the "
                             f"{MAX_PROMPT_TOKENS} allowed: shorten it")
        return ids

    def encode_answer(self, tokens: Sequence[str]) -> list[int]:
        """Ids of a preorder formula (``add``, ``+`` or ``<|math_add|>`` spellings) plus EOS."""
        from chatsr.symbolic.expressions import Expression  # validates and normalises the spelling

        names = Expression.parse(list(tokens)).to_tokens()
        ids = self.tokenizer.convert_tokens_to_ids(names)
        unknown = (None, self.tokenizer.unk_token_id)
        missing = [t for t, i in zip(names, ids, strict=True) if i in unknown]
        if missing:
            raise ValueError(f"the tokenizer lacks {missing}: extend it with max_vars large "
                             f"enough (chatsr.model.tokenizer.extend_tokenizer)")
        return ids + [self.tokenizer.eos_token_id]

    def __call__(self, points: Sequence[np.ndarray], prompts: Sequence[str] | None = None,
                 answers: Sequence[Sequence[str]] | None = None, *,
                 padding_side: Literal["right", "left"] = "right") -> dict[str, torch.Tensor]:
        """Batch point sets (each (n_i, max_dims + 1), rows ``[x.., y]``), prompts (default:
        the reference's request) and, for training, answers (preorder token lists).

        Use ``padding_side="left"`` for generation, so that every prompt ends where the
        continuation starts.
        """
        if prompts is None:
            prompts = [DEFAULT_PROMPT] * len(points)
        if len(prompts) != len(points) or (answers is not None and len(answers) != len(points)):
            raise ValueError(f"got {len(points)} point sets, {len(prompts)} prompts and "
                             f"{'no' if answers is None else len(answers)} answers: give one "
                             f"of each per sample")
        sets = [self._check_set(i, p) for i, p in enumerate(points)]
        sequences, labels = [], []
        for i, prompt in enumerate(prompts):
            ids = self.encode_prompt(prompt)
            answer = self.encode_answer(answers[i]) if answers is not None else []
            sequences.append(ids + answer)
            labels.append([IGNORE_INDEX] * len(ids) + answer)
        batch = self._pad_tokens(sequences, labels if answers is not None else None, padding_side)
        batch.update(self._pad_points(sets))
        return batch

    def _check_set(self, index: int, points: np.ndarray) -> np.ndarray:
        return check_array(f"points[{index}]", points, shape=("n", self.max_dims + 1),
                           dtype=np.float32,
                           hint=f"rows are [x1..x{self.max_dims}, y], without NaN or inf: "
                                f"chatsr.model.processing.pack_points builds them from X and y")

    def _pad_tokens(self, sequences: list[list[int]], labels: list[list[int]] | None,
                    side: str) -> dict[str, torch.Tensor]:
        length = max(map(len, sequences))
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), length), pad, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)  # (B, T)
        out = torch.full((len(sequences), length), IGNORE_INDEX, dtype=torch.long)  # (B, T)
        for i, seq in enumerate(sequences):
            span = slice(0, len(seq)) if side == "right" else slice(length - len(seq), length)
            ids[i, span] = torch.tensor(seq)
            mask[i, span] = 1
            if labels is not None:
                out[i, span] = torch.tensor(labels[i])
        batch = {"input_ids": ids, "attention_mask": mask}
        if labels is not None:
            batch["labels"] = out
        return batch

    @staticmethod
    def _pad_points(sets: list[np.ndarray]) -> dict[str, torch.Tensor]:
        n = max(len(s) for s in sets)
        points = torch.zeros((len(sets), n, sets[0].shape[1]))  # (B, N, D+1)
        mask = torch.zeros((len(sets), n), dtype=torch.bool)  # (B, N)
        for i, s in enumerate(sets):
            points[i, :len(s)] = torch.from_numpy(s)
            mask[i, :len(s)] = True
        return {"points": points, "point_mask": mask}


def answer_tokens(ids: Sequence[int], tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The math tokens among generated ``ids``, up to the first EOS (the formula, preorder)."""
    tokens = []
    for token in tokenizer.convert_ids_to_tokens(list(ids)):
        if token == tokenizer.eos_token:
            break
        if token.startswith(math_token("")[:-2]):
            tokens.append(token)
    return tokens
