"""Training: one loop for one CPU, several processes of one machine, or a GPU cluster.

``chatsr train`` (or ``torchrun --nproc_per_node N -m chatsr.cli train``) runs `train`. Under
torchrun, the model is sharded with FSDP2 (`chatsr.training.distributed`); the global batch is split
between the ranks, and the loss is the sum over the global batch's answer tokens divided by
their number, so a run on ``W`` processes takes the same steps as one process would on the
same combined batches. Several machines: the same command with torchrun's rendezvous flags
(``--nnodes 2 --rdzv-backend c10d --rdzv-endpoint HOST:29400``), on a shared file system.

What a step is: AdamW with one learning rate per part (set encoder, projector, LM), linear
warm-up then cosine decay, gradient clipping. Every ``eval_every`` steps: validation loss and
the share of greedy answers that parse. Every ``save_every`` steps (and, with
``save_minutes``, whenever that much wall time has passed since the last one) a checkpoint
(``checkpoint-<step>``: model, tokenizer, optimizer, scheduler, history); a run restarted with
the same ``output_dir`` resumes from the last one with nothing lost: the data position is the
step (`chatsr.training.streams`), and the random state is re-seeded from (seed, step, rank)
every step.

Two-phase training: ``init_from`` starts from a trained model (default learning rate 1e-4
instead of 1e-3) and ``freeze`` keeps parts fixed while fine-tuning on a small domain set.

>>> import tempfile
>>> config = TrainingConfig(output_dir=tempfile.mkdtemp(), max_steps=2, batch_size=4,
...     micro_batch_size=4, model={"tiny": True}, generator={"max_vars": 1,
...     "num_points": (10, 20)}, eval_every=0, save_every=0, progress=False)
>>> history = train(config)
>>> [row["step"] for row in history if "loss" in row]
[1, 2]
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer, get_cosine_schedule_with_warmup

from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
from chatsr.model.processing import IGNORE_INDEX, ChatSRProcessor, answer_tokens
from chatsr.model.set_encoder import SetEncoderConfig
from chatsr.model.tokenizer import load_tokenizer
from chatsr.symbolic.expressions import Expression
from chatsr.symbolic.operators import ExpressionError
from chatsr.training import distributed as dist_utils
from chatsr.training.distributed import Context
from chatsr.training.streams import TrainingBatches, open_source

__all__ = ["DEFAULT_LR", "FINETUNE_LR", "TrainingConfig", "build_model", "train"]

logger = logging.getLogger(__name__)

DEFAULT_LR = 1e-3  # fresh models: small, and trained from scratch
FINETUNE_LR = 1e-4  # init_from: adapt without forgetting what pre-training taught
Part = Literal["encoder", "projector", "lm", "embeddings"]
PARTS = ("encoder", "projector", "lm", "embeddings")
PRECISIONS = ("float32", "bf16")


@dataclass
class TrainingConfig:
    """Everything a training run needs; every field is also a ``chatsr train`` option."""

    output_dir: str = "runs/chatsr"  # checkpoints, final model, history, loss curve
    train_file: str | None = None  # samples file from `chatsr generate`; None: generate on the fly
    val_file: str | None = None  # None: a generator stream with another seed
    generator: dict[str, Any] = field(  # GeneratorConfig options for on-the-fly data
        default_factory=lambda: {"max_vars": 3, "num_points": (10, 200), "fact_prob": 0.5})
    init_from: str | None = None  # a trained model directory to fine-tune
    model: dict[str, Any] = field(default_factory=dict)  # {"encoder": {...}, "text": {...}}
    freeze: tuple[str, ...] = ()  # parts kept fixed: encoder, projector, lm, embeddings
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 64  # global samples per step, split between processes
    micro_batch_size: int = 16  # samples per forward pass (sorted by length: less padding)
    max_points: int = 100  # points per sample seen in training (a seeded random subset)
    sparse_prob: float = 0.0  # share of training samples cut to 2 points: the prompt must tell
    lr: float | None = None  # LM learning rate; None: DEFAULT_LR, or FINETUNE_LR with init_from
    encoder_lr: float | None = None  # set encoder; None: lr
    projector_lr: float | None = None  # projector; None: lr
    weight_decay: float = 0.01  # AdamW, on matrices only (not biases, norms, embeddings)
    warmup_ratio: float = 0.03  # share of max_steps with a linear warm-up
    max_grad_norm: float = 1.0  # gradient clipping
    eval_every: int = 200  # steps between evaluations; 0: never
    eval_samples: int = 64  # validation samples per evaluation
    eval_max_new_tokens: int = 32  # greedy answers are cut here
    save_every: int = 500  # steps between checkpoints; 0: only the final model
    save_minutes: float = 0.0  # also a checkpoint once this much time passed; 0: by steps only
    save_total_limit: int = 2  # checkpoints kept
    log_every: int = 10  # steps between log lines
    seed: int = 0  # initialisation, data order, point subsets, dropout
    resume: bool = True  # continue from the last checkpoint in output_dir, if any
    precision: str = "float32"  # "bf16": forward passes under bfloat16 autocast (AVX512-BF16)
    progress: bool = True  # a progress bar on rank 0

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "micro_batch_size", "max_points",
                     "eval_samples", "eval_max_new_tokens", "save_total_limit", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got "
                                 f"{getattr(self, name)!r}")
        unknown = set(self.freeze) - set(PARTS)
        if unknown:
            raise ValueError(f"freeze accepts {', '.join(PARTS)}; got {sorted(unknown)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.sparse_prob < 1:
            raise ValueError(f"sparse_prob must be in [0, 1), got {self.sparse_prob!r}")
        if not self.save_minutes >= 0:
            raise ValueError(f"save_minutes must be >= 0, got {self.save_minutes!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                             f"{self.precision!r}")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return FINETUNE_LR if self.init_from else DEFAULT_LR

    @classmethod
    def from_json(cls, path: str | Path, **overrides: Any) -> TrainingConfig:
        """A config from a JSON file of field values, with ``overrides`` on top."""
        values = json.loads(Path(path).read_text())
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown training options {sorted(unknown)}")
        return cls(**(values | overrides))


def build_model(options: dict[str, Any] | None = None, *, seed: int = 0
                ) -> tuple[ChatSRForCausalLM, Any]:
    """A fresh model and the shipped tokenizer. ``options``: ``{"tiny": True}`` for tests, or
    ``{"encoder": {SetEncoderConfig fields}, "text": {Qwen2Config fields}, "bag_loss_weight": w}``
    (see `ChatSRForCausalLM.bag_loss`)."""
    options = dict(options or {})
    tokenizer = load_tokenizer()
    torch.manual_seed(seed)  # every rank builds the same initial weights
    if options.pop("tiny", False):
        config = ChatSRConfig.tiny(tokenizer)
    else:
        encoder = SetEncoderConfig(**options.pop("encoder", {}))
        config = ChatSRConfig.for_tokenizer(tokenizer, encoder, **options.pop("text", {}))
    config.bag_loss_weight = float(options.pop("bag_loss_weight", 0.0))
    if options:
        raise ValueError(f"unknown model options {sorted(options)}: use encoder, text, "
                         f"bag_loss_weight or tiny")
    return ChatSRForCausalLM(config), tokenizer


def _part_modules(model: ChatSRForCausalLM) -> dict[str, list[nn.Module]]:
    lm = model.language_model
    return {"encoder": [model.data_encoder], "projector": [model.projector], "lm": [lm],
            "embeddings": [lm.get_input_embeddings(), lm.get_output_embeddings()]}


def _param_groups(model: ChatSRForCausalLM, config: TrainingConfig) -> list[dict[str, Any]]:
    lr = config.learning_rate
    rates = {"encoder": config.encoder_lr or lr, "projector": config.projector_lr or lr,
             "lm": lr}
    no_decay = {id(p) for m in _part_modules(model)["embeddings"] for p in m.parameters()}
    groups = []
    for part, modules in _part_modules(model).items():
        if part == "embeddings":
            continue
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2 and id(p) not in no_decay]
        rest = [p for p in params if p.ndim < 2 or id(p) in no_decay]
        groups += [{"params": decay, "lr": rates[part], "weight_decay": config.weight_decay,
                    "name": f"{part}"},
                   {"params": rest, "lr": rates[part], "weight_decay": 0.0,
                    "name": f"{part}_no_decay"}]
    return [g for g in groups if g["params"]]


def _latest_checkpoint(output_dir: Path) -> Path | None:
    """The saved state with the most steps: a ``checkpoint-<step>`` or a finished run."""
    saved = [p for p in [*output_dir.glob("checkpoint-*"), output_dir]
             if (p / "trainer_state.json").exists()]
    steps = {p: json.loads((p / "trainer_state.json").read_text())["step"] for p in saved}
    return max(saved, key=steps.get) if saved else None


def _load(config: TrainingConfig, checkpoint: Path | None) -> tuple[ChatSRForCausalLM, Any]:
    source = checkpoint or (Path(config.init_from) if config.init_from else None)
    if source is None:
        return build_model(config.model, seed=config.seed)
    if not (source / "config.json").exists():
        raise ValueError(f"{source} is not a chatsr model directory (no config.json)")
    # float32 whatever the saved dtype: the shipped model is stored in float16, in which
    # AdamW's eps underflows (NaN after one step) and CPU matmuls are slow
    model = ChatSRForCausalLM.from_pretrained(source, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source)
    return model, tokenizer


class _Run:
    """The state of one training run on this rank."""

    def __init__(self, config: TrainingConfig, context: Context):
        self.config, self.context = config, context
        self.out = Path(config.output_dir)
        checkpoint = _latest_checkpoint(self.out) if config.resume else None
        model, self.tokenizer = _load(config, checkpoint)
        for part in config.freeze:
            for module in _part_modules(model)[part]:
                module.requires_grad_(False)
        self.processor = ChatSRProcessor.for_model(self.tokenizer, model)
        model.to(context.device)
        self.model = dist_utils.shard_model(model, context)
        self.optimizer = torch.optim.AdamW(_param_groups(model, config), betas=(0.9, 0.95))
        warmup = math.ceil(config.warmup_ratio * config.max_steps)
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, warmup,
                                                         config.max_steps)
        self.history: list[dict[str, Any]] = []
        self.step = 0
        if checkpoint is not None:
            self._resume(checkpoint)
        share = dict(rank=context.rank, world_size=context.world_size, seed=config.seed,
                     max_points=config.max_points, micro_batch_size=config.micro_batch_size)
        self.batches = TrainingBatches(
            open_source(config.train_file, seed=config.seed, generator=config.generator),
            self.processor, batch_size=config.batch_size, sparse_prob=config.sparse_prob,
            **share)
        self.val_batches = TrainingBatches(
            open_source(config.val_file, seed=config.seed + 1, generator=config.generator),
            self.processor, batch_size=config.eval_samples, **share)

    def _resume(self, checkpoint: Path) -> None:
        # a checkpoint folder is data: tensors and plain containers only, never pickled code
        path = checkpoint / "optimizer.pt"
        try:
            state = torch.load(path, weights_only=True)
        except pickle.UnpicklingError as error:  # torch's "Weights only load failed"
            raise ValueError(
                f"{path} holds more than tensors and plain containers (torch refused it with "
                f"weights_only=True: {str(error).splitlines()[0]}); chatsr does not run code "
                f"from a checkpoint. Resume from a checkpoint chatsr wrote, or start afresh "
                f"with resume=False (--no-resume)") from None
        dist_utils.load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        saved = json.loads((checkpoint / "trainer_state.json").read_text())
        self.step, self.history = saved["step"], saved["history"]
        logger.info("resumed from %s at step %d", checkpoint, self.step)

    def _autocast(self) -> torch.autocast:
        """bfloat16 matmuls where the config asks for them; weights and AdamW stay float32."""
        return torch.autocast(self.context.device.type, dtype=torch.bfloat16,
                              enabled=self.config.precision == "bf16")

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.context.device) for k, v in batch.items()}

    def _loss(self, micro_batches: list[dict[str, torch.Tensor]], *, backward: bool
              ) -> torch.Tensor:
        """The global batch's mean loss per answer token; with ``backward``, its gradients."""
        tokens = sum((b["labels"][:, 1:] != IGNORE_INDEX).sum() for b in micro_batches)
        total = dist_utils.all_reduce_sum(torch.as_tensor(tokens, dtype=torch.float32),
                                          self.context)
        # FSDP averages gradients over ranks, so each rank's share is scaled up by world_size
        per_rank = total.to(self.context.device) / self.context.world_size
        loss = torch.zeros((), device=self.context.device)
        for i, batch in enumerate(micro_batches):
            if backward and self.context.distributed:  # reduce gradients once, after the last
                self.model.set_requires_gradient_sync(i == len(micro_batches) - 1)
            with self._autocast():
                out = self.model(**self._to_device(batch), num_items_in_batch=per_rank)
            if backward:
                out.loss.backward()
            loss += out.loss.detach()
        return dist_utils.all_reduce_sum(loss, self.context) / self.context.world_size

    def train_step(self) -> dict[str, Any]:
        config = self.config
        torch.manual_seed(hash((config.seed, self.step, self.context.rank)) % 2**63)
        start = time.perf_counter()
        self.model.train()
        loss = self._loss(self.batches(self.step), backward=True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        seconds = time.perf_counter() - start
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        return {"step": self.step, "samples": self.step * config.batch_size,
                "loss": float(loss), "grad_norm": float(norm),
                "lr": self.scheduler.get_last_lr()[-1],
                "samples_per_s": config.batch_size / seconds}

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Validation loss, its rise when the answers meet other samples' points
        (``data_gain``), and the share of greedy answers that parse into a formula."""
        self.model.eval()
        micro = self.val_batches(0)
        loss = self._loss(micro, backward=False)
        # the same answers with each micro-batch's point sets rotated by one: how much the
        # model reads the data (0 when the encoder is ignored or has collapsed)
        shuffled = self._loss([b | {k: b[k].roll(1, dims=0) for k in ("points", "point_mask")}
                               for b in micro], backward=False)
        records = [self.val_batches.source[i] for i in self.val_batches.indices(0)]
        prompts = self.processor([self.val_batches.points(r, i) for r, i in
                                  zip(records, self.val_batches.indices(0), strict=True)],
                                 [r["conversations"][0]["value"] for r in records],
                                 padding_side="left")
        generated = self.model.generate(**self._to_device(prompts), do_sample=False,
                                         max_new_tokens=self.config.eval_max_new_tokens,
                                         synced_gpus=self.context.distributed)
        parsed = 0
        for row in generated[:, prompts["input_ids"].shape[1]:].tolist():
            try:
                Expression.parse(answer_tokens(row, self.tokenizer))
                parsed += 1
            except ExpressionError:
                pass
        counts = dist_utils.all_reduce_sum(torch.tensor([parsed, len(records)]), self.context)
        return {"step": self.step, "val_loss": float(loss),
                "data_gain": float(shuffled - loss), "parse_rate": float(counts[0] / counts[1])}

    def save(self, directory: Path) -> None:
        """Model, tokenizer, optimizer, scheduler and history under ``directory`` (rank 0
        writes; every rank takes part in gathering the shards)."""
        model_state = dist_utils.full_model_state(self.model)
        optimizer_state = dist_utils.full_optimizer_state(self.model, self.optimizer)
        if self.context.is_main:
            directory.mkdir(parents=True, exist_ok=True)
            self.model.save_pretrained(directory, state_dict=model_state)
            self.tokenizer.save_pretrained(directory)
            torch.save({"optimizer": optimizer_state, "scheduler": self.scheduler.state_dict()},
                       directory / "optimizer.pt")
            state = {"step": self.step, "history": self.history,
                     "config": asdict(self.config), "world_size": self.context.world_size}
            # written last and atomically: its presence marks a complete checkpoint
            partial = directory / "trainer_state.json.partial"
            partial.write_text(json.dumps(state, indent=1))
            partial.replace(directory / "trainer_state.json")
            plot_history(self.history, self.out / "loss_curve.png")
        if self.context.distributed:
            torch.distributed.barrier()

    def prune_checkpoints(self) -> None:
        checkpoints = sorted(self.out.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))
        for old in checkpoints[:-self.config.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)


def train(config: TrainingConfig) -> list[dict[str, Any]]:
    """Run (or resume) training; returns the history of logged steps and evaluations.

    The final model, its tokenizer, ``trainer_state.json`` and ``loss_curve.png`` are written
    to ``config.output_dir``; load the model with ``ChatSRForCausalLM.from_pretrained``.
    """
    context = dist_utils.setup()
    try:
        run = _Run(config, context)
        bar = tqdm(total=config.max_steps, initial=run.step, unit="step", desc="train",
                   disable=not (config.progress and context.is_main))
        last_save = time.monotonic()
        while run.step < config.max_steps:
            row = run.train_step()
            run.history.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", samples_s=f"{row['samples_per_s']:.0f}")
            if context.is_main and (run.step % config.log_every == 0 or run.step == 1):
                logger.info("step %d  loss %.4f  lr %.2e  %.0f samples/s", run.step,
                            row["loss"], row["lr"], row["samples_per_s"])
            if config.eval_every and run.step % config.eval_every == 0:
                run.history.append(run.evaluate())
                if context.is_main:
                    logger.info("step %d  validation %s", run.step, run.history[-1])
            if run.step < config.max_steps and (
                    config.save_every and run.step % config.save_every == 0
                    or _time_to_save(config, last_save, context)):
                run.save(run.out / f"checkpoint-{run.step}")
                last_save = time.monotonic()
                if context.is_main:
                    run.prune_checkpoints()
        bar.close()
        run.save(run.out)
        return run.history
    finally:
        dist_utils.teardown(context)


def _time_to_save(config: TrainingConfig, last_save: float, context: Context) -> bool:
    """Whether ``save_minutes`` have passed since the last checkpoint; when any rank is due,
    all of them save, since they gather the shards together."""
    if not config.save_minutes:
        return False
    due = time.monotonic() - last_save >= 60 * config.save_minutes
    flag = torch.tensor(float(due), device=context.device)
    return bool(dist_utils.all_reduce_sum(flag, context) > 0)


def plot_history(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Training and validation loss against samples seen, as a PNG."""
    from matplotlib.figure import Figure  # not pyplot: a notebook's backend stays as it is

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    train_rows = [r for r in history if "loss" in r]
    ax.plot([r["samples"] for r in train_rows], [r["loss"] for r in train_rows], lw=1,
            label="training")
    val_rows = [r for r in history if "val_loss" in r]
    if val_rows:
        per_step = train_rows[0]["samples"] / train_rows[0]["step"] if train_rows else 1
        ax.plot([r["step"] * per_step for r in val_rows], [r["val_loss"] for r in val_rows],
                "o-", label="validation")
    ax.set(xlabel="samples seen", ylabel="loss per answer token", yscale="log",
           title="chatsr training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
