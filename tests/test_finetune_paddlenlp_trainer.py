"""PaddleNLP's own Trainer fine-tunes this project's models: language ids pass through its collator to `forward`,
and this project's layer-wise decay is the optimizer it steps (docs/finetuning.md, "With PaddleNLP's Trainer")."""
import numpy as np


def test_paddlenlp_trainer_fine_tunes_a_language_embedding_checkpoint(tokenizer_dir, tmp_path):
    import paddle
    from paddlenlp.data import DataCollatorWithPadding
    from paddlenlp.trainer import Trainer, TrainingArguments

    from ernie_m import ErnieMForSequenceClassification, ErnieMModel, ErnieMTokenizer
    from ernie_m.training import build_optimizer
    from tests.helpers import save_language_model

    tokenizer = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    save_language_model(ErnieMModel, tokenizer, tmp_path / "base", seed=2)
    seen = []

    class Recording(ErnieMForSequenceClassification):
        def forward(self, input_ids=None, **inputs):
            seen.append(inputs.get("language_ids"))
            return super().forward(input_ids, **inputs)

    model = Recording.from_pretrained(str(tmp_path / "base"), num_labels=2)
    rows = [("We cook pasta.", "en", 0), ("Wir spielen Fußball.", "de", 1)] * 8
    train = [dict(tokenizer(text, language=language, max_length=32), labels=label) for text, language, label in rows]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_train_epochs=1,
                             learning_rate=1e-3, save_strategy="no", device="cpu", seed=1, disable_tqdm=True)
    optimizer, schedule = build_optimizer(model, args.learning_rate, 4, warmup=0.1, weight_decay=0.01,
                                          layer_decay=0.8)
    before = model.classifier.weight.numpy().copy()
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer),
                      optimizers=(optimizer, schedule))
    trainer.train()

    assert len(seen) == 4 and all(isinstance(ids, paddle.Tensor) for ids in seen)
    german, english = tokenizer.language_id("de"), tokenizer.language_id("en")
    assert all({int(i) for i in ids.numpy()[row]} <= {english, german} for ids in seen for row in range(4))
    assert {int(i) for ids in seen for i in ids.numpy().ravel()} == {english, german}
    assert trainer.optimizer is optimizer and len({g["learning_rate"] for g in optimizer._param_groups}) == 4
    assert not np.allclose(before, model.classifier.weight.numpy())
