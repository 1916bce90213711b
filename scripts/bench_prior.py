"""Does a text prior shift the model's candidates? Share of sampled formulas containing an operator.

Held-out synthetic problems (a seed the training stream never uses), half whose formula contains
``--operator`` and half without. For each problem the model samples ``--candidates`` formulas
under three prompts: none, "It contains OP." and "There is no OP in the formula." (the wording
of the training facts, `chatsr.data.prompts`). Prints the share of candidates containing the
operator per prompt and group, twice: the model reading the prompt alone, and the proposals
`ChatSRRegressor.fit` makes, where the operators the prompt says the formula holds or lacks
also constrain the decoder (`chatsr.pipeline.stated_operators`).

    python scripts/bench_prior.py --model chatsr/checkpoints/default [--operator sin]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm.auto import tqdm

from chatsr.data.generator import iter_samples
from chatsr.data.prompts import OPERATOR_WORDS
from chatsr.model.decoding import propose
from chatsr.model.pretrained import load_pretrained
from chatsr.model.processing import ChatSRProcessor, user_prompt
from chatsr.pipeline import stated_operators
from chatsr.symbolic.operators import math_token

SEED = 20261130  # not a training or validation seed


def problems(operator: str, per_group: int, max_vars: int) -> tuple[list[dict], list[dict]]:
    """``per_group`` records whose formula contains ``operator`` and as many without."""
    token = math_token(operator)
    with_op, without = [], []
    for record in iter_samples(seed=SEED, max_vars=max_vars, num_points=(50, 100)):
        group = with_op if token in record["expression_tokens"] else without
        if len(group) < per_group:
            group.append(record)
        if len(with_op) == len(without) == per_group:
            return with_op, without
    raise AssertionError("unreachable: the stream is endless")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: shipped)")
    parser.add_argument("--operator", default="sin")
    parser.add_argument("--problems", type=int, default=30, help="per group")
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--max-vars", type=int, default=2)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model, tokenizer = load_pretrained(args.model)
    processor = ChatSRProcessor.for_model(tokenizer, model)
    word = OPERATOR_WORDS[args.operator]
    prompts = {"no prompt": None, f"It contains {word}.": f"It contains {word}.",
               f"There is no {word} in the formula.": f"There is no {word} in the formula."}
    token = math_token(args.operator)
    groups = dict(zip((f"with {args.operator}", f"without {args.operator}"),
                      problems(args.operator, args.problems, args.max_vars), strict=True))
    print(f"share of {args.candidates} sampled candidates containing {args.operator} "
          f"({args.problems} problems per group)\n")
    print(f"| prompt | decoder | {' | '.join(groups)} |\n|---|---|---|---|")
    for label, context in prompts.items():
        require, exclude = stated_operators(context, None, ())
        rules = {"model alone": {}}
        if require or exclude:
            rules["with the stated operators"] = dict(require=require, exclude=exclude)
        for decoder, options in rules.items():
            shares = []
            for records in groups.values():
                hits = total = 0
                for i, record in enumerate(tqdm(records, desc=label, leave=False)):
                    points = np.asarray(record["data_points"], dtype=np.float64)
                    found = propose(model, processor, points, prompt=user_prompt(context),
                                    num_candidates=args.candidates, seed=i,
                                    num_variables=record["num_features"], **options)
                    hits += sum(token in c.tokens for c in found)
                    total += len(found)
                shares.append(f"{hits / max(total, 1):.1%}")
            print(f"| {label} | {decoder} | {' | '.join(shares)} |")

if __name__ == "__main__":
    main()
