"""PyTorch eager reference for `dynaboot bench` (benchmark-only; never part of CI).

The identical configuration, measured the same way: HF transformers' ChameleonModel with the
`small` preset (hidden 256, intermediate 688, 6 layers, 8 heads, 8 key/value heads, vocabulary
960 = 448 text + 512 image ids, 192 positions), f32 on the CPU (or `--device cuda`, where the
timings wait for the GPU to finish, as `dynaboot bench --device cuda` does).

- training: batch 16 x 160 world-model sequences, loss on the 64 target image tokens only
  (the head runs on those rows only, as dynaboot's does), AdamW; 1 warm-up + 3 timed steps;
- generation: 8 candidates x 64 image tokens after an 81-token prompt, KV cache;
- best-of-8: that generation + one forward scoring 8 dynamics sequences of 147 tokens.

Usage: python bench/torch_reference.py [--json] [--device cpu|cuda]   (pip install torch transformers)
"""

import json
import resource
import sys
import time

import torch
from transformers import ChameleonConfig, ChameleonModel
from transformers.cache_utils import DynamicCache

VOCAB, TEXT, IMG_TOKENS = 960, 448, 64
BATCH, LEN = 16, 160
DEVICE = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def build():
    cfg = ChameleonConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=192,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        attention_dropout=0.0,
        vocabulary_map={"<image>": 0},
    )
    cfg._attn_implementation = "eager"
    model = ChameleonModel(cfg)
    # The image tokenizer is not part of the measurement (dynaboot's bench keeps it apart too).
    model.vqmodel = None
    head = torch.nn.Linear(256, VOCAB, bias=False)
    return model, head


def median_ms(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def main():
    torch.manual_seed(0)
    model, head = build()
    model, head = model.to(DEVICE), head.to(DEVICE)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    ids = torch.randint(TEXT, VOCAB, (BATCH, LEN), device=DEVICE)

    def step():
        hidden = model(input_ids=ids).last_hidden_state
        rows = hidden[:, LEN - IMG_TOKENS - 2 : LEN - 2].reshape(-1, 256)
        targets = ids[:, LEN - IMG_TOKENS - 1 : LEN - 1].reshape(-1)
        loss = torch.nn.functional.cross_entropy(head(rows), targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    model.train()
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(3):
        step()
    sync()
    train_s = time.perf_counter() - t0
    model.eval()

    prompt = torch.randint(7, TEXT, (1, 81), device=DEVICE)

    @torch.no_grad()
    def generate():
        cache = DynamicCache()
        out = model(input_ids=prompt, cache=cache, use_cache=True)
        cache = out.past_key_values
        cache.batch_repeat_interleave(8)
        logits = head(out.last_hidden_state[:, -1]).repeat(8, 1)
        for i in range(IMG_TOKENS):
            probs = torch.softmax(logits[:, TEXT:], dim=-1)
            tok = torch.multinomial(probs, 1) + TEXT
            if i + 1 == IMG_TOKENS:
                break
            out = model(input_ids=tok, cache=cache, use_cache=True)
            cache = out.past_key_values
            logits = head(out.last_hidden_state[:, -1])

    dyn = torch.randint(TEXT, VOCAB, (8, 147), device=DEVICE)

    @torch.no_grad()
    def score():
        hidden = model(input_ids=dyn).last_hidden_state[:, -14:-1]
        logp = torch.log_softmax(head(hidden), dim=-1)
        return logp.gather(2, dyn[:, -13:].unsqueeze(2)).sum(dim=(1, 2))

    generate()
    gen_ms = median_ms(generate)
    best_ms = median_ms(lambda: (generate(), score()))
    forward_ms = median_ms(lambda: torch.no_grad()(model)(input_ids=dyn))
    report = {
        "implementation": f"pytorch {torch.__version__} eager, transformers ChameleonModel, {DEVICE}",
        "threads": torch.get_num_threads(),
        "train_tokens_per_s": BATCH * LEN * 3 / train_s,
        "train_step_ms": train_s * 1e3 / 3,
        "generate_tokens_per_s": 8 * IMG_TOKENS / (gen_ms / 1e3),
        "generate_8x64_ms": gen_ms,
        "best_of_8_tokens_ms": best_ms,
        "forward_8x147_ms": forward_ms,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if "--json" in sys.argv:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:24} {v}")


if __name__ == "__main__":
    main()
