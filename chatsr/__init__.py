"""chatsr: discover mathematical formulas from scientific data with a multimodal language model.

>>> from chatsr import ChatSRRegressor, load_dataset
>>> X, y = load_dataset("kepler")
>>> ChatSRRegressor(time_budget=5, random_state=0).fit(X, y).sympy()  # doctest: +SKIP
"""

from importlib import import_module
from typing import Any

from chatsr.symbolic.expressions import Expression, ExpressionError
from chatsr.symbolic.operators import OPERATORS, math_tokens

__all__ = ["OPERATORS", "ChatSRRegressor", "Expression", "ExpressionError", "load_dataset",
           "load_pretrained", "math_tokens"]
__version__ = "0.1.0"

# torch and transformers load on first use, so that `import chatsr` and `chatsr --help` are quick
_LAZY = {"ChatSRRegressor": "chatsr.estimator", "load_pretrained": "chatsr.model.pretrained",
         "load_dataset": "chatsr.data.datasets"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chatsr' has no attribute {name!r}")
