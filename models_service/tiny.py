"""The built-in offline tiny models: a Llama-style policy (`tiny`) and a reward model (`tiny-rm`).

Both share a byte-level BPE tokenizer trained in memory on a fixed corpus, so building needs no
network and gives the same files for the same seed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from models_service import REPO_ROOT

TINY_NAME = "tiny"
TINY_RM_NAME = "tiny-rm"
VOCAB_SIZE = 400
TRAIN_STEPS = 25
_BUILD_LOCK = threading.Lock()

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "A helpful assistant answers the question that was asked, and says so when it does not know.",
    "Write a short poem about the sea at night.",
    "The sea was calm and the stars were bright over the water.",
    "Summarize the following paragraph in one sentence.",
    "Explain to a six year old why the sky is blue.",
    "Sunlight is made of many colors, and the air scatters blue light more than red light.",
    "Translate the sentence into French: the cat sleeps on the warm chair.",
    "Le chat dort sur la chaise chaude.",
    "List three ideas for a birthday party in the garden.",
    "Bake a cake, hang paper lanterns, and play music under the trees.",
    "What is the capital of France? The capital of France is Paris.",
    "How many legs does a spider have? A spider has eight legs.",
    "Please rewrite this email so that it sounds more polite.",
    "Thank you for your message. I will reply by the end of the week.",
    "Labelers rank the outputs of the model from best to worst.",
    "A reward model learns to predict which output people prefer.",
    "The policy is trained to produce outputs that the reward model scores highly.",
    "Once upon a time there was a small robot who wanted to learn to paint.",
    "Every morning the robot mixed new colors and painted the sunrise.",
    "def add(a, b):\n    return a + b",
    "for i in range(10):\n    print(i * i)",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000.",
    "Good answers are truthful, helpful and harmless.",
    "If a question is unclear, ask the user what they mean before answering.",
)


def models_dir_from_env() -> Path:
    """The directory that holds served models: env LABELAPP_MODELS_DIR, else `var/models`."""
    return Path(os.environ.get("LABELAPP_MODELS_DIR") or REPO_ROOT / "var" / "models")


def build_tokenizer():
    """A byte-level BPE `PreTrainedTokenizerFast` with pad != eos, a bos and a chat template.

    Encoding with special tokens prepends bos; the chat template writes bos itself, so render it to
    text and encode that with `add_special_tokens=False`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]
    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, backend.token_to_id(BOS))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _llama_config(tokenizer, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        **extra,
    )


def build_tiny(
    directory: Path | str, *, seed: int = 0, train_steps: int = TRAIN_STEPS
) -> tuple[Path, Path]:
    """Write `directory/tiny` (causal LM) and `directory/tiny-rm` (reward model, one logit).

    The policy gets `train_steps` full-batch steps on the built-in corpus (about a second on CPU),
    enough for English-like samples that sometimes end with EOS, far from memorising the corpus.
    The reward model stays at its random initialisation. Same seed, same files on one machine.
    Returns the two model directories.
    """
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        GenerationConfig,
    )

    directory = Path(directory)
    tokenizer = build_tokenizer()
    policy_dir, reward_dir = directory / TINY_NAME, directory / TINY_RM_NAME

    # Weight init draws from torch's process-wide RNG: one build at a time per process, and the
    # caller's RNG state is restored afterwards.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = AutoModelForCausalLM.from_config(_llama_config(tokenizer), dtype=torch.float32)
        _fit(policy, tokenizer, steps=train_steps)
        torch.manual_seed(seed + 1)
        reward = AutoModelForSequenceClassification.from_config(
            _llama_config(tokenizer, num_labels=1), dtype=torch.float32
        )
    policy.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    policy.save_pretrained(policy_dir)
    tokenizer.save_pretrained(policy_dir)
    reward.save_pretrained(reward_dir)
    tokenizer.save_pretrained(reward_dir)
    return policy_dir, reward_dir


def _fit(model, tokenizer, *, steps: int) -> None:
    """Full-batch AdamW on the corpus as plain text and as chat turns, loss on every real token."""
    import torch

    texts = [f"{BOS}{line}{EOS}" for line in CORPUS]
    texts += [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            tokenize=False,
        )
        for question, answer in zip(CORPUS[0::2], CORPUS[1::2], strict=False)
    ]
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def ensure_tiny(cache_dir: Path | str | None = None, *, seed: int = 0) -> tuple[Path, Path]:
    """Return the tiny model directories under `cache_dir`, building them once.

    Safe when processes race: each builds into its own temporary directory and renames the result
    into place; a rename that finds the target already there leaves the winner's copy untouched.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else models_dir_from_env()
    targets = (cache_dir / TINY_NAME, cache_dir / TINY_RM_NAME)
    if all((target / "config.json").is_file() for target in targets):
        return targets
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=cache_dir))
    try:
        build_tiny(staging, seed=seed)
        for target in targets:
            if not (target / "config.json").is_file():
                _rename_into_place(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets


def _rename_into_place(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
