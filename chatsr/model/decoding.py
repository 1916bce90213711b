"""The model as a proposer: candidate formulas for one point set, and their log-probabilities.

`propose` lets a `ChatSRForCausalLM` write preorder trees for a point set by greedy search, beam
search or sampling, under a :class:`~chatsr.model.grammar.PreorderGrammar`, so that every candidate
is one valid tree within ``max_length`` tokens, over ``x1..x{num_variables}`` and the allowed
operators. Given a ``prefix``, it completes that partial tree instead, which is how the search
resamples around its best candidates. `sequence_log_probs` scores given trees by teacher
forcing, to re-rank candidates that came from elsewhere.

Both report the same quantity, the log-probability of the tree (and its EOS) under the model
*restricted to the grammar*: at every step the model's logits are masked to the tokens the
grammar allows and renormalised (a log-softmax over the allowed tokens). That is the
distribution ``strategy="sample"`` draws from at ``temperature=1`` without ``top_k``, a proper
distribution over the valid trees; temperature and top-k only steer the search and are not
part of it. For greedy decoding it is the sum of the log-softmax of HF's ``output_scores``.

Examples
--------
>>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
>>> from chatsr.model.processing import ChatSRProcessor, pack_points
>>> from chatsr.model.tokenizer import load_tokenizer
>>> tok = load_tokenizer()
>>> model = ChatSRForCausalLM(ChatSRConfig.tiny(tok))  # untrained: its formulas are random
>>> processor = ChatSRProcessor.for_model(tok, model)
>>> X = np.linspace(-1.0, 1.0, 20)[:, None]
>>> points = pack_points(X, np.sin(X[:, 0]), max_dims=3)
>>> candidates = propose(model, processor, points, num_candidates=8, max_length=7)
>>> all(len(c.tokens) <= 7 and c.source == "sample" for c in candidates)
True
>>> scores = sequence_log_probs(model, processor, points, [c.tokens for c in candidates],
...                             max_length=7)
>>> bool(np.allclose(scores, [c.log_prob for c in candidates], atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from transformers import LogitsProcessorList

from chatsr.model.grammar import PreorderGrammar, grammar_token_ids
from chatsr.model.modeling import ChatSRForCausalLM
from chatsr.model.processing import DEFAULT_PROMPT, IGNORE_INDEX, ChatSRProcessor, answer_tokens
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import ExpressionError, arity, canonical_name, math_token
from chatsr.symbolic.validation import check_integer

__all__ = ["Candidate", "Strategy", "operator_prior", "propose", "sequence_log_probs"]

Strategy = Literal["greedy", "beam", "sample"]


@dataclass(frozen=True)
class Candidate:
    """A formula the model proposed.

    Attributes
    ----------
    tokens
        The whole tree in preorder, ``<|math_...|>`` spelling (the prefix included).
    log_prob
        Log-probability of ``tokens`` and EOS under the grammar-restricted model (see the
        module docstring); comparable across strategies and prefixes for the same point set,
        prompt and grammar options.
    source
        ``"greedy"``, ``"beam"``, ``"sample"``, or ``"prefix"`` for a completion of a prefix.
    """

    tokens: tuple[str, ...]
    log_prob: float
    source: str


@torch.no_grad()
def propose(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray, *,
            prompt: str | None = None, strategy: Strategy = "sample", num_candidates: int = 32,
            max_length: int = 20, num_variables: int | None = None,
            operators: Iterable[str] | None = None, exclude: Iterable[str] = (),
            require: Iterable[str] = (), temperature: float = 1.0, top_k: int | None = None,
            prefix: Sequence[str] = (), seed: int = 0, batch_size: int = 64) -> list[Candidate]:
    """Candidate formulas for one point set, best log-probability first.

    Parameters
    ----------
    model, processor
        A ChatSR model and its processor (`ChatSRProcessor.for_model`).
    points
        One point set (n, max_dims + 1), rows ``[x1..x_max_dims, y]``
        (`chatsr.model.processing.pack_points`).
    prompt
        The text around the ``<data>`` token; `chatsr.model.processing.DEFAULT_PROMPT` by default.
    strategy
        ``"greedy"`` (one candidate), ``"beam"`` (beam search of width ``num_candidates``) or
        ``"sample"`` (``num_candidates`` draws).
    num_candidates
        How many sequences to decode; fewer come back after removing duplicates.
    max_length
        The most tokens a tree may have, the prefix included.
    num_variables
        Variables ``x1..x{num_variables}`` may appear. By default, up to the last x column of
        ``points`` that is not all zero (zero columns are padding, as `pack_points` writes).
    operators, exclude, require
        Operators allowed (None: all), operators never allowed and operators every candidate
        holds, as for `PreorderGrammar`.
    temperature, top_k
        Sampling options; None for ``top_k`` keeps every allowed token.
    prefix
        Preorder tokens every candidate starts with: a tree that is still open.
    seed
        Seeds the sampling; the same seed (and ``batch_size``) gives the same candidates.
    batch_size
        The most sequences decoded or scored in one forward pass.

    Returns
    -------
    list of Candidate
        Distinct trees, each parsing with `Expression.parse`, sorted by ``log_prob``
        descending (ties keep the order in which they were decoded).

    Raises
    ------
    ValueError
        For an unknown strategy, a count below 1, or a prefix that is complete, longer than
        ``max_length``, cannot be finished within it, or holds tokens the grammar rules out.

    Examples
    --------
    The module docstring runs `propose` and `sequence_log_probs` on a tiny model.
    """
    _check_options(strategy, num_candidates, batch_size, temperature, top_k)
    prompt = DEFAULT_PROMPT if prompt is None else prompt
    batch = processor([points], [prompt])
    grammar = _grammar(processor, batch, max_length, num_variables, operators, exclude, require)
    start = _check_prefix(prefix, grammar)
    was_training = model.training
    model.eval()
    try:
        rows = _generate(model, _prompt_and_prefix(processor, batch, start, model.device),
                         strategy, num_candidates=num_candidates, batch_size=batch_size,
                         temperature=temperature, top_k=top_k, seed=seed,
                         max_new_tokens=max_length - len(start) + 1, grammar=grammar)
        trees = dict.fromkeys(start + tuple(answer_tokens(row, processor.tokenizer))
                              for row in rows)
        # beam search fills spare beams with impossible hypotheses when fewer valid trees exist
        # than beams; they break the grammar, so drop what does not parse or scores -inf
        trees = [tree for tree in trees if _parses(tree)]
        scores = _log_probs(model, processor, points, prompt, grammar, trees, batch_size)
    finally:
        model.train(was_training)
    source = "prefix" if start else strategy
    found = [Candidate(tree, float(score), source)
             for tree, score in zip(trees, scores, strict=True) if np.isfinite(score)]
    return sorted(found, key=lambda candidate: -candidate.log_prob)


def _check_options(strategy: str, num_candidates: int, batch_size: int, temperature: float,
                   top_k: int | None) -> None:
    if strategy not in get_args(Strategy):
        raise ValueError(f"strategy must be one of {', '.join(get_args(Strategy))}, got "
                         f"{strategy!r}")
    check_integer("num_candidates", num_candidates, 1)
    check_integer("batch_size", batch_size, 1)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be None (no cut) or at least 1, got {top_k!r}")


def _prompt_and_prefix(processor: ChatSRProcessor, batch: dict[str, torch.Tensor],
                       start: tuple[str, ...], device: torch.device) -> dict[str, torch.Tensor]:
    """``generate``'s inputs: the encoded prompt with the prefix's tokens appended."""
    ids = processor.tokenizer.convert_tokens_to_ids(list(start))
    input_ids = torch.cat([batch["input_ids"], torch.tensor([ids], dtype=torch.long)], dim=1)
    inputs = dict(batch, input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    return {key: value.to(device) for key, value in inputs.items()}


def _generate(model: ChatSRForCausalLM, inputs: dict[str, torch.Tensor], strategy: Strategy, *,
              num_candidates: int, batch_size: int, temperature: float, top_k: int | None,
              seed: int, max_new_tokens: int, grammar: PreorderGrammar) -> list[list[int]]:
    """The token ids ``generate`` writes after ``inputs``, one list per decoded sequence."""
    width = inputs["input_ids"].shape[1]
    options: dict[str, Any] = dict(max_new_tokens=max_new_tokens,
                                   logits_processor=LogitsProcessorList([grammar]))
    if strategy != "sample":
        beams = num_candidates if strategy == "beam" else 1
        return model.generate(**inputs, **options, do_sample=False, num_beams=beams,
                              num_return_sequences=beams)[:, width:].tolist()
    rows = []
    # HF's generate takes no torch.Generator: seed the global RNG inside a fork, which
    # restores it afterwards, so the caller's random state is left as it was
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for done in range(0, num_candidates, batch_size):
            count = min(batch_size, num_candidates - done)
            rows += model.generate(**inputs, **options, do_sample=True,
                                   num_return_sequences=count, temperature=temperature,
                                   top_k=top_k or 0)[:, width:].tolist()
    return rows


@torch.no_grad()
def sequence_log_probs(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray,
                       candidates: Sequence[Sequence[str]], *, prompt: str | None = None,
                       max_length: int = 20, num_variables: int | None = None,
                       operators: Iterable[str] | None = None, exclude: Iterable[str] = (),
                       require: Iterable[str] = (), batch_size: int = 64) -> np.ndarray:
    """Teacher-forced log-probability of each tree (and its EOS) for one point set.

    The quantity is `Candidate.log_prob`'s: pass the options given to `propose` and the scores
    match its candidates'. A tree the grammar rules out (longer than ``max_length``, with a
    variable past ``num_variables``, a forbidden operator or without a required one) scores
    ``-inf``.

    Parameters
    ----------
    candidates
        Preorder trees, in any spelling `Expression.parse` accepts.
    prompt, max_length, num_variables, operators, exclude, require, batch_size
        As for `propose`.

    Returns
    -------
    numpy.ndarray
        (len(candidates),) float64 log-probabilities.

    Raises
    ------
    ValueError
        When a candidate is not one valid tree.
    """
    prompt = DEFAULT_PROMPT if prompt is None else prompt
    batch = processor([points], [prompt])
    grammar = _grammar(processor, batch, max_length, num_variables, operators, exclude, require)
    was_training = model.training
    model.eval()
    try:
        return _log_probs(model, processor, points, prompt, grammar, candidates, batch_size)
    finally:
        model.train(was_training)


def _grammar(processor: ChatSRProcessor, batch: dict[str, torch.Tensor], max_length: int,
             num_variables: int | None, operators: Iterable[str] | None,
             exclude: Iterable[str], require: Iterable[str]) -> PreorderGrammar:
    """The grammar for one encoded prompt; ``num_variables`` defaults from its points."""
    if num_variables is None:
        used = batch["points"][0, :, :-1].ne(0).any(dim=0)  # (max_dims,)
        num_variables = int(used.nonzero().max()) + 1 if used.any() else 0
    elif not 0 <= num_variables <= processor.max_dims:
        raise ValueError(f"num_variables must be between 0 and {processor.max_dims} (the x "
                         f"columns the model reads), got {num_variables!r}")
    tokenizer = processor.tokenizer
    return PreorderGrammar(token_ids=grammar_token_ids(tokenizer),
                           eos_token_id=tokenizer.eos_token_id,
                           prompt_length=batch["input_ids"].shape[1], max_length=max_length,
                           num_variables=num_variables, operators=operators, exclude=exclude,
                           require=require)


def _check_prefix(prefix: Sequence[str], grammar: PreorderGrammar) -> tuple[str, ...]:
    """``prefix`` in ``<|math_...|>`` spelling, after checking that the grammar can finish it."""
    if isinstance(prefix, str):
        raise ValueError(f"prefix must be a sequence of tokens, got the string {prefix!r}")
    tokens, open_slots = [], 1  # the operands still owed, as PreorderGrammar counts them
    for token in prefix:
        try:
            name = canonical_name(token) if isinstance(token, str) else None
        except ExpressionError:
            name = None
        if name is None:
            raise ValueError(f"prefix holds {token!r}, which is not a math token such as "
                             f"'<|math_add|>', 'add', '+' or 'x1'")
        if open_slots == 0:
            raise ValueError(f"prefix {list(prefix)} goes on after a complete tree: give the "
                             f"start of one tree")
        tokens.append(math_token(name))
        open_slots += arity(name) - 1
    max_length = grammar.max_length
    if len(tokens) > max_length:
        raise ValueError(f"prefix has {len(tokens)} tokens, more than max_length={max_length}")
    ruled_out = [token for token in tokens if token not in grammar.allowed_tokens]
    if ruled_out:
        raise ValueError(f"prefix uses {ruled_out}, which num_variables, operators or exclude "
                         f"rule out")
    if tokens and open_slots == 0:
        raise ValueError(f"prefix {tokens} is already a complete tree: nothing is left to "
                         f"propose; give an open prefix")
    owed = sum(arity(canonical_name(t)) for t in grammar.required_tokens if t not in tokens)
    if open_slots + owed > max_length - len(tokens):
        raise ValueError(f"prefix {tokens} needs at least {open_slots + owed} more tokens (with "
                         f"the required operators) but max_length={max_length} leaves "
                         f"{max_length - len(tokens)}")
    return tuple(tokens)


def _parses(tokens: Sequence[str]) -> bool:
    try:
        Expression.parse(tokens)
    except ExpressionError:
        return False
    return True


def _log_probs(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray,
               prompt: str, grammar: PreorderGrammar, trees: Sequence[Sequence[str]],
               batch_size: int) -> np.ndarray:
    """Grammar-restricted log-probabilities of ``trees`` for ``points`` and ``prompt``."""
    start = grammar.prompt_length  # every row shares the prompt, so answers start here
    totals = []
    for first in range(0, len(trees), batch_size):
        chunk = trees[first:first + batch_size]
        # right padding keeps every answer at the same positions as in generate
        inputs = processor([points] * len(chunk), [prompt] * len(chunk), chunk)
        inputs = {key: value.to(model.device) for key, value in inputs.items()}
        labels = inputs.pop("labels")
        logits = model(**inputs).logits.float()  # (B, T, V)
        ids = inputs["input_ids"]  # (B, T)
        steps = []
        for t in range(start, ids.shape[1]):
            # the grammar masks what it would have masked while generating token t
            scores = grammar(ids[:, :t], logits[:, t - 1]).log_softmax(dim=-1)  # (B, V)
            steps.append(scores.gather(1, ids[:, t:t + 1])[:, 0])  # (B,)
        step_log_probs = torch.stack(steps, dim=1)  # (B, A)
        is_answer = labels[:, start:] != IGNORE_INDEX  # (B, A)
        totals.append(torch.where(is_answer, step_log_probs, 0.0).sum(dim=1))  # (B,)
    if not totals:
        return np.zeros(0)
    return torch.cat(totals).double().cpu().numpy()


@torch.no_grad()
def operator_prior(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray,
                   operators: Iterable[str]) -> dict[str, float] | None:
    """The model's probability, read from the data alone by its bag-of-tokens head, that the
    formula holds each of ``operators``; None for a model without that head.

    >>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
    >>> from chatsr.model.processing import ChatSRProcessor, pack_points
    >>> from chatsr.model.tokenizer import load_tokenizer
    >>> tok = load_tokenizer()
    >>> config = ChatSRConfig.tiny(tok)
    >>> config.bag_loss_weight = 1.0  # the head is built when training uses it
    >>> model = ChatSRForCausalLM(config).eval()
    >>> points = pack_points(np.ones((5, 1)), np.arange(5.0), model.config.max_dims)
    >>> prior = operator_prior(model, ChatSRProcessor.for_model(tok, model), points, ["sin"])
    >>> 0 < prior["sin"] < 1
    True
    """
    if model.bag_head is None:
        return None
    batch = processor([points], [DEFAULT_PROMPT])
    device = next(model.parameters()).device
    encoded = model.data_encoder(batch["points"].to(device), batch["point_mask"].to(device))
    probabilities = torch.sigmoid(model.bag_head(encoded.mean(dim=1)).float())[0]
    ids = {name: processor.tokenizer.convert_tokens_to_ids(math_token(name))
           for name in operators}
    return {name: float(probabilities[i]) for name, i in ids.items()}

