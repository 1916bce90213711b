"""The model: set encoder, configuration and model, tokenizer, processing, the preorder grammar,
decoding, and loading the shipped checkpoint."""
