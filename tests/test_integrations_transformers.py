"""MixCollator + SoftTargetTrainer in a real 3-step Hugging Face Trainer run (a config-built ViT, no downloads)."""

from __future__ import annotations

import copy

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import cutmix  # noqa: E402
from cutmix.integrations.transformers import MixCollator, SoftTargetTrainer  # noqa: E402

K = 4


class Items(torch.utils.data.Dataset):
    """Images [3, 16, 16] with a class each, as an image processor's output would be."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, 16, 16, generator=g)
        self.labels = torch.arange(n) % K

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.images[i], "labels": int(self.labels[i])}


def tiny_vit():
    config = transformers.ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64, num_labels=K)
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(config)


class Recording(SoftTargetTrainer):
    """Keeps each step's inputs and loss, so that the test can recompute the loss on its own."""

    seen: list

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, **kwargs)
        self.seen.append((model.training, inputs["pixel_values"].detach().clone(), inputs["labels"].clone(),
                          loss.detach().clone()))
        return (loss, outputs) if return_outputs else loss


def manual_soft_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * torch.log_softmax(logits.double(), dim=-1)).sum(-1).mean()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_three_steps_train_on_soft_targets_and_keep_single_label(tmp_path):
    model = tiny_vit()
    assert model.config.problem_type is None
    initial = copy.deepcopy(model).eval()
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=8,
                                          per_device_eval_batch_size=8, learning_rate=1e-2, report_to="none",
                                          use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True,
                                          seed=0, dataloader_num_workers=0)
    collator = MixCollator(cutmix.CutMix(K, alpha=1.0, generator=torch.Generator().manual_seed(0)))
    trainer = Recording(model=model, args=args, train_dataset=Items(24, 0), eval_dataset=Items(8, 1),
                        data_collator=collator)
    trainer.seen = []
    result = trainer.train()
    assert result.global_step == 3
    train = [s for s in trainer.seen if s[0]]
    assert len(train) == 3
    for _, _, targets, loss in train:
        assert targets.dtype == torch.float32 and targets.shape == (8, K)
        torch.testing.assert_close(targets.sum(1), torch.ones(8))
        assert torch.isfinite(loss)
    assert any(((t > 0) & (t < 1)).any() for _, _, t, _ in train)  # really mixed

    # The first step's loss is soft-target CE of the untrained model's logits, computed here independently.
    _, images, targets, loss = train[0]
    with torch.no_grad():
        expected = manual_soft_ce(initial(pixel_values=images).logits, targets)
    assert abs(float(loss) - float(expected)) < 1e-5
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 3 and abs(logged[0] - float(expected)) < 1e-3
    assert any(not torch.equal(a, b) for a, b in zip(initial.parameters(), model.parameters(), strict=True))
    assert model.config.problem_type == "single_label_classification"

    # Evaluation sees the unmixed batch with class indices, and its loss is plain cross-entropy.
    metrics = trainer.evaluate()
    _, images, labels, _ = [s for s in trainer.seen if not s[0]][-1]
    assert labels.dtype == torch.int64 and torch.equal(labels, torch.arange(8) % K)
    model.eval()
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(model(pixel_values=images).logits, labels)
    assert abs(metrics["eval_loss"] - float(ce)) < 1e-5
    assert model.config.problem_type == "single_label_classification"


def test_collator_output_and_label_key():
    collator = MixCollator(cutmix.MixUp(K, generator=torch.Generator().manual_seed(0)))
    items = [{"pixel_values": torch.full((3, 4, 4), float(10 * i)), "label": i, "idx": i} for i in range(K)]
    batch = collator(items)
    assert set(batch) == {"pixel_values", "labels", "idx"}
    targets = batch["labels"]
    assert targets.shape == (K, K) and targets.dtype == torch.float32
    assert torch.equal(batch["idx"], torch.arange(K))
    for i in range(K):  # each image is its own label's share of itself plus the partner label's share of the partner
        expected = (targets[i] * 10 * torch.arange(K)).sum()
        torch.testing.assert_close(batch["pixel_values"][i], torch.full((3, 4, 4), float(expected)))
    assert ((targets > 0) & (targets < 1)).any()
    plain = collator.collate(items)
    assert torch.equal(plain["labels"], torch.arange(K))
    assert torch.equal(plain["pixel_values"][2], items[2]["pixel_values"])
    with pytest.raises(TypeError, match="needs its class under 'labels'"):
        collator([{"pixel_values": torch.zeros(3, 4, 4)}])


def test_multi_label_models_are_refused(tmp_path):
    model = tiny_vit()
    model.config.problem_type = "multi_label_classification"
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match=r"single-label classifiers; model\.config\.problem_type is 'multi_label"):
        SoftTargetTrainer(model=model, args=args)
