"""The ChatSR model: a Set Transformer reads the points, a causal LM writes the formula.

As in LLaVA, the prompt holds ``k`` copies of the ``<data>`` token; the set encoder turns the
point set into ``k`` vectors, a Linear–GELU–Linear projector maps them into the LM's embedding
space, and they replace the placeholders' embeddings (after checking that the counts match).
The LM is any HF causal LM; the default is a small Qwen2 built from a `Qwen2Config`.

>>> from chatsr.model.tokenizer import load_tokenizer
>>> tok = load_tokenizer()
>>> model = ChatSRForCausalLM(ChatSRConfig.tiny(tok))
>>> points = torch.randn(2, 30, model.config.encoder["max_dims"] + 1)
>>> ids = torch.tensor([[tok.convert_tokens_to_ids("<data>")] * model.config.num_data_tokens] * 2)
>>> model(input_ids=ids, points=points).logits.shape[:2]
torch.Size([2, 4])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
)
from transformers.modeling_outputs import CausalLMOutputWithPast

from chatsr.model.set_encoder import SetEncoder, SetEncoderConfig
from chatsr.model.tokenizer import DATA

__all__ = ["ChatSRConfig", "ChatSRForCausalLM", "default_text_config"]


def default_text_config(vocab_size: int, **overrides: Any) -> Qwen2Config:
    """The default language model: a 4-layer, 256-wide Qwen2 (2.4 M parameters + embeddings).

    Sized for CPU training at about 100 samples/s on 2 cores (``scripts/bench_training.py``);
    pass ``overrides`` for another size.
    """
    options = dict(vocab_size=vocab_size, hidden_size=256, intermediate_size=512,
                   num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                   max_position_embeddings=256, tie_word_embeddings=False,
                   rope_theta=10000.0, attention_dropout=0.0)
    options.update(overrides)
    return Qwen2Config(**options)


class ChatSRConfig(PretrainedConfig):
    """Composes the set encoder's config (a dict of `SetEncoderConfig` fields) and the LM's.

    ``data_token_id`` is the id of ``<data>`` in the tokenizer; the number of data tokens per
    prompt is the encoder's ``num_outputs``.
    """

    model_type = "chatsr"
    sub_configs = {"text_config": AutoConfig}

    def __init__(self, encoder: dict[str, Any] | SetEncoderConfig | None = None,
                 text_config: dict[str, Any] | PretrainedConfig | None = None,
                 data_token_id: int | None = None, projector_hidden: int | None = None,
                 bag_loss_weight: float = 0.0, **kwargs: Any):
        if isinstance(encoder, SetEncoderConfig):
            encoder = encoder.to_dict()
        self.encoder = SetEncoderConfig.from_dict(encoder or {}).to_dict()
        if isinstance(text_config, dict):
            kind = text_config.get("model_type", "qwen2")
            text_config = AutoConfig.for_model(kind, **{k: v for k, v in text_config.items()
                                                        if k != "model_type"})
        self.text_config = text_config if text_config is not None else default_text_config(1024)
        self.data_token_id = data_token_id
        self.projector_hidden = projector_hidden or self.text_config.hidden_size
        # > 0 adds a training-only head that predicts, from the encoded points alone, which
        # tokens the answer holds (see ChatSRForCausalLM.bag_loss)
        self.bag_loss_weight = float(bag_loss_weight)
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)

    @property
    def num_data_tokens(self) -> int:
        """How many ``<data>`` placeholders a prompt holds: the encoder's output vectors."""
        return self.encoder["num_outputs"]

    @property
    def max_dims(self) -> int:
        """How many x columns the model reads."""
        return self.encoder["max_dims"]

    @classmethod
    def for_tokenizer(cls, tokenizer: PreTrainedTokenizerBase,
                      encoder: SetEncoderConfig | None = None, **text_overrides: Any
                      ) -> ChatSRConfig:
        """The default model sized for ``tokenizer`` (already extended with the math tokens)."""
        data_id = tokenizer.convert_tokens_to_ids(DATA)
        if data_id is None or data_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {DATA} token: call extend_tokenizer first")
        text = default_text_config(len(tokenizer), **text_overrides)
        text.pad_token_id, text.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
        return cls(encoder=encoder or SetEncoderConfig(), text_config=text, data_token_id=data_id)

    @classmethod
    def tiny(cls, tokenizer: PreTrainedTokenizerBase, max_dims: int = 3) -> ChatSRConfig:
        """A model small enough for tests and doctests (seconds on a CPU)."""
        encoder = SetEncoderConfig(max_dims=max_dims, d_model=32, num_heads=2, num_inducing=4,
                                   num_isab=1, num_outputs=4)
        return cls.for_tokenizer(tokenizer, encoder, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=1)


class ChatSRForCausalLM(PreTrainedModel):
    """Set encoder + projector + causal LM; see the module docstring for how they meet."""

    config_class = ChatSRConfig
    base_model_prefix = "chatsr"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["SetEncoder"]

    def __init__(self, config: ChatSRConfig):
        super().__init__(config)
        self.data_encoder = SetEncoder(SetEncoderConfig.from_dict(config.encoder))
        width = config.text_config.hidden_size
        self.projector = nn.Sequential(  # LLaVA's projector
            nn.Linear(config.encoder["d_model"], config.projector_hidden), nn.GELU(),
            nn.Linear(config.projector_hidden, width))
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.bag_head = (nn.Linear(config.encoder["d_model"], config.text_config.vocab_size)
                         if config.bag_loss_weight > 0 else None)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # HF's N(0, 0.02) suits LM layers, not a set encoder trained from scratch: it shrinks
        # every encoder layer ~10x and the encoded points hardly differ between point sets
        # (logits moved by ~1e-6). The encoder keeps PyTorch's initialisation, as it was built.
        if any(module is m for m in self.data_encoder.modules()) or module is self.bag_head:
            if isinstance(module, nn.Linear | nn.LayerNorm):
                module.reset_parameters()
            return
        super()._init_weights(module)

    # the LM's embeddings are the model's: resize_token_embeddings and extend_tokenizer use them
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def embed(self, input_ids: Tensor, points: Tensor | None = None,
              point_mask: Tensor | None = None, encoded: Tensor | None = None) -> Tensor:
        """Token embeddings (B, T, h) with the ``<data>`` slots replaced by the encoded points
        (``encoded``, the set encoder's (B, k, d) output, if already computed)."""
        embeds = self.get_input_embeddings()(input_ids)  # (B, T, h)
        is_data = input_ids == self.config.data_token_id  # (B, T)
        counts = is_data.sum(dim=1)  # (B,)
        if points is None:
            if counts.any():
                raise ValueError(f"the prompt holds {DATA} tokens but no points were given")
            return embeds
        if points.ndim == 3 and points.shape[0] != input_ids.shape[0]:  # else the encoder says
            raise ValueError(f"got {points.shape[0]} point sets for {input_ids.shape[0]} prompts")
        k = self.config.num_data_tokens
        if (counts != k).any():
            bad = int(torch.nonzero(counts != k)[0, 0])
            raise ValueError(f"prompt {bad} holds {int(counts[bad])} {DATA} tokens but the "
                             f"encoder gives {k} vectors per point set: expand {DATA} to {k} "
                             f"copies (ChatSRProcessor does)")
        if encoded is None:
            encoded = self.data_encoder(points, point_mask)  # (B, k, d)
        data = self.projector(encoded)  # (B, k, h)
        slots = is_data.unsqueeze(-1).expand_as(embeds)  # (B, T, h)
        return embeds.masked_scatter(slots, data.to(embeds.dtype))  # (B, T, h)

    def bag_loss(self, encoded: Tensor, labels: Tensor) -> Tensor:
        """Binary cross-entropy of predicting, from the mean encoded point vector, which
        vocabulary tokens occur in each answer (``labels``, -100 outside the answer).

        An auxiliary loss for training: without it the encoder collapses to one output for
        every point set (the LM lowers its loss faster from the prompt's text), and the model
        ignores the data. It is a direct signal that forces the encoding to carry what the
        formula is made of.
        """
        answer = labels.masked_fill(labels < 0, 0)  # (B, T)
        target = torch.zeros(labels.shape[0], self.bag_head.out_features,
                             device=labels.device)  # (B, V)
        # amax, not a plain scatter: the filler index 0 of non-answer positions must not
        # overwrite a real token 0 (EOS may be one)
        target.scatter_reduce_(1, answer, (labels >= 0).to(target.dtype), reduce="amax")
        logits = self.bag_head(encoded.mean(dim=1)).float()  # (B, V)
        return nn.functional.binary_cross_entropy_with_logits(logits, target)

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                points: Tensor | None = None, point_mask: Tensor | None = None,
                labels: Tensor | None = None, inputs_embeds: Tensor | None = None,
                **kwargs: Any) -> CausalLMOutputWithPast:
        """Logits for every position; with ``labels``, the mean cross-entropy over the labelled
        (answer) tokens, plus in training the weighted `bag_loss` if the config asks for it.
        ``num_items_in_batch`` in ``kwargs`` makes it a sum divided by that number, which is
        how distributed training gets the loss of the combined batch."""
        encoded = None
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("give input_ids (or inputs_embeds)")
            if points is not None:
                encoded = self.data_encoder(points, point_mask)  # (B, k, d)
            inputs_embeds = self.embed(input_ids, points, point_mask, encoded)
        out = self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  labels=labels, **kwargs)
        if self.training and self.bag_head is not None and labels is not None \
                and encoded is not None:
            bag = self.bag_loss(encoded, labels)
            total = kwargs.get("num_items_in_batch")
            if total is not None:  # the LM loss is a share of the batch's: weigh this alike
                bag = bag * (labels[:, 1:] >= 0).sum() / total
            out.loss = out.loss + self.config.bag_loss_weight * bag
        return out

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                 points: Tensor | None = None, point_mask: Tensor | None = None,
                 **kwargs: Any) -> Tensor:
        """Encode the points once, then let the LM's ``generate`` continue the prompt.

        Returns prompt and continuation (B, T + new) as HF's ``generate`` does; every
        ``generate`` keyword (``max_new_tokens``, ``do_sample``, ``num_beams``,
        ``logits_processor`` …) passes through.
        """
        embeds = self.embed(input_ids, points, point_mask)  # (B, T, h)
        kwargs.setdefault("pad_token_id", self.config.text_config.pad_token_id)
        kwargs.setdefault("eos_token_id", self.config.text_config.eos_token_id)
        return self.language_model.generate(input_ids=input_ids, inputs_embeds=embeds,
                                            attention_mask=attention_mask, **kwargs)

    @classmethod
    def from_backbone(cls, backbone: str | Path | PretrainedConfig, *,
                      encoder: SetEncoderConfig | None = None,
                      tokenizer: PreTrainedTokenizerBase | None = None,
                      ) -> tuple[ChatSRForCausalLM, PreTrainedTokenizerBase]:
        """Build a ChatSR model around a local HF causal LM and extend its tokenizer.

        ``backbone`` is a directory holding a causal LM and its tokenizer (e.g. a Qwen2.5
        checkpoint you already have), or a config (a fresh LM; give ``tokenizer`` then).
        Returns the model and the extended tokenizer.
        """
        from chatsr.model.tokenizer import extend_tokenizer

        if isinstance(backbone, PretrainedConfig):
            if tokenizer is None:
                raise ValueError("from_backbone(config) needs tokenizer=")
            lm = AutoModelForCausalLM.from_config(backbone)
        else:
            path = Path(backbone)
            if not path.is_dir():
                raise ValueError(f"backbone must be a local model directory or a config, got "
                                 f"{str(backbone)!r} (no download happens here)")
            lm = AutoModelForCausalLM.from_pretrained(path)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
        extend_tokenizer(tokenizer, lm)
        lm.config.pad_token_id = tokenizer.pad_token_id
        lm.config.eos_token_id = tokenizer.eos_token_id
        config = ChatSRConfig(encoder=encoder or SetEncoderConfig(), text_config=lm.config,
                              data_token_id=tokenizer.convert_tokens_to_ids(DATA))
        model = cls(config)
        model.language_model = lm  # after post_init, which would re-initialise its weights
        return model, tokenizer


AutoConfig.register("chatsr", ChatSRConfig)
AutoModelForCausalLM.register(ChatSRConfig, ChatSRForCausalLM)
