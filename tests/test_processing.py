import numpy as np
import pytest
import torch

from chatsr.data.prompts import DATA
from chatsr.model.processing import (
    ANSWER_MARKER,
    DEFAULT_PROMPT,
    IGNORE_INDEX,
    ChatSRProcessor,
    answer_tokens,
    pack_points,
)
from chatsr.model.tokenizer import EOS, load_tokenizer
from chatsr.symbolic.operators import ExpressionError

K, MAX_DIMS = 3, 2
PROMPTS = [f"{DATA}\nFit y.", f"Here: {DATA}\nx1 is a temperature in kelvin. Fit y, please."]
ANSWERS = [["add", "x1", "x2"], ["mul", "C", "sin", "x1"]]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return ChatSRProcessor(tokenizer, num_data_tokens=K, max_dims=MAX_DIMS)


def point_sets(sizes=(4, 6)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, MAX_DIMS + 1)) for n in sizes]


def math_ids(tokenizer, names):
    return tokenizer.convert_tokens_to_ids([f"<|math_{n}|>" for n in names])


def test_pack_points_zero_pads_the_unused_columns():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = np.array([7.0, 8.0, 9.0])
    points = pack_points(X, y, max_dims=4)
    assert points.shape == (3, 5)
    np.testing.assert_array_equal(points[:, :2], X)
    np.testing.assert_array_equal(points[:, 2:4], 0.0)
    np.testing.assert_array_equal(points[:, -1], y)
    # a 1-D X is one column; lists are accepted
    np.testing.assert_array_equal(pack_points([1.0, 2.0], [3.0, 4.0], max_dims=1),
                                  [[1.0, 3.0], [2.0, 4.0]])


@pytest.mark.parametrize("X, y, message", [
    ([[1.0], [2.0], [np.nan]], [1.0, 2.0, 3.0], r"X must be finite, but 1 of its 3 values are "
                                                r"NaN or inf \(first at X\[2, 0\]\)"),
    ([[1.0], [2.0], [3.0]], [1.0, np.inf, -np.inf], r"y must be finite, but 2 of its 3 values "
                                                    r"are NaN or inf \(first at y\[1\]\)"),
    ([[1.0], [2.0], [3.0]], [1.0, 2.0], "X has 3 rows but y has 2 values"),
    (np.zeros((0, 1)), np.zeros(0), r"X must hold at least 1 point, got shape \(0, 1\)"),
    (np.ones((2, 3)), np.ones(2), "X has 3 columns but the model reads at most 2"),
    (np.ones((2, 1, 1)), np.ones(2), r"X must be a 2-D array of shape \(n, d\), got shape "
                                     r"\(2, 1, 1\)"),
    (np.ones((2, 1)), np.ones((2, 1)), r"y must be a 1-D array of shape \(n,\), got shape "
                                       r"\(2, 1\)"),
    ([["a"], ["b"]], [1.0, 2.0], "X must be an array of numbers"),
])
def test_pack_points_names_what_is_wrong(X, y, message):
    with pytest.raises(ValueError, match=message):
        pack_points(np.asarray(X), np.asarray(y), max_dims=2)


def test_data_token_is_expanded_to_k_adjacent_copies(processor, tokenizer):
    batch = processor(point_sets(), PROMPTS)
    data_id = tokenizer.convert_tokens_to_ids(DATA)
    for row in batch["input_ids"]:
        where = torch.nonzero(row == data_id).flatten()
        assert where.tolist() == list(range(int(where[0]), int(where[0]) + K))
    # the text around <data> is kept, in order
    ids = processor.encode_prompt(PROMPTS[1])
    assert tokenizer.decode(ids) == PROMPTS[1].replace(DATA, DATA * K) + ANSWER_MARKER


def test_a_prompt_needs_a_data_token(processor):
    with pytest.raises(ValueError, match="prompt must contain <data>, where the points go"):
        processor(point_sets((3,)), ["Fit y."])


def test_only_the_first_data_token_takes_the_points(processor, tokenizer):
    ids = processor.encode_prompt(f"{DATA} and {DATA}")
    assert ids.count(processor.data_token_id) == K
    assert tokenizer.decode(ids) == DATA * K + f" and {DATA}" + ANSWER_MARKER


@pytest.mark.parametrize("prompt", [[1, 2, 3], 123, {"a": 1}, None])
def test_a_prompt_must_be_text(processor, prompt):
    with pytest.raises(TypeError, match=f"prompt must be a string, got {type(prompt).__name__}"):
        processor.encode_prompt(prompt)


def test_labels_cover_only_the_answer_and_eos(processor, tokenizer):
    batch = processor(point_sets(), PROMPTS, ANSWERS)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == mask.shape
    for i, answer in enumerate(ANSWERS):
        expected = math_ids(tokenizer, answer) + [tokenizer.eos_token_id]
        length = int(mask[i].sum())
        # right padding: the sequence is the first `length` tokens, the answer its last ones
        assert labels[i, length - len(expected):length].tolist() == expected
        assert ids[i, length - len(expected):length].tolist() == expected
        assert (labels[i, :length - len(expected)] == IGNORE_INDEX).all()
        assert (labels[i, length:] == IGNORE_INDEX).all()
    assert answer_tokens(ids[0][labels[0] != IGNORE_INDEX], tokenizer) == \
        [f"<|math_{n}|>" for n in ANSWERS[0]]


def test_without_answers_there_are_no_labels(processor):
    batch = processor(point_sets(), PROMPTS)
    assert set(batch) == {"input_ids", "attention_mask", "points", "point_mask"}


def test_the_default_prompt_is_the_reference_request(processor):
    batch = processor(point_sets())
    expected = processor.encode_prompt(DEFAULT_PROMPT)
    assert batch["input_ids"].tolist() == [expected, expected]


def test_right_and_left_padding(processor, tokenizer):
    right = processor(point_sets(), PROMPTS, padding_side="right")
    left = processor(point_sets(), PROMPTS, padding_side="left")
    marker = tokenizer.encode(ANSWER_MARKER, add_special_tokens=False)
    lengths = right["attention_mask"].sum(dim=1)
    assert lengths[0] < lengths[1]  # the first prompt is the shorter one: it gets padding
    assert torch.equal(left["attention_mask"].sum(dim=1), lengths)
    T = right["input_ids"].shape[1]
    for i, n in enumerate(lengths.tolist()):
        assert right["attention_mask"][i].tolist() == [1] * n + [0] * (T - n)
        assert left["attention_mask"][i].tolist() == [0] * (T - n) + [1] * n
        assert (right["input_ids"][i, n:] == tokenizer.pad_token_id).all()
        assert (left["input_ids"][i, :T - n] == tokenizer.pad_token_id).all()
        assert torch.equal(left["input_ids"][i, T - n:], right["input_ids"][i, :n])
        # left padding: every prompt ends with the answer marker, where generation starts
        assert left["input_ids"][i, -len(marker):].tolist() == marker


def test_left_padded_labels_follow_their_tokens(processor):
    right = processor(point_sets(), PROMPTS, ANSWERS)
    left = processor(point_sets(), PROMPTS, ANSWERS, padding_side="left")
    for i in range(len(PROMPTS)):
        r = right["labels"][i][right["attention_mask"][i] == 1]
        assert torch.equal(left["labels"][i][left["attention_mask"][i] == 1], r)


def test_point_sets_are_padded_with_a_false_mask(processor):
    sets = point_sets((2, 5))
    batch = processor(sets, PROMPTS)
    points, mask = batch["points"], batch["point_mask"]
    assert points.shape == (2, 5, MAX_DIMS + 1) and points.dtype == torch.float32
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, True, False, False, False], [True] * 5]
    np.testing.assert_allclose(points[0, :2].numpy(), sets[0], rtol=1e-6)
    np.testing.assert_allclose(points[1].numpy(), sets[1], rtol=1e-6)
    assert (points[0, 2:] == 0).all()


@pytest.mark.parametrize("bad, message", [
    (np.ones((3, MAX_DIMS)), r"points\[1\] must be a 2-D array of shape \(n, 3\), got shape "
                             r"\(3, 2\); rows are \[x1..x2, y\].*pack_points"),
    (np.ones(3), r"points\[1\] must be a 2-D array .* got shape \(3,\)"),
    (np.ones((0, MAX_DIMS + 1)), r"points\[1\] must hold at least 1 point"),
    (np.array([[1.0, 2.0, np.nan]]), r"points\[1\] must be finite.*NaN or inf"),
])
def test_bad_point_sets_are_rejected(processor, bad, message):
    with pytest.raises(ValueError, match=message):
        processor([point_sets((3,))[0], bad], PROMPTS)


def test_every_spelling_of_an_answer_gives_the_same_ids(processor, tokenizer):
    spellings = [["add", "x1", "mul", "C", "pow", "x2", "const_2"],
                 ["+", "x1", "*", "C", "^", "x2", "const_2"],
                 ["<|math_add|>", "<|math_x1|>", "<|math_mul|>", "<|math_C|>", "<|math_pow|>",
                  "<|math_x2|>", "<|math_const_2|>"]]
    ids = [processor.encode_answer(s) for s in spellings]
    assert ids[0] == ids[1] == ids[2]
    assert ids[0] == math_ids(tokenizer, spellings[0]) + [tokenizer.eos_token_id]


@pytest.mark.parametrize("answer, message", [
    (["add", "x1"], "truncated preorder"),
    (["add", "x1", "x2", "x3"], "trailing token"),
    (["frobnicate", "x1"], "unknown token 'frobnicate'"),
])
def test_a_malformed_answer_raises_an_expression_error(processor, answer, message):
    with pytest.raises(ExpressionError, match=message):
        processor(point_sets((3,)), PROMPTS[:1], [answer])
    assert issubclass(ExpressionError, ValueError)


def test_an_answer_the_tokenizer_cannot_spell_is_rejected(processor):
    with pytest.raises(ValueError, match=r"tokenizer lacks \['<\|math_x11\|>'\].*max_vars"):
        processor.encode_answer(["add", "x1", "x11"])


@pytest.mark.parametrize("num_prompts, answers", [(1, None), (3, None), (2, ANSWERS[:1]),
                                                  (2, ANSWERS * 2)])
def test_one_prompt_and_one_answer_per_point_set(processor, num_prompts, answers):
    prompts = (PROMPTS * 2)[:num_prompts]
    with pytest.raises(ValueError, match=f"got 2 point sets, {num_prompts} prompts"):
        processor(point_sets(), prompts, answers)


def test_answer_tokens_keeps_math_tokens_up_to_eos(tokenizer):
    text = tokenizer.encode(" so y is", add_special_tokens=False)
    ids = (text + math_ids(tokenizer, ["add", "x1"]) + text + math_ids(tokenizer, ["C"])
           + [tokenizer.eos_token_id] + math_ids(tokenizer, ["sin", "x2"])
           + [tokenizer.pad_token_id])
    assert answer_tokens(ids, tokenizer) == ["<|math_add|>", "<|math_x1|>", "<|math_C|>"]
    assert answer_tokens(torch.tensor(ids), tokenizer) == answer_tokens(ids, tokenizer)
    assert answer_tokens(tokenizer.convert_tokens_to_ids([EOS, "<|math_x1|>"]), tokenizer) == []
    assert answer_tokens([], tokenizer) == []


def test_for_model_reads_k_and_max_dims_from_the_config(tokenizer):
    class Config:
        num_data_tokens, max_dims = 5, 7

    class Model(torch.nn.Module):
        config = Config()

    proc = ChatSRProcessor.for_model(tokenizer, Model())
    assert (proc.num_data_tokens, proc.max_dims) == (5, 7)
    batch = proc([np.ones((2, 8))], [DATA])
    assert int((batch["input_ids"] == tokenizer.convert_tokens_to_ids(DATA)).sum()) == 5
