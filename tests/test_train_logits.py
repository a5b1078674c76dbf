"""The trainer computes logits only where a supervised token is predicted; the loss and its gradient must
be exactly those of the full logits, for every loss mode, padded or padding-free, full or LoRA."""

from __future__ import annotations

import pytest
import torch
from test_trainer import synthetic_records
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.data import DriftCollator, RenderConfig, build_dataset
from drift_train.losses import LOSS_MODES
from drift_train.trainer import DriftConfig, DriftTrainer
from drift_train.weights import add_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loss_and_grads(trainer: DriftTrainer, batch: dict, *, sliced: bool) -> tuple[torch.Tensor, dict]:
    trainer._logits_to_keep = sliced  # False: the model's full logits, as before the slicing
    model = trainer.model
    model.zero_grad()
    torch.manual_seed(0)  # OTR's samples: the same draws in the same order either way
    loss = trainer.compute_loss(model, {k: v.clone() for k, v in batch.items()}, num_items_in_batch=17)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize(("padding_free", "use_peft"), [(False, False), (True, True)])
def test_logits_at_supervised_positions_give_the_full_logits_loss_and_gradient(
    tiny_model_dir, tmp_path, padding_free, use_peft
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    records, _ = add_weights(synthetic_records(groups=2, k=3))
    for loss in LOSS_MODES:
        config = DriftConfig(
            output_dir=str(tmp_path / loss),
            model=str(tiny_model_dir),
            loss=loss,
            otr_num_samples=8,
            padding_free=padding_free,
            use_peft=use_peft,
            report_to="none",
        )
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        if use_peft:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
        data = build_dataset(records, tokenizer, RenderConfig(), loss)
        trainer = DriftTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
        batch = DriftCollator(tokenizer.pad_token_id, padding_free=padding_free, attention_mask=False)(
            list(data)[:4]
        )
        positions = trainer._supervised_logit_positions(model, batch["labels"])
        assert positions is not None and 0 < len(positions) < batch["labels"].shape[1] - 1
        sliced, sliced_grads = _loss_and_grads(trainer, batch, sliced=True)
        full, full_grads = _loss_and_grads(trainer, batch, sliced=False)
        assert float(full) != 0.0
        torch.testing.assert_close(sliced, full, rtol=1e-5, atol=1e-6, msg=loss)
        assert sliced_grads.keys() == full_grads.keys() and sliced_grads
        for name in full_grads:
            torch.testing.assert_close(sliced_grads[name], full_grads[name], rtol=1e-4, atol=1e-6, msg=name)
