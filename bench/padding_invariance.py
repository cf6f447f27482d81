"""How much a sentence's outputs move when it is batched with a longer one (padding added).

Hugging Face's ConvBERT convolves over padding tokens; ``conv_mask_padding=True`` zeroes them first.
Prints the max abs change of the last hidden state at the real tokens, for HF and both of our settings.
Run: python bench/padding_invariance.py
"""

from __future__ import annotations

import tempfile

import torch

import convbert


def main(length: int = 20, padded_to: int = 128, seed: int = 0) -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    kwargs = dict(hidden_size=256, num_attention_heads=4, intermediate_size=1024, embedding_size=128,
                  pad_token_id=0)
    hf = transformers.ConvBertModel(transformers.ConvBertConfig(**kwargs)).eval()
    with torch.no_grad():  # in released weights the [PAD] row is a trained vector, not zero
        hf.embeddings.word_embeddings.weight[0].normal_(std=0.02)
    sentence = torch.randint(1000, 30000, (1, length))
    padded = torch.cat([sentence, torch.zeros(1, padded_to - length, dtype=torch.long)], dim=1)
    mask = (padded != 0).long()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        models = {"transformers": hf}
        for flag in (False, True):
            models[f"convbert conv_mask_padding={flag}"] = convbert.ConvBertModel.from_pretrained(
                tmp, conv_mask_padding=flag).eval()
        with torch.no_grad():
            for name, model in models.items():
                alone = model(sentence).last_hidden_state
                batched = model(padded, attention_mask=mask).last_hidden_state[:, :length]
                rows.append((name, (alone - batched).abs().max().item()))
    print(f"| model (ConvBERT-small, random init, {length} tokens padded to {padded_to}) | max abs change |")
    print("|---|---|")
    for name, diff in rows:
        print(f"| {name} | {diff:.2e} |")


if __name__ == "__main__":
    main()
