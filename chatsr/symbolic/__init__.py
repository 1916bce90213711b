"""Formulas as symbols: operators and math tokens, expressions, the one evaluator, skeletons,
simplification, constant fitting and metrics. numpy, scipy and sympy only: never torch."""
