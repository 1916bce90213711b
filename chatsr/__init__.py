"""chatsr: discover mathematical formulas from scientific data with a multimodal language model."""

from .expressions import Expression, ExpressionError
from .operators import OPERATORS, math_tokens

__all__ = ["OPERATORS", "Expression", "ExpressionError", "math_tokens"]
__version__ = "0.1.0"
