"""Data: ChatSR's sample format with its prompts and facts, the synthetic generator, the
benchmark definitions and the shipped data sets. Built on `chatsr.symbolic`; no torch."""
