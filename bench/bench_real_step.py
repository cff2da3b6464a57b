"""CPU seconds per fine-tuning step of a text encoder under the practitioners' protocol.

One AdamW step (forward, backward, in-place AdamW with row-sparse word embeddings) of the MiniLM
classifier on a batch of real texts cut to ``--max-length`` tokens, timed as CPU seconds of this
process (one thread), so other work on a shared machine does not count. Also times the test-set
forward pass per text. Needs the [real] extra.

    .venv/bin/python bench/bench_real_step.py --encoder minilm-l3 --batch 8 --max-length 64
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm-l3")
    parser.add_argument("--task", default="bbc-news", help="texts to batch (bbc-news: every text fills the length)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from verify.real.data.text_dataset import make_text_dataset
    from verify.real.minilm_classifier import MiniLMClassifier, classifier_layers, token_rows
    from verify.real.protocol.adamw import InPlaceAdamW
    from verify.real.protocol.config import ProtocolConfig
    from verify.real.protocol.finetune import WORD_EMBEDDINGS, trim
    from verify.real.text_features import shared_minilm

    encoder = shared_minilm(args.encoder, args.cache or tempfile.mkdtemp())
    dataset = make_text_dataset(task=args.task, shots=args.batch, test_per_class=10)
    rows = token_rows(encoder, dataset.texts[:args.batch], max_length=args.max_length)
    y = torch.as_tensor(dataset.y[:args.batch])
    model = MiniLMClassifier(encoder, int(dataset.card["n_classes"])).train()
    names = [name for layer in classifier_layers(model) for name in layer]
    params = dict(model.named_parameters())
    config = ProtocolConfig(name="bench", encoder=args.encoder, n_steps=args.steps, lr=2e-5,
                            batch_size=8, max_length=64)
    optimiser = InPlaceAdamW(config.optimiser(args.steps), lr=2e-5, n_steps=args.steps,
                             row_sparse=[WORD_EMBEDDINGS])
    batch = trim(rows)
    tokens = int(rows[:, args.max_length:].sum())

    def step():
        loss = torch.nn.functional.cross_entropy(model(batch), y)
        grads = torch.autograd.grad(loss, [params[name] for name in names])
        optimiser.step({name: params[name].data for name in names}, dict(zip(names, grads)))

    step()  # warm-up
    start = time.process_time()
    for _ in range(args.steps):
        step()
    per_step = (time.process_time() - start) / args.steps
    test = token_rows(encoder, dataset.test_texts, max_length=args.max_length)
    model.eval()
    start = time.process_time()
    with torch.no_grad():
        for first in range(0, len(test), 64):
            model(trim(test[first:first + 64]))
    per_text = (time.process_time() - start) / len(test)
    print(f"encoder={args.encoder} task={args.task} batch={args.batch} max_length={args.max_length} "
          f"tokens_in_batch={tokens} cpu_s_per_step={per_step:.3f} "
          f"cpu_s_per_1024_tokens={per_step * 1024 / tokens:.3f} cpu_ms_per_test_text={1000 * per_text:.1f}")


if __name__ == "__main__":
    main()
