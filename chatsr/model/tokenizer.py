"""The text tokenizer, built offline, and `extend_tokenizer`, which teaches any causal LM math.

No tokenizer can be downloaded where chatsr runs, so the default one is trained here with the
``tokenizers`` library (byte-level BPE, as Qwen2's) on a corpus the project writes: the prompts
of the synthetic generator, which state facts about the target, and sentences that describe
variables in the words scientists use. It is saved under ``chatsr/assets/tokenizer`` and loaded
with ``AutoTokenizer``; ``python -m chatsr.model.tokenizer`` rebuilds it.

`extend_tokenizer` is the reference's ``expend_tokens`` for any HF tokenizer and causal LM:

* the math tokens (``<|math_add|>`` …) become added tokens that are *not* special, so that
  ``decode(..., skip_special_tokens=True)``, which transformers 5 applies in many pipelines,
  keeps them; ``<data>``, the place where the encoded point set enters, is special;
* the embeddings are resized and input and output embeddings untied (``tie_word_embeddings =
  False``): a math token's meaning as input (a node to build on) and as output (a choice among
  operators) differ, and the reference unties them too;
* new rows start at the mean of the existing ones (transformers' ``mean_resizing``), so that the
  new tokens' first logits match an average token instead of dominating or vanishing;
* calling it twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from torch import nn
from transformers import AddedToken, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from chatsr.data.prompts import DATA  # the sample format's placeholder is this special token
from chatsr.symbolic.operators import OPERATORS, math_tokens

__all__ = ["DATA", "DEFAULT_TOKENIZER", "EOS", "PAD", "build_tokenizer", "extend_tokenizer",
           "load_tokenizer", "prompt_corpus"]

logger = logging.getLogger(__name__)

DEFAULT_TOKENIZER = Path(__file__).parents[1] / "assets" / "tokenizer"
EOS = "<|endoftext|>"
PAD = "<|pad|>"
VOCAB_SIZE = 1024  # small: the text channel carries short factual prompts, not prose

# Quantities a scientist may name in a prompt ("x2 is a temperature in kelvin").
_QUANTITIES = (
    ("temperature", "kelvin"), ("pressure", "pascal"), ("time", "seconds"), ("distance", "meters"),
    ("mass", "kilograms"), ("velocity", "meters per second"), ("energy", "joules"),
    ("concentration", "moles per liter"), ("voltage", "volts"), ("current", "amperes"),
    ("frequency", "hertz"), ("angle", "radians"), ("semi-major axis", "astronomical units"),
    ("orbital period", "years"), ("rate constant", "per second"), ("volume", "liters"),
    ("force", "newtons"), ("charge", "coulombs"), ("density", "kilograms per cubic meter"),
    ("wavelength", "nanometers"), ("intensity", "watts per square meter"),
    ("resistance", "ohms"), ("length", "centimeters"), ("radius", "meters"),
)
_HINTS = (
    "The formula contains {op}.", "It is a power law.", "y decays exponentially with {v}.",
    "y grows linearly with {v}.", "y is periodic in {v}.", "{v} is a {q} in {u}.",
    "{v} is the {q}.", "The target y is a {q} in {u}.", "Expect an Arrhenius law.",
    "The data are noisy measurements.", "y is proportional to the square of {v}.",
    "y is inversely proportional to {v}.", "Use only addition and multiplication.",
)


def prompt_corpus(num_prompts: int = 20_000, *, seed: int = 0) -> Iterator[str]:
    """Texts to train the tokenizer on: generator prompts and variable descriptions.

    >>> texts = list(prompt_corpus(4))
    >>> len(texts), all(isinstance(t, str) and t for t in texts)
    (4, True)
    """
    from chatsr.data.generator import (
        iter_samples,  # the generator is only needed to build the tokenizer
    )

    rng = np.random.default_rng(seed)
    stream = iter_samples(seed=seed, max_vars=5, num_points=10)
    ops = sorted(OPERATORS)
    for i in range(num_prompts):
        if i % 2 == 0:
            yield next(stream)["conversations"][0]["value"]
        else:
            q, u = _QUANTITIES[rng.integers(len(_QUANTITIES))]
            hint = _HINTS[rng.integers(len(_HINTS))]
            yield hint.format(op=ops[rng.integers(len(ops))], v=f"x{rng.integers(1, 11)}",
                              q=q, u=u)


def build_tokenizer(texts: Iterable[str], *, vocab_size: int = VOCAB_SIZE,
                    out_dir: str | Path | None = None) -> PreTrainedTokenizerBase:
    """Train a byte-level BPE tokenizer on ``texts``; save it to ``out_dir`` when given.

    The result has only text tokens plus ``EOS`` and ``PAD``; `extend_tokenizer` adds the rest.

    >>> tok = build_tokenizer(["x1 is a temperature in kelvin"] * 5, vocab_size=300)
    >>> tok.decode(tok("x1 is hot")["input_ids"])
    'x1 is hot'
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 260:
        raise ValueError(f"vocab_size must be at least 260 (256 bytes and the special tokens), "
                         f"got {vocab_size}")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, pad_token=PAD)
    if out_dir is not None:
        tokenizer.save_pretrained(out_dir)
    return tokenizer


def load_tokenizer(path: str | Path = DEFAULT_TOKENIZER) -> PreTrainedTokenizerBase:
    """Load a tokenizer directory (the shipped one by default) and add the chatsr tokens.

    >>> tok = load_tokenizer()
    >>> tok.convert_ids_to_tokens(tok("<|math_add|><|math_x1|>")["input_ids"])
    ['<|math_add|>', '<|math_x1|>']
    """
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    extend_tokenizer(tokenizer)
    return tokenizer


def extend_tokenizer(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel | None = None,
                     *, max_vars: int = 10) -> int:
    """Add the math tokens and ``<data>`` to ``tokenizer`` and fit ``model``'s embeddings to it.

    Works for any HF tokenizer and causal LM (or a `ChatSRForCausalLM`). Unties the input and
    output embeddings and sets ``tie_word_embeddings=False``; new embedding rows start at the
    mean of the old ones. A tokenizer without a padding token pads with its EOS. Idempotent.

    Returns the number of tokens added to the tokenizer.

    >>> from transformers import Qwen2Config, Qwen2ForCausalLM
    >>> tok = build_tokenizer(["a b c"] * 3, vocab_size=300)
    >>> lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=16,
    ...     intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
    ...     num_key_value_heads=1, tie_word_embeddings=True))
    >>> extend_tokenizer(tok, lm, max_vars=3), extend_tokenizer(tok, lm, max_vars=3)
    (32, 0)
    >>> lm.get_input_embeddings().weight.shape[0] == len(tok), lm.config.tie_word_embeddings
    (True, False)
    """
    vocab = tokenizer.get_vocab()
    math = [AddedToken(t, special=False, normalized=False)
            for t in math_tokens(max_vars=max_vars) if t not in vocab]
    added = tokenizer.add_tokens(math)
    if DATA not in vocab:
        added += tokenizer.add_tokens([AddedToken(DATA, special=True, normalized=False)],
                                      special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        _fit_embeddings(model, len(tokenizer), known=len(tokenizer) - added)
    if added:
        logger.info("added %d tokens; vocabulary size %d", added, len(tokenizer))
    return added


def _fit_embeddings(model: PreTrainedModel, size: int, *, known: int) -> None:
    """Untie, then resize the embeddings of ``model`` to ``size`` rows (no-op when they fit).

    Rows from ``known`` on belong to the tokens just added and are mean-initialised.
    """
    text_config = model.config.get_text_config()
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if outputs is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings: extend_tokenizer "
                         f"needs a causal LM")
    if outputs.weight is inputs.weight or text_config.tie_word_embeddings:
        outputs.weight = nn.Parameter(inputs.weight.detach().clone())
        text_config.tie_word_embeddings = False
        model.config.tie_word_embeddings = False
    if known < size and inputs.weight.shape[0] > known:
        # a padded vocabulary (Qwen2.5: 151936 rows for 151665 tokens) already has rows for the
        # new ids, holding leftovers: drop them so that mean resizing initialises them
        model.resize_token_embeddings(known)
        inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if inputs.weight.shape[0] != size or outputs.weight.shape[0] != size:
        model.resize_token_embeddings(size, mean_resizing=True)


def main() -> None:
    """Rebuild the shipped tokenizer: ``python -m chatsr.model.tokenizer``."""
    logging.basicConfig(level=logging.INFO)
    tokenizer = build_tokenizer(prompt_corpus(), out_dir=DEFAULT_TOKENIZER)
    logger.info("wrote %s (%d tokens)", DEFAULT_TOKENIZER, len(tokenizer))


if __name__ == "__main__":
    main()
