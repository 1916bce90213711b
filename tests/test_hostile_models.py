"""Model folders that cannot be used: each a clear error naming the path and the problem, and
pickled weights are refused, never unpickled."""

import pickle
import shutil

import pytest

from chatsr.model.pretrained import DEFAULT_CHECKPOINT, load_pretrained, resolve_model

TOKENIZER = ("tokenizer.json", "tokenizer_config.json")


def folder(tmp_path, files, written=None):
    """A model folder with ``files`` copied from the shipped model and ``written`` ones
    (name: text or bytes)."""
    path = tmp_path / "model"
    path.mkdir()
    for name in files:
        shutil.copy(DEFAULT_CHECKPOINT / name, path / name)
    for name, content in (written or {}).items():
        if isinstance(content, bytes):
            (path / name).write_bytes(content)
        else:
            (path / name).write_text(content)
    return path


class CreatesAFile:
    """Unpickling this opens (so creates) ``self.path``: the proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def weights_prefix(fraction):
    data = (DEFAULT_CHECKPOINT / "model.safetensors").read_bytes()
    return data[:int(len(data) * fraction)]


@pytest.mark.parametrize("files, written, error, message", [
    (("config.json",), {}, FileNotFoundError, "no model.safetensors in the chatsr model folder"),
    (("model.safetensors", *TOKENIZER), {}, FileNotFoundError, r"config.json missing"),
    (("model.safetensors", *TOKENIZER), {"config.json": "{garbage"}, ValueError,
     r"config.json is not a JSON file"),
    (("model.safetensors", *TOKENIZER), {"config.json": "[1, 2]"}, ValueError,
     r"config.json must hold a JSON object, got a list"),
    (("model.safetensors", *TOKENIZER), {"config.json": '{"model_type": "bert"}'}, ValueError,
     r"config.json is not a chatsr model's config: model_type must be 'chatsr', got 'bert'"),
    (("model.safetensors", *TOKENIZER), {"config.json": '{"model_type": "chatsr"}'},
     ValueError, r"model.safetensors does not fit the model config.json describes: 2 of "
                 r"another shape"),
    (("model.safetensors", *TOKENIZER),
     {"config.json": '{"model_type": "chatsr", "encoder": {"colour": 3}}'}, ValueError,
     r"config.json is not a valid chatsr model config"),
    (("config.json", *TOKENIZER), {"model.safetensors": b"\x00" * 100}, ValueError,
     r"model.safetensors is not a readable safetensors file \(corrupt or truncated"),
    (("config.json", *TOKENIZER), {"model.safetensors": weights_prefix(0.5)}, ValueError,
     r"model.safetensors is not a readable safetensors file"),
    (("config.json", *TOKENIZER), {"model.safetensors": b""}, ValueError,
     r"model.safetensors is not a readable safetensors file"),
    (("config.json", "model.safetensors"), {}, ValueError, r"no usable tokenizer in the chatsr "
                                                           r"model folder"),
    (("config.json", "model.safetensors"), {"tokenizer.json": "zzz"}, ValueError,
     r"no usable tokenizer"),
])
def test_an_unusable_model_folder_names_the_path_and_the_problem(tmp_path, files, written,
                                                                 error, message):
    path = folder(tmp_path, files, written)
    with pytest.raises(error, match=message) as info:
        load_pretrained(path)
    assert str(path) in str(info.value)


def test_pickled_weights_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "code-ran"
    path = folder(tmp_path, ("config.json", *TOKENIZER),
                  {"pytorch_model.bin": pickle.dumps(CreatesAFile(marker))})
    with pytest.raises(ValueError, match=r"weights only as pytorch_model.bin, a pickle format "
                                         r"that chatsr never loads .* model.safetensors is "
                                         r"required"):
        load_pretrained(path)
    assert not marker.exists()
    pickle.loads((path / "pytorch_model.bin").read_bytes()).close()  # the payload is live
    assert marker.exists()


def test_a_pickle_beside_safetensors_weights_is_ignored(tmp_path):
    marker = tmp_path / "code-ran"
    path = folder(tmp_path, ("config.json", "model.safetensors", *TOKENIZER),
                  {"pytorch_model.bin": pickle.dumps(CreatesAFile(marker))})
    model, tokenizer = load_pretrained(path)
    assert model.config.num_data_tokens > 0 and "<data>" in tokenizer.get_vocab()
    assert not marker.exists()


def test_a_missing_path_and_a_file_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no chatsr model folder .*nowhere: it does "
                                                r"not exist"):
        load_pretrained(tmp_path / "nowhere")
    file = tmp_path / "weights.txt"
    file.write_text("x")
    with pytest.raises(ValueError, match=r"weights.txt is a file, not a chatsr model folder"):
        load_pretrained(file)
    with pytest.raises(TypeError, match="path must be a model folder"):
        load_pretrained(3.5)


@pytest.mark.parametrize("model", [("a", "b"), 123, ["model", "tokenizer"], ("a",), 1.5,
                                   {"path": "x"}, (None, None)])
def test_resolve_model_rejects_what_is_no_model(model):
    with pytest.raises(TypeError, match=rf"model must be None .* got {type(model).__name__}: "):
        resolve_model(model)
