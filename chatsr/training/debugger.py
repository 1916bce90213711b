"""Look inside one prediction: the reference's interactive debugger as a function and a report.

For one point set (and prompt) :func:`debug_sample` gathers what the reference's debugger
printed: the teacher-forced loss on the known answer, token by token; the distribution of the
first generated token; and greedy generation step by step, with the probability of each chosen
token and its top-k rivals. :func:`debug_record` does the same for a sample in ChatSR's JSON
format; ``chatsr debug`` (`chatsr.cli.debug`) prints its report.

torch, transformers and the model modules are imported inside the functions, so that importing
this module stays cheap.

>>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
>>> from chatsr.model.processing import ChatSRProcessor, pack_points
>>> from chatsr.model.tokenizer import load_tokenizer
>>> tok = load_tokenizer()
>>> model = ChatSRForCausalLM(ChatSRConfig.tiny(tok)).eval()
>>> x = np.linspace(-1, 1, 20)
>>> points = pack_points(x[:, None], np.sin(x), max_dims=3)
>>> report = debug_sample(model, ChatSRProcessor.for_model(tok, model), points,
...                       answer=["sin", "x1"], top_k=3, max_new_tokens=6, constrained=True)
>>> [token for token, _ in report.token_losses]
['<|math_sin|>', '<|math_x1|>', '<|endoftext|>']
>>> len(report.first_token), report.formula is not None
(3, True)
>>> "first generated token" in report.format()
True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from chatsr.model.modeling import ChatSRForCausalLM
    from chatsr.model.processing import ChatSRProcessor

__all__ = ["DebugReport", "debug_record", "debug_sample"]

logger = logging.getLogger(__name__)

TokenProbability = tuple[str, float]


@dataclass
class DebugReport:
    """What the model does on one sample; :meth:`format` renders it as a text report.

    Attributes
    ----------
    loss
        Teacher-forced mean ``-log p`` per answer token (EOS included), as the training loss;
        None when no answer was given.
    token_losses
        Per answer token: the token and its ``-log p`` under teacher forcing.
    first_token
        The ``top_k`` most likely first tokens of the answer and their probabilities, from the
        model's raw distribution (no grammar), most likely first.
    steps
        Greedy generation, one entry per generated token: the chosen token, its probability
        and the ``top_k`` tokens of that step's distribution (the chosen one first). With the
        grammar on, that distribution is renormalised over the tokens the grammar allows, and
        tokens it forbids are left out.
    formula
        The generated expression in infix, or None when its math tokens do not parse.
    """

    loss: float | None
    token_losses: list[TokenProbability] = field(default_factory=list)
    first_token: list[TokenProbability] = field(default_factory=list)
    steps: list[tuple[str, float, list[TokenProbability]]] = field(default_factory=list)
    formula: str | None = None

    def format(self) -> str:
        """The report as aligned text tables: loss, first token, generation, formula.

        >>> print(DebugReport(loss=None, first_token=[("<|math_x1|>", 0.5)],
        ...                   steps=[("<|math_x1|>", 0.5, [("<|math_x1|>", 0.5)])],
        ...                   formula="x1").format())
        loss: no known answer
        <BLANKLINE>
        first generated token
          token             p
          <|math_x1|>  0.5000
        <BLANKLINE>
        greedy generation
          step  token             p  top tokens
             1  <|math_x1|>  0.5000  <|math_x1|> 0.5000
        <BLANKLINE>
        formula: x1
        """
        blocks = []
        if self.loss is None:
            blocks.append(["loss: no known answer"])
        else:
            rows = [(token, f"{nll:.4f}", f"{math.exp(-nll):.4f}")
                    for token, nll in self.token_losses]
            blocks.append([f"loss: {self.loss:.4f} (mean -log p over {len(rows)} answer tokens)",
                           *_table(("token", "-log p", "p"), rows, "<>>")])
        rows = [(token, f"{p:.4f}") for token, p in self.first_token]
        blocks.append(["first generated token", *_table(("token", "p"), rows, "<>")])
        rows = [(str(i), token, f"{p:.4f}", ", ".join(f"{t} {q:.4f}" for t, q in top))
                for i, (token, p, top) in enumerate(self.steps, start=1)]
        blocks.append(["greedy generation",
                       *_table(("step", "token", "p", "top tokens"), rows, "><><")])
        formula = self.formula if self.formula is not None else "none (the tokens do not parse)"
        blocks.append([f"formula: {formula}"])
        return "\n\n".join("\n".join(block) for block in blocks)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Rows indented by two spaces, columns padded to a common width (``<`` left, ``>`` right)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [f"{cell:{side}{width}}" for cell, side, width in zip(row, align, widths,
                                                                     strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def debug_sample(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray, *,
                 prompt: str | None = None, answer: Sequence[str] | None = None,
                 top_k: int = 5, max_new_tokens: int = 32, constrained: bool = False
                 ) -> DebugReport:
    """Loss, first-token distribution and greedy generation of ``model`` on one point set.

    Parameters
    ----------
    model
        A `ChatSRForCausalLM`; it runs in eval mode here (dropout would make the loss and the
        steps disagree with generation) and gets its former mode back.
    processor
        The model's processor (`ChatSRProcessor.for_model`).
    points
        One point set (n, max_dims + 1), rows ``[x1..x_max_dims, y]``
        (`chatsr.model.processing.pack_points` builds one).
    prompt
        The human turn, with one ``<data>``; default: the reference's request.
    answer
        The known formula as preorder tokens (any spelling `Expression.parse` reads); without
        it there is no loss.
    top_k
        How many tokens the first-token and step tables list.
    max_new_tokens
        The most tokens generated, EOS included.
    constrained
        Generate under `chatsr.model.grammar.PreorderGrammar` (at most ``max_new_tokens - 1``
        expression tokens, variables up to the last x column that is not all zero), so that the
        step view shows what the grammar allows.

    Returns
    -------
    DebugReport

    Raises
    ------
    ValueError
        For ``top_k`` or ``max_new_tokens`` out of range, or a point set, prompt or answer the
        processor rejects.
    """
    import torch

    from chatsr.model.processing import DEFAULT_PROMPT
    from chatsr.symbolic.validation import check_integer

    check_integer("top_k", top_k, 1)
    check_integer("max_new_tokens", max_new_tokens, 2 if constrained else 1)
    prompt = DEFAULT_PROMPT if prompt is None else prompt
    tokenizer = processor.tokenizer
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss, token_losses = None, []
            if answer is not None:
                token_losses = _teacher_forced(model, processor, points, prompt, answer)
                loss = sum(nll for _, nll in token_losses) / len(token_losses)
            generated, out = _greedy(model, processor, points, prompt, max_new_tokens,
                                     constrained)
    finally:
        model.train(was_training)
    first = out.logits[0][0].float().softmax(dim=-1)  # (V,) raw, before any grammar
    return DebugReport(loss=loss, token_losses=token_losses,
                       first_token=_top(first, top_k, tokenizer),
                       steps=_steps(generated, out.scores, top_k, tokenizer),
                       formula=_formula(generated, tokenizer))


def _teacher_forced(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray,
                    prompt: str, answer: Sequence[str]) -> list[TokenProbability]:
    """``-log p`` of each answer token (EOS included) with the known answer fed in."""
    batch = _to(processor([points], [prompt], [answer]), next(model.parameters()).device)
    return _token_losses(model(**batch).logits, batch["labels"], processor.tokenizer)


def _greedy(model: ChatSRForCausalLM, processor: ChatSRProcessor, points: np.ndarray,
            prompt: str, max_new_tokens: int, constrained: bool) -> tuple[list[int], Any]:
    """Greedy generation (under the grammar when ``constrained``): the generated ids, and
    ``generate``'s output with the raw logits and the scores greedy chose from."""
    from transformers import LogitsProcessorList

    from chatsr.model.grammar import PreorderGrammar, grammar_token_ids

    tokenizer = processor.tokenizer
    batch = _to(processor([points], [prompt]), next(model.parameters()).device)
    prompt_length = batch["input_ids"].shape[1]
    processors = LogitsProcessorList()
    if constrained:
        processors.append(PreorderGrammar(
            token_ids=grammar_token_ids(tokenizer, max_vars=processor.max_dims),
            eos_token_id=tokenizer.eos_token_id, prompt_length=prompt_length,
            max_length=max_new_tokens - 1, num_variables=_num_variables(points)))
    out = model.generate(**batch, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                         logits_processor=processors, output_scores=True, output_logits=True,
                         return_dict_in_generate=True)
    return out.sequences[0, prompt_length:].tolist(), out


def _steps(generated: list[int], scores: Sequence[torch.Tensor], top_k: int, tokenizer: Any
           ) -> list[tuple[str, float, list[TokenProbability]]]:
    """Per generated token: the token, its probability and the ``top_k`` of its step."""
    steps = []
    for token_id, step_scores in zip(generated, scores, strict=True):
        probabilities = step_scores[0].float().softmax(dim=-1)  # (V,) what greedy chose from
        steps.append((tokenizer.convert_ids_to_tokens(token_id),
                      float(probabilities[token_id]), _top(probabilities, top_k, tokenizer)))
    return steps


def debug_record(model: ChatSRForCausalLM, processor: ChatSRProcessor, record: dict,
                 **options: Any) -> DebugReport:
    """:func:`debug_sample` on a sample in ChatSR's JSON format (`chatsr.data.records`).

    Uses the record's ``data_points``, its human turn as prompt and its ``expression_tokens``
    as answer; ``options`` go to :func:`debug_sample` and may override ``prompt`` and
    ``answer``. Data written for more x columns than the model reads are cut when the extra
    columns are all zero, as unused columns are in ChatSR's format; narrower data are padded.

    Raises
    ------
    ValueError
        When an x column past the model's ``max_dims`` holds a non-zero value.

    Examples
    --------
    >>> from chatsr.data.generator import generate_samples
    >>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
    >>> from chatsr.model.processing import ChatSRProcessor
    >>> from chatsr.model.tokenizer import load_tokenizer
    >>> tok = load_tokenizer()
    >>> model = ChatSRForCausalLM(ChatSRConfig.tiny(tok)).eval()
    >>> record = generate_samples(1, max_vars=1, num_points=20, max_dims=5, progress=False)[0]
    >>> report = debug_record(model, ChatSRProcessor.for_model(tok, model), record,
    ...                       max_new_tokens=4)
    >>> len(report.token_losses) == len(record["expression_tokens"]) + 1  # and EOS
    True
    """
    from chatsr.data.records import sample_xy
    from chatsr.model.processing import pack_points

    X, y = sample_xy(record)
    max_dims = processor.max_dims
    name = record.get("id") or "the record"
    if X.shape[1] > max_dims:
        extra = np.flatnonzero((X[:, max_dims:] != 0).any(axis=0)) + max_dims + 1
        if extra.size:
            raise ValueError(f"{name} has values in x column(s) {extra.tolist()} but the model "
                             f"reads only x1..x{max_dims}")
        logger.info("%s: cut %d all-zero x columns past x%d", name, X.shape[1] - max_dims,
                    max_dims)
        X = X[:, :max_dims]
    human = next((turn["value"] for turn in record.get("conversations", [])
                  if turn.get("from") == "human"), None)
    options = {"prompt": human, "answer": record.get("expression_tokens")} | options
    return debug_sample(model, processor, pack_points(X, y, max_dims), **options)


# helpers ---------------------------------------------------------------------------------------
def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


def _num_variables(points: np.ndarray) -> int:
    """The last x column (1-based) holding a non-zero value: the grammar allows x1 up to it."""
    used = np.flatnonzero((np.asarray(points)[:, :-1] != 0).any(axis=0))
    return int(used[-1]) + 1 if used.size else 0


def _token_losses(logits: torch.Tensor, labels: torch.Tensor, tokenizer: Any
                  ) -> list[TokenProbability]:
    """``-log p`` of each labelled token, read from the logits one position earlier."""
    logits, labels = logits[0, :-1].float(), labels[0, 1:]  # (T-1, V), (T-1,)
    keep = labels >= 0  # (T-1,) the answer and EOS; the prompt is labelled -100
    nll = -logits[keep].log_softmax(dim=-1).gather(1, labels[keep, None])[:, 0]  # (A,)
    tokens = tokenizer.convert_ids_to_tokens(labels[keep].tolist())
    return list(zip(tokens, nll.tolist(), strict=True))


def _top(probabilities: torch.Tensor, k: int, tokenizer: Any) -> list[TokenProbability]:
    """The ``k`` most likely tokens (V,) → (token, p), most likely first; p = 0 left out, so
    that under the grammar only allowed tokens are listed."""
    values, ids = probabilities.topk(min(k, probabilities.shape[-1]))
    return [(tokenizer.convert_ids_to_tokens(i), p)
            for i, p in zip(ids.tolist(), values.tolist(), strict=True) if p > 0]


def _formula(ids: list[int], tokenizer: Any) -> str | None:
    from chatsr.model.processing import answer_tokens
    from chatsr.symbolic.expressions import Expression, ExpressionError

    try:
        return Expression.parse(answer_tokens(ids, tokenizer)).infix()
    except ExpressionError:
        return None
