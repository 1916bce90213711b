"""The model shipped in the package: it loads offline and finds a simple law end to end."""

import numpy as np
import pytest
import torch

from chatsr import ChatSRRegressor, load_pretrained
from chatsr.model.pretrained import DEFAULT_CHECKPOINT, resolve_model
from chatsr.symbolic.metrics import symbolic_recovery


def test_shipped_checkpoint_is_small_and_loads_as_float32():
    size = sum(f.stat().st_size for f in DEFAULT_CHECKPOINT.iterdir())
    assert size < 40 * 2**20
    model, tokenizer = load_pretrained()
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())  # stored as float16
    assert "<|math_sin|>" in tokenizer.get_vocab()
    assert load_pretrained()[0] is model  # loaded once per process
    assert load_pretrained(str(DEFAULT_CHECKPOINT))[0] is model


def test_default_regressor_recovers_a_simple_law():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2.0, 2.0, size=(200, 2))
    y = X[:, 0] ** 2 + X[:, 1]
    # clock-free: the result depends on the seed alone, not on how busy the machine is
    est = ChatSRRegressor(time_budget=None, max_rounds=2, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.999999
    assert symbolic_recovery("x1**2 + x2", est.sympy())


def test_a_missing_model_directory_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        load_pretrained(tmp_path)


def test_resolve_model_loads_folders_and_passes_pairs_through():
    pair = load_pretrained()
    assert resolve_model(None) == pair
    assert resolve_model(DEFAULT_CHECKPOINT)[0] is pair[0]
    assert resolve_model(pair) is pair
