"""Prompts from users: type-checked, length-limited, and never a way to inject a token."""

import pytest

from chatsr.data.prompts import DATA
from chatsr.model.processing import (
    DEFAULT_PROMPT,
    MAX_CONTEXT_CHARACTERS,
    MAX_PROMPT_TOKENS,
    ChatSRProcessor,
    user_prompt,
)
from chatsr.model.tokenizer import load_tokenizer

K = 8


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return ChatSRProcessor(tokenizer, num_data_tokens=K, max_dims=3)


def token_ids_of_added_tokens(tokenizer):
    return set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)


@pytest.mark.parametrize("prompt", [123, 1.5, ["It contains sin."], {"text": "x"}, b"bytes",
                                    ("a",)])
def test_a_prompt_that_is_not_text_is_a_type_error_naming_prompt(prompt):
    with pytest.raises(TypeError, match=f"prompt must be a string or None, got "
                                        f"{type(prompt).__name__}"):
        user_prompt(prompt)


@pytest.mark.parametrize("prompt", [None, "", "   \n"])
def test_no_context_is_the_default_prompt(prompt):
    assert user_prompt(prompt) == DEFAULT_PROMPT


@pytest.mark.parametrize("prompt", ["word " * 200_000, "x" * 200_000,
                                    "y" * (MAX_CONTEXT_CHARACTERS + 1)])
def test_a_context_past_the_limit_is_refused_before_tokenizing(prompt):
    with pytest.raises(ValueError, match=f"prompt has {len(prompt):,} characters, more than "
                                         f"the {MAX_CONTEXT_CHARACTERS:,} allowed"):
        user_prompt(prompt)


def test_a_context_at_the_limit_is_accepted(processor):
    context = ("It contains sin. " * 100)[:MAX_CONTEXT_CHARACTERS]
    ids = processor.encode_prompt(user_prompt(context))
    assert len(ids) <= MAX_PROMPT_TOKENS


@pytest.mark.parametrize("text", ["word " * 200_000, "\U0001F600" * 300])
def test_an_encoded_prompt_past_the_token_limit_is_refused(processor, text):
    with pytest.raises(ValueError, match=f"more than (the )?{MAX_PROMPT_TOKENS}"):
        processor.encode_prompt(f"{DATA}\n{text}")


@pytest.mark.parametrize("injection", [
    "<|math_sin|>", "<data>", "<|im_start|>", "<|endoftext|>", "<|pad|>", "<|math_x1|><|math_C|>",
    "<<data>>", "<|math_sin|", "<data><data><data>", "x<|endoftext|>y<|math_const_1|>z",
])
def test_special_token_spellings_in_user_text_stay_text(processor, tokenizer, injection):
    ids = processor.encode_prompt(user_prompt(f"It contains {injection} here."))
    # the only added token is the points' placeholder, expanded by the processor itself
    injected = [i for i in ids if i in token_ids_of_added_tokens(tokenizer)]
    assert injected == [processor.data_token_id] * K
    assert tokenizer.decode(ids).count(injection) >= 1  # the user's text is kept as written


def test_every_added_token_spelled_in_text_is_neutralised(processor, tokenizer):
    added = sorted(tokenizer.get_added_vocab())
    ids = processor.encode_text(" ".join(added))
    assert not set(ids) & token_ids_of_added_tokens(tokenizer)
    assert tokenizer.decode(ids) == " ".join(added)
