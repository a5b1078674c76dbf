"""DRIFT fine-tuning on a ``transformers.Trainer``: sft, rft, wsft, otr, otr-exact and drift-otr.

``DriftConfig`` extends ``TrainingArguments`` with the data, loss and LoRA options; ``drift train``
(:mod:`drift_train.commands.train`) is generated from it (every ``TrainingArguments`` flag works:
``--learning_rate``, ``--report_to``, ``--deepspeed``, ``--gradient_checkpointing``, ...), and reads a
YAML file with ``--config``. The
trainer overrides only the loss (and adds its diagnostics to the logs), so ``accelerate launch``,
``torchrun``, DeepSpeed/FSDP configs and checkpoint resume behave as in any transformers script::

    drift train --data rollouts.weighted.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --loss wsft --output-dir out
    torchrun --nproc_per_node 8 -m drift_train.commands.train --config train.yaml
    accelerate launch --config_file fsdp.yaml -m drift_train.commands.train --config train.yaml

On a machine without GPUs, ``torchrun --nproc_per_node N`` and ``accelerate launch --multi_gpu
--num_processes N`` give CPU data parallelism over gloo (``DriftConfig`` switches ``use_cpu`` on when
it sees several processes and no accelerator); ``accelerate launch --cpu --num_processes N`` starts a
single process unless it is given an MPI setup. ``examples/accelerate/`` has FSDP2 and DeepSpeed
ZeRO-2/3 configs that run on CPU processes too (its README says what differs there).

Only the positions that predict a supervised token go through the LM head (``logits_to_keep``, where the
model takes it): on a 49 k or 150 k vocabulary the head is a large share of a step, and prompts, history
and padding need no logits. LoRA (``--use_peft``) trains peft adapters and merges them into a plain
model folder at the end (``--merge_lora``, on by default).

The loss is normalised by the number of supervised tokens in the whole optimizer step (all
micro-batches, all ranks: ``num_items_in_batch``), so changing the micro-batch size, gradient
accumulation or world size leaves the update unchanged (see ``drift_train.losses``). That holds with
``--average_tokens_across_devices false`` too: Trainer then counts each rank's tokens only, and the
trainer sums the counts over ranks itself (one all-gather of a scalar per micro-batch).
"""

from __future__ import annotations

import inspect
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from drift_train.data import ASSISTANT_TURNS, DriftCollator, RenderConfig, build_dataset
from drift_train.losses import IGNORE_INDEX, LOSS_MODES, WEIGHTED_MODES, OTRConfig, drift_loss
from drift_train.merge import read_records
from drift_train.weights import kish_ess


@dataclass
class DriftConfig(TrainingArguments):
    """Everything ``drift train`` needs: ``TrainingArguments`` plus data, loss and LoRA options."""

    data: str | None = field(
        default=None,
        metadata={
            "help": "Trajectory file (.jsonl or .parquet), or the shards of one rollout (comma-separated, or a "
            "quoted glob), merged and checked as `drift merge` does. wsft/drift-otr need the `weight` field "
            "that `drift weights` adds; rft keeps successful trajectories only."
        },
    )
    model: str | None = field(default=None, metadata={"help": "Model folder or hub id to fine-tune."})
    loss: str = field(
        default="wsft",
        metadata={
            "help": "sft: plain SFT (weights ignored); rft: SFT on successful trajectories; wsft: DRIFT weighted "
            "SFT; otr: One-Token Rollout (sampled); otr-exact: its closed-form expectation; drift-otr: "
            "OTR token loss times the trajectory weight.",
            "choices": list(LOSS_MODES),
        },
    )
    otr_num_samples: int = field(default=256, metadata={"help": "OTR: K tokens sampled per position."})
    otr_temperature: float = field(
        default=1.3, metadata={"help": "OTR: κ, temperature of the sampling policy."}
    )
    otr_negative_reward: float = field(
        default=-0.1, metadata={"help": "OTR: β ≤ 0, reward of a sampled token that is not the ground truth."}
    )
    otr_exact: bool = field(
        default=False, metadata={"help": "drift-otr: use OTR's closed-form expectation instead of sampling."}
    )
    max_length: int = field(
        default=2048,
        metadata={
            "help": "Maximum tokens per example; longer conversations lose their oldest whole turns (never the system "
            "prompt or the trained turn's prompt); a trained turn that does not fit is skipped and counted."
        },
    )
    use_token_ids: bool = field(
        default=True,
        metadata={
            "help": "Train on the token ids recorded at rollout time (the `tokens` field) when the tokenizer matches; "
            "false renders every record's text."
        },
    )
    assistant_turns: str = field(
        default="last",
        metadata={
            "help": "Which assistant turns are trained: the last one given the history (reference), or all.",
            "choices": list(ASSISTANT_TURNS),
        },
    )
    weight_field: str = field(
        default="weight", metadata={"help": "Record field holding the trajectory weight."}
    )
    per_turn_weights: bool = field(
        default=False,
        metadata={"help": "Weight each assistant turn by `turn_weights` (from `drift weights --per-turn`)."},
    )
    padding_free: bool = field(
        default=False,
        metadata={
            "help": "Pack each micro-batch into one row without padding (position_ids restart per conversation)."
        },
    )
    model_dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype to load the model in.",
            "choices": ["float32", "bfloat16", "float16", "auto"],
        },
    )
    use_peft: bool = field(
        default=False, metadata={"help": "Train LoRA adapters (peft) instead of all weights."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "Modules that get LoRA adapters (names, or all-linear)."},
    )
    merge_lora: bool = field(
        default=True,
        metadata={
            "help": "Merge LoRA adapters into the final model so the output folder is a plain model that --model, "
            "from_pretrained and vLLM load; false saves only the adapter, which "
            "peft.AutoPeftModelForCausalLM.from_pretrained(OUT).merge_and_unload() turns into one."
        },
    )
    # TrainingArguments defaults that do not fit this trainer
    remove_unused_columns: bool = field(
        default=False,
        metadata={
            "help": "Kept False: the collator's token_weights are not model inputs but the loss needs them."
        },
    )
    logging_steps: float = field(
        default=10, metadata={"help": "Log every X updates steps (or ratio if < 1)."}
    )

    def __post_init__(self) -> None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not _has_accelerator():
            # accelerate only sets up CPU data parallelism (gloo) when told the run is on CPU; without this,
            # every torchrun process would silently train its own copy
            self.use_cpu = True
        super().__post_init__()
        if self.loss not in LOSS_MODES:
            raise ValueError(f"--loss must be one of {LOSS_MODES}, got {self.loss!r}")
        self.otr_config().validate()
        RenderConfig(max_length=self.max_length, assistant_turns=self.assistant_turns).validate()
        if self.remove_unused_columns:
            raise ValueError(
                "--remove_unused_columns must stay False: the loss reads token_weights from the batch"
            )

    def otr_config(self) -> OTRConfig:
        """The OTR hyper-parameters as :class:`~drift_train.losses.OTRConfig`."""
        return OTRConfig(
            num_samples=self.otr_num_samples,
            temperature=self.otr_temperature,
            negative_reward=self.otr_negative_reward,
            exact=self.otr_exact,
        )

    def render_config(self) -> RenderConfig:
        """The data options as :class:`~drift_train.data.RenderConfig`."""
        return RenderConfig(
            max_length=self.max_length,
            assistant_turns=self.assistant_turns,
            weight_field=self.weight_field,
            per_turn_weights=self.per_turn_weights,
            use_token_ids=self.use_token_ids,
        )


def _has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


class DriftTrainer(Trainer):
    """``transformers.Trainer`` whose loss is :func:`drift_train.losses.drift_loss` with a global normaliser.

    Logged with the loss: ``weight_mean`` and ``weight_ess`` (Kish effective sample size of the
    micro-batch's trajectory weights, as a fraction of its size) and, for the OTR modes,
    ``otr_hit_rate`` (share of the K samples equal to the ground-truth token).
    """

    # compute_loss divides by the step's global token count, so no further division for accumulation
    loss_is_scaled_for_ga = True

    def __init__(self, model: Any, args: DriftConfig, data_collator: Any = None, **kwargs: Any):
        processing_class = kwargs.get("processing_class")
        if data_collator is None:
            pad = getattr(processing_class, "pad_token_id", None)
            if pad is None:
                pad = getattr(processing_class, "eos_token_id", None) or 0
            # right padding under causal attention needs no mask (see DriftCollator)
            data_collator = DriftCollator(
                pad_token_id=pad, padding_free=args.padding_free, attention_mask=False
            )
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        # makes Trainer count the supervised tokens of the whole step on all ranks (num_items_in_batch)
        self.model_accepts_loss_kwargs = True
        self.otr = args.otr_config()
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._logits_to_keep: bool | None = None  # does the model take a tensor logits_to_keep (first step)

    def create_accelerator_and_postprocess(self) -> None:
        """Trainer's accelerator, with an ``accelerate launch`` FSDP config honoured on CPU too.

        accelerate (1.15) turns FSDP on only for accelerator devices: on CPU processes it leaves the run
        plain DDP over gloo without a word, although torch's FSDP2 (``fully_shard``) runs there. This puts
        accelerate's own FSDP2 path back in place. FSDP1 cannot run on CPU (accelerate's plugin and torch's
        wrapper both refuse CPU devices), so asking for it there is an error.
        """
        super().create_accelerator_and_postprocess()
        from accelerate.state import PartialState
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        state = self.accelerator.state
        if (
            state.distributed_type != DistributedType.MULTI_CPU
            or os.environ.get("ACCELERATE_USE_FSDP") != "true"
        ):
            return
        plugin = FullyShardedDataParallelPlugin()  # the FSDP_* settings accelerate launch exported
        if (
            plugin.fsdp_version != 2
        ):  # reached with fsdp_sync_module_states: false; torch's FSDP1 fails later, obscurely
            raise ValueError(
                "FSDP on CPU processes needs `fsdp_version: 2` in the accelerate config; FSDP1 does not "
                "run on CPU (see examples/accelerate/README.md)"
            )
        # AcceleratorState re-reads distributed_type from PartialState each time it is built: set both
        PartialState._shared_state["distributed_type"] = state.distributed_type = DistributedType.FSDP
        state.fsdp_plugin = plugin
        self.is_fsdp_enabled = True

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """L = (1/N) Σ w ℓ over this micro-batch, N = supervised tokens of the whole optimizer step."""
        labels = inputs.pop("labels")
        token_weights = inputs.pop("token_weights")
        sequence_weights = inputs.pop("sequence_weights")
        shift = True
        positions = self._supervised_logit_positions(model, labels) if not return_outputs else None
        if positions is None:
            outputs = model(**inputs, use_cache=False)
        else:
            # the LM head (a V × H product per position, and its backward) and its logits only where a
            # supervised token is predicted: the same terms in the same order, so the same loss
            outputs = model(**inputs, use_cache=False, logits_to_keep=positions)
            labels, token_weights, shift = labels[:, positions + 1], token_weights[:, positions + 1], False
        if (
            num_items_in_batch is not None
            and self.accelerator.num_processes > 1
            and not self.args.average_tokens_across_devices
        ):
            # Trainer counted this rank's tokens only; N must count every rank's, or each rank's loss is
            # normalised by its own count and the averaged update depends on how tokens fell across ranks
            local = torch.as_tensor(num_items_in_batch, device=labels.device).reshape(1)
            num_items_in_batch = self.accelerator.gather(local).sum()
        loss, metrics = drift_loss(
            outputs.logits,
            labels,
            token_weights,
            self.args.loss,
            normaliser=num_items_in_batch,
            otr=self.otr,
            shift=shift,
        )
        if num_items_in_batch is not None and self.accelerator.num_processes > 1:
            # data parallelism averages gradients over ranks, but N already counts every rank's tokens
            loss = loss * self.accelerator.num_processes
        if model.training:
            if self.args.loss in WEIGHTED_MODES:
                w = sequence_weights.float()
                self._metrics["weight_mean"].append(float(w.mean()))
                ess = kish_ess(float(w.sum()), float(w.pow(2).sum()))
                self._metrics["weight_ess"].append(ess / len(w))
            for key, value in metrics.items():
                self._metrics[key].append(value)
        return (loss, outputs) if return_outputs else loss

    def _supervised_logit_positions(
        self, model: torch.nn.Module, labels: torch.Tensor
    ) -> torch.Tensor | None:
        """The positions whose logits predict a supervised token in any row (the union over the batch,
        exact for a padding-free row), or None where the model cannot compute logits at chosen positions
        (no tensor ``logits_to_keep``) or nothing would be saved."""
        if self._logits_to_keep is None:
            inner = self.accelerator.unwrap_model(model)
            inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # peft
            self._logits_to_keep = "logits_to_keep" in inspect.signature(inner.forward).parameters
        if not self._logits_to_keep:
            return None
        wanted = (labels[:, 1:] != IGNORE_INDEX).any(dim=0)
        if not wanted.any() or bool(wanted.all()):
            return None
        return wanted.nonzero().squeeze(1)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the averaged DRIFT diagnostics of the steps since the last log to the training logs."""
        if "loss" in logs:
            for key, values in self._metrics.items():
                if values:
                    logs[key] = sum(values) / len(values)
            self._metrics.clear()
        super().log(logs, start_time)


# --------------------------------------------------------------------------------------------------
# the end-to-end run (the command line: drift_train.commands.train)


class ModelLoadError(ValueError):
    """The model or tokenizer named by ``--model`` could not be loaded; the message says which and why."""


def load_model_and_tokenizer(config: DriftConfig):
    """The model (LoRA-wrapped with ``use_peft``) and tokenizer named by ``config.model``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from drift_train.models import model_load_error

    dtype = config.model_dtype if config.model_dtype == "auto" else getattr(torch, config.model_dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
        model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as err:  # an unreachable hub id, a folder without weights, ...
        raise ModelLoadError(model_load_error(config.model, err)) from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.use_peft:
        from peft import LoraConfig, get_peft_model
        from transformers import set_seed

        # LoRA's A matrices are drawn at random here, before Trainer seeds anything: without this every run
        # (and the one-process run vs a launch) starts from other adapters
        set_seed(config.seed)

        targets = config.lora_target_modules
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets[0] if targets == ["all-linear"] else targets,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()
    return model, tokenizer


def model_end_token_ids(model: Any) -> list[int]:
    """The ids that end a reply: the model's ``generation_config.eos_token_id`` (one id or a list)."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    return [] if eos is None else [int(eos)] if isinstance(eos, int) else [int(t) for t in eos]


def resolve_checkpoint(config: DriftConfig) -> str | None:
    """``--resume_from_checkpoint``: a checkpoint folder, or ``last`` for the newest one in ``output_dir``."""
    value = config.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("last", "true"):
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(config.output_dir) if Path(config.output_dir).is_dir() else None
        if last is None:
            raise FileNotFoundError(
                f"--resume_from_checkpoint {value}: no checkpoint-* folder in {config.output_dir}"
            )
        return last
    if not Path(value).is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint: no checkpoint folder at {value}")
    return str(value)


def train(config: DriftConfig) -> dict:
    """Load data and model, train, save a plain model folder to ``output_dir``; returns the final metrics."""
    records = read_records(config.data)
    model, tokenizer = load_model_and_tokenizer(config)
    dataset = build_dataset(
        records, tokenizer, config.render_config(), config.loss, end_token_ids=model_end_token_ids(model)
    )
    trainer = DriftTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resolve_checkpoint(config))
    elapsed = time.perf_counter() - started
    if config.use_peft and config.merge_lora:
        trainer.model = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
    trainer.save_model(config.output_dir)
    trainer.save_state()  # trainer_state.json: the per-step logs (loss, weight_mean, weight_ess, otr_hit_rate)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(config.output_dir)
    metrics = dict(result.metrics)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics.update(
        {
            "loss_mode": config.loss,
            "examples": len(dataset),
            "supervised_tokens": dataset.stats.supervised_tokens,
            "skipped_unsuccessful": dataset.stats.skipped_unsuccessful,
            "skipped_zero_weight": dataset.stats.skipped_zero_weight,
            "truncated": dataset.stats.truncated,
            "skipped_too_long": dataset.stats.skipped_too_long,
            "token_id_records": dataset.stats.token_id_records,
            "text_records": dataset.stats.text_records,
            "tokenizer_mismatch": dataset.stats.tokenizer_mismatch,
            # with fewer steps than logging_steps nothing is logged mid-run; the run's mean loss stands in
            "first_loss": losses[0] if losses else metrics.get("train_loss", math.nan),
            "last_loss": losses[-1] if losses else metrics.get("train_loss", math.nan),
            "steps": trainer.state.global_step,
            "seconds": elapsed,
            "output_dir": str(config.output_dir),
            "parallelism": parallelism(trainer),
        }
    )
    if trainer.is_world_process_zero():
        _print_summary(metrics)
    return metrics


def parallelism(trainer: Trainer) -> str:
    """How the run was spread, as the accelerator set it up: ``single``, ``DDP x2``, ``FSDP2 x2``, ``DeepSpeed ZeRO-3 x2``."""
    from accelerate.utils import DistributedType

    state = trainer.accelerator.state
    kind = state.distributed_type
    if kind == DistributedType.NO:
        return "single"
    if kind == DistributedType.FSDP:
        name = f"FSDP{getattr(state.fsdp_plugin, 'fsdp_version', 1)}"
    elif kind == DistributedType.DEEPSPEED:
        name = f"DeepSpeed ZeRO-{state.deepspeed_plugin.zero_stage}"
    elif kind.value.startswith("MULTI_"):
        name = f"DDP ({state.backend})"
    else:
        name = kind.value
    return f"{name} x{state.num_processes}"


def _print_summary(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"drift train ({metrics['loss_mode']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in (
        "examples",
        "supervised_tokens",
        "token_id_records",
        "text_records",
        "tokenizer_mismatch",
        "skipped_unsuccessful",
        "skipped_zero_weight",
        "truncated",
        "skipped_too_long",
        "steps",
        "first_loss",
        "last_loss",
        "seconds",
        "parallelism",
        "output_dir",
    ):
        value = metrics[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
