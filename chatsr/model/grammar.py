"""Grammar-constrained decoding: a logits processor that lets a model write only valid trees.

A language model writes an expression as the preorder (prefix) sequence of its math tokens,
``<|math_add|> <|math_x1|> <|math_C|>``, and then its end-of-sequence token. Left free, it may
write text, stop inside a tree, run on past the root's last operand or start a tree too large to
finish. :class:`PreorderGrammar` rules all of that out while generating, by setting the logits
of every token that would break the grammar to ``-inf``.

The invariant
-------------
Reading a preorder prefix, count the *open slots*, the operands still owed: the count starts at
1 (the root) and a token of arity ``a`` fills one slot and opens ``a``, so it changes by
``a - 1``. The prefix is one complete tree when the count reaches 0, and it can still be
completed within ``max_length`` tokens exactly when ``open <= max_length - length``, because a
token closes at most one slot (a leaf closes one). A token is allowed only if the prefix keeps
this invariant after it. A leaf always keeps it, so while the tree is open some math token is
always allowed, and therefore:

* every output is one tree of at most ``max_length`` tokens followed by EOS, provided
  ``max_new_tokens >= max_length + 1`` leaves room for the EOS;
* EOS is forbidden while the tree is open and is the only token allowed once it is closed;
* text tokens and other special tokens are never allowed.

Required operators (``require``, the operators a prompt says the formula contains) extend the
count: each one not yet written is owed its arity in tokens (itself, and a leaf for the operand
a binary one adds), so a token is allowed only if ``open + owed <= max_length - length`` after
it, and a leaf may not close the tree while anything is owed. A missing required operator
always keeps this, so the argument above still holds and every tree holds them all.

Examples
--------
>>> import torch
>>> from chatsr.symbolic.operators import math_token
>>> token_ids = {math_token(n): i for i, n in enumerate(["add", "sin", "x1", "C"], start=3)}
>>> grammar = PreorderGrammar(token_ids=token_ids, eos_token_id=0, prompt_length=1,
...                           max_length=3, num_variables=1)
>>> prompt_then_add = torch.tensor([[1, 3]])  # one prompt token, then <|math_add|>
>>> scores = grammar(prompt_then_add, torch.zeros(1, 7))
>>> torch.isfinite(scores).nonzero()[:, 1].tolist()  # two operands in two tokens: leaves only
[5, 6]

In ``model.generate(..., logits_processor=LogitsProcessorList([grammar]))`` the processor runs
before the sampling warpers (temperature, top-k, top-p), so these only ever see valid tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from chatsr.symbolic.operators import (
    CHATSR_TOKEN,
    CONSTANT,
    DEFAULT_MAX_VARS,
    INTEGER_CONSTANTS,
    OPERATORS,
    ExpressionError,
    arity,
    canonical_name,
    math_token,
    math_tokens,
)
from chatsr.symbolic.validation import check_integer

__all__ = ["PreorderGrammar", "grammar_token_ids"]


def grammar_token_ids(tokenizer: PreTrainedTokenizerBase, *, max_vars: int = DEFAULT_MAX_VARS
                      ) -> dict[str, int]:
    """The vocabulary ids of the math tokens that ``tokenizer`` knows.

    Looks up every token of :func:`chatsr.symbolic.operators.math_tokens` (operators, ``x1`` to
    ``x{max_vars}``, ``C``, ``const_1`` to ``const_5``) and keeps those in the vocabulary.

    Parameters
    ----------
    tokenizer
        Any HF tokenizer, for instance one extended by
        :func:`chatsr.model.tokenizer.extend_tokenizer`.
    max_vars
        The most variables to look for.

    Returns
    -------
    dict[str, int]
        Math-token string to id, the ``token_ids`` that :class:`PreorderGrammar` takes.

    Examples
    --------
    >>> from tokenizers import Tokenizer, models
    >>> from transformers import PreTrainedTokenizerFast
    >>> vocab = {"<unk>": 0, "<|math_add|>": 1, "<|math_x1|>": 2, "<|math_C|>": 3}
    >>> tokenizer = PreTrainedTokenizerFast(
    ...     tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
    ...     unk_token="<unk>")
    >>> grammar_token_ids(tokenizer)
    {'<|math_add|>': 1, '<|math_x1|>': 2, '<|math_C|>': 3}
    """
    tokens = math_tokens(max_vars=max_vars)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    # an unknown token comes back as None, or as the unknown-token id when the tokenizer has one
    return {token: int(i) for token, i in zip(tokens, ids, strict=True)
            if i is not None and i != tokenizer.unk_token_id}


class PreorderGrammar(LogitsProcessor):
    """Mask every token that cannot continue the generated preorder prefix into one tree.

    Works with greedy search, sampling (``do_sample=True``, ``num_return_sequences``) and beam
    search (``num_beams > 1``); the batch is handled with tensor operations, no Python loop.
    The module docstring states the invariant it keeps.

    Parameters
    ----------
    token_ids
        Math-token string (``"<|math_add|>"``, ``"<|math_x1|>"``, ``"<|math_C|>"``,
        ``"<|math_const_1|>"``) to vocabulary id; :func:`grammar_token_ids` reads it from a
        tokenizer.
    eos_token_id
        The token that ends an expression.
    prompt_length
        Number of ``input_ids`` columns before generation starts: the padded prompt length, or
        0 when ``generate`` is given ``inputs_embeds`` only.
    max_length
        The most expression tokens, EOS not counted.
    num_variables
        Only ``x1`` to ``x{num_variables}`` are allowed; 0 allows no variable.
    operators
        Allowed operator names (any spelling that
        :func:`chatsr.symbolic.operators.canonical_name` accepts);
        None allows every operator that ``token_ids`` has.
    exclude
        Operator names that are never allowed, whatever ``operators`` says.
    require
        Operator names every tree must hold (each at least once); each must be allowed.
    allow_integers
        Whether the integer leaves ``const_1`` to ``const_5`` are allowed.

    Attributes
    ----------
    allowed_tokens : tuple of str
        The math tokens the grammar may emit.
    required_tokens : tuple of str
        The math tokens every tree must hold.

    Raises
    ------
    ValueError
        When an argument is out of range, names an unknown operator, leaves no leaf token, or
        requires an operator that is not allowed or more than ``max_length`` tokens can hold.

    Notes
    -----
    Once a row holds EOS only EOS is allowed, so that a row never has every score at ``-inf``;
    ``generate`` then writes its padding token there anyway. A row whose prefix already breaks
    the grammar (beam search fills spare beams with ``-inf`` candidates when fewer tokens are
    allowed than beams kept) is left only EOS as well, with its ``-inf`` score.

    Examples
    --------
    >>> import torch
    >>> from chatsr.symbolic.expressions import Expression
    >>> from chatsr.symbolic.operators import math_tokens
    >>> token_ids = {t: i for i, t in enumerate(math_tokens(2), start=3)}
    >>> grammar = PreorderGrammar(token_ids=token_ids, eos_token_id=0, prompt_length=0,
    ...                           max_length=5, num_variables=2, operators=["add", "sin"])
    >>> names = {i: t for t, i in token_ids.items()}
    >>> generator = torch.Generator().manual_seed(0)
    >>> ids = torch.zeros(1, 0, dtype=torch.long)
    >>> while not (ids == 0).any():  # sampling by hand, as generate does
    ...     scores = grammar(ids, torch.randn(1, 3 + len(token_ids), generator=generator))
    ...     next_id = torch.multinomial(scores.softmax(-1), 1, generator=generator)
    ...     ids = torch.cat([ids, next_id], dim=1)
    >>> expression = Expression.parse([names[i] for i in ids[0, :-1].tolist()])
    >>> expression.complexity <= 5
    True
    """

    def __init__(self, *, token_ids: Mapping[str, int], eos_token_id: int, prompt_length: int,
                 max_length: int, num_variables: int, operators: Iterable[str] | None = None,
                 exclude: Iterable[str] = (), require: Iterable[str] = (),
                 allow_integers: bool = True) -> None:
        # Unlike a sklearn estimator, a processor is built right before generate runs it: check
        # the arguments here, where the error still points at the caller's line.
        ids = _check_token_ids(token_ids)
        check_integer("eos_token_id", eos_token_id, 0)
        check_integer("prompt_length", prompt_length, 0)
        check_integer("max_length", max_length, 1)
        if eos_token_id in ids.values():
            raise ValueError(f"eos_token_id must not be a math token's id, got {eos_token_id}, "
                             "which token_ids also uses")
        num_available = next(i for i in range(len(ids) + 1) if f"x{i + 1}" not in ids)
        check_integer("num_variables", num_variables, 0)
        if num_variables > num_available:
            raise ValueError(f"num_variables must be at most {num_available}, the variables x1, "
                             f"x2, ... that token_ids has in a row, got {num_variables}")
        if operators is None:
            chosen = [name for name in OPERATORS if name in ids]
        else:
            chosen = _operator_names("operators", operators)
            missing = [name for name in chosen if name not in ids]
            if missing:
                raise ValueError(f"operators names {missing}, which token_ids has no token for")
        excluded = set(_operator_names("exclude", exclude))
        leaves = [f"x{i}" for i in range(1, num_variables + 1)] + [CONSTANT] * (CONSTANT in ids)
        if allow_integers:
            leaves += [f"const_{k}" for k in INTEGER_CONSTANTS if f"const_{k}" in ids]
        if not leaves:
            raise ValueError(f"no leaf token is allowed, so no expression can end: num_variables="
                             f"{num_variables}, allow_integers={allow_integers} and token_ids has "
                             f"no {math_token(CONSTANT)}")
        allowed = [name for name in chosen if name not in excluded] + leaves
        required = list(dict.fromkeys(_operator_names("require", require)))
        if ruled_out := [name for name in required if name not in allowed]:
            raise ValueError(f"require names {ruled_out}, which operators or exclude rule out")
        if 1 + sum(map(arity, required)) > max_length:
            raise ValueError(f"require names {required}, which need {1 + sum(map(arity, required))}"
                             f" tokens with a leaf each, more than max_length={max_length}")

        self.eos_token_id = int(eos_token_id)
        self.prompt_length = int(prompt_length)
        self.max_length = int(max_length)
        self.allowed_tokens: tuple[str, ...] = tuple(math_token(name) for name in allowed)
        self.required_tokens: tuple[str, ...] = tuple(math_token(name) for name in required)
        self._ids = torch.tensor([ids[name] for name in allowed])
        self._steps = torch.tensor([arity(name) - 1 for name in allowed])
        self._required = torch.tensor([ids[name] for name in required], dtype=torch.long)
        self._costs = torch.tensor([arity(name) for name in required], dtype=torch.long)
        self._tables: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor
                 ) -> torch.FloatTensor:
        """Return ``scores`` (B, V) with every token that breaks the grammar set to ``-inf``.

        ``input_ids`` (B, T) holds the prompt (its first ``prompt_length`` columns) and the
        tokens generated so far.
        """
        if input_ids.shape[1] < self.prompt_length:
            raise ValueError(f"prompt_length is {self.prompt_length} but input_ids has only "
                             f"{input_ids.shape[1]} column(s): pass the prompt's length, or 0 when "
                             "generating from inputs_embeds")
        vocab_size = scores.shape[-1]
        allowed, steps = self._lookup(vocab_size, scores.device)  # (V,), (V,)
        generated = input_ids[:, self.prompt_length:].to(scores.device)  # (B, L)
        in_vocab = (generated >= 0) & (generated < vocab_size)  # (B, L)
        safe = generated.where(in_vocab, 0)  # (B, L) indexable everywhere; in_vocab masks it
        is_eos = generated == self.eos_token_id  # (B, L)
        # generate pads finished rows, with a pad id that may equal EOS: all after EOS is ignored
        tree = is_eos.cumsum(dim=1) == 0  # (B, L) the tokens before the first EOS
        step = torch.where(tree, steps[safe], 0)  # (B, L)
        open_before = 1 + step.cumsum(dim=1) - step  # (B, L) open slots when each token came
        grammatical = (~tree | (in_vocab & allowed[safe] & (open_before > 0))).all(dim=1)  # (B,)
        open_slots = 1 + step.sum(dim=1)  # (B,)
        budget = self.max_length - tree.sum(dim=1) - 1  # (B,) tokens left after the next one
        open_after = open_slots[:, None] + steps  # (B, V)
        owed = self._owed(generated, tree, vocab_size)  # (B, V) after each next token
        mask = allowed & (open_after + owed <= budget[:, None]) & ((open_after > 0) | (owed == 0))
        eos_only = is_eos.any(dim=1) | ~grammatical | (open_slots <= 0) | ~mask.any(dim=1)  # (B,)
        mask &= ~eos_only[:, None]
        mask[:, self.eos_token_id] = eos_only
        return scores.masked_fill(~mask, float("-inf"))

    def _owed(self, generated: torch.Tensor, tree: torch.Tensor, vocab_size: int
              ) -> torch.Tensor:
        """(B, V): tokens the required operators still missing would need after each token."""
        device = generated.device
        if not len(self._required):
            return torch.zeros(1, vocab_size, dtype=torch.long, device=device)
        required, costs = self._required.to(device), self._costs.to(device)
        written = ((generated[:, :, None] == required) & tree[:, :, None]).any(dim=1)  # (B, R)
        missing = torch.where(written, 0, costs)  # (B, R)
        paid = torch.zeros(len(generated), vocab_size, dtype=torch.long, device=device)
        paid.scatter_(1, required.expand_as(missing), missing)  # writing one pays its cost
        return missing.sum(dim=1, keepdim=True) - paid

    def _lookup(self, vocab_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-vocabulary-id tables (V,): is the token allowed, and its change of open slots."""
        key = (vocab_size, device)
        if key not in self._tables:
            largest = max(int(self._ids.max()), self.eos_token_id)
            if largest >= vocab_size:
                raise ValueError(f"token_ids and eos_token_id use ids up to {largest} but the "
                                 f"scores have only {vocab_size} columns (the vocabulary size)")
            allowed = torch.zeros(vocab_size, dtype=torch.bool)
            allowed[self._ids] = True
            steps = torch.zeros(vocab_size, dtype=torch.long)
            steps[self._ids] = self._steps
            self._tables[key] = allowed.to(device), steps.to(device)
        return self._tables[key]


def _check_token_ids(token_ids: Mapping[str, int]) -> dict[str, int]:
    """Canonical name to id, after checking that keys are math tokens and ids are distinct."""
    ids: dict[str, int] = {}
    owner: dict[int, str] = {}
    for token, index in token_ids.items():
        is_math = isinstance(token, str) and CHATSR_TOKEN.fullmatch(token) is not None
        try:
            name = canonical_name(token) if is_math else None
        except ExpressionError:  # <|math_bogus|> has the form but names nothing
            name = None
        if name is None:
            raise ValueError(f"token_ids must map math tokens such as '<|math_add|>' to ids, got "
                             f"the key {token!r}")
        check_integer(f"token_ids[{token!r}]", index, 0)
        if int(index) in owner:
            raise ValueError(f"token_ids maps both {owner[int(index)]!r} and {token!r} to the id "
                             f"{index}")
        owner[int(index)] = token
        ids[name] = int(index)
    return ids


def _operator_names(argument: str, names: Iterable[str]) -> list[str]:
    """Canonical operator names, or a ValueError that names ``argument``."""
    if isinstance(names, str):  # "add" would otherwise be read as the names "a", "d", "d"
        raise ValueError(f"{argument} must be a list of operator names, got the string {names!r}")
    result = []
    for name in names:
        try:
            canonical = canonical_name(name) if isinstance(name, str) else None
        except ExpressionError:
            canonical = None
        if canonical not in OPERATORS:
            raise ValueError(f"{argument} has {name!r}, which is not an operator: expected names "
                             f"among {', '.join(OPERATORS)}")
        result.append(canonical)
    return result
