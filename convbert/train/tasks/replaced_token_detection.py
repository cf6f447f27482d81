"""Replaced-token detection (ELECTRA; Clark et al. 2020), the objective ConvBERT was pretrained with.

A small generator (a masked LM of the same depth, 1/4 of the width) fills the masked positions with tokens
sampled from its softmax; the discriminator (the model we keep) labels every token original or replaced.
The two share their embeddings; the loss is ``generator_loss + 50 * discriminator_loss``. Sampling is not
differentiated through, as in ELECTRA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convbert.checking import require
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.interop.files import load_state_dict_dir
from convbert.labels import IGNORE_INDEX
from convbert.modeling import ConvBertForMaskedLM, ConvBertWithHead, build_model
from convbert.outputs import ModelOutput
from convbert.train import metrics
from convbert.train.model_config import generator_composition, with_head
from convbert.train.tasks.masked_lm import DEV_MASK_SEED, MaskedLanguageModeling, MaskedLMConfig
from convbert.train.token_masking import draws

SHARED_EMBEDDINGS = ("word", "position", "token_type", "norm")


@dataclass
class ReplacedTokenDetectionOutput(ModelOutput):
    loss: torch.Tensor | None = None
    generator_loss: torch.Tensor | None = None
    discriminator_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # discriminator, (B, L)
    labels: torch.Tensor | None = None  # 1 where the token was replaced, (B, L)
    generator_logits: torch.Tensor | None = None  # at the masked positions, (N, V)


SAMPLING = ("inverse_cdf", "gumbel", "multinomial")


def sample(logits: torch.Tensor, method: str, temperature: float,
           rng: torch.Generator | None, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """One token id per row of ``logits`` (N, V), drawn from softmax(logits / temperature).

    ``inverse_cdf`` takes one uniform per row (``uniforms``, N): the draw of a row depends on its own number
    alone, so a masked token gets the same replacement whichever process or micro-batch samples it.
    ``gumbel`` (ELECTRA's way) and ``multinomial`` draw V numbers per row from ``rng``: the same distribution,
    but a draw that depends on the process's stream."""
    logits = logits.float() / temperature
    if method == "inverse_cdf":
        if uniforms is None:
            uniforms = torch.rand(logits.shape[0], generator=rng, device=logits.device)
        cdf = logits.softmax(-1).cumsum_(-1)
        drawn = torch.searchsorted(cdf, (uniforms.float() * cdf[:, -1]).unsqueeze(-1))
        return drawn.squeeze(-1).clamp_(max=logits.shape[-1] - 1)
    if method == "gumbel":  # argmax(logits + Gumbel noise) is an exact sample of the softmax
        uniform = torch.rand(logits.shape, generator=rng, device=logits.device)
        return (logits - torch.log(-torch.log(uniform.clamp(1e-9, 1.0)))).argmax(-1)
    return torch.multinomial(logits.softmax(-1), 1, generator=rng).squeeze(-1)


class ReplacedTokenDetectionModel(nn.Module):
    """Generator + discriminator with shared word, position and token-type embeddings (and their LayerNorm);
    the generator keeps its own projection to its smaller hidden size and decodes through the shared words."""

    def __init__(self, discriminator: ConvBertWithHead, generator: ConvBertForMaskedLM, *,
                 discriminator_weight: float = 50.0, generator_weight: float = 1.0, sampling: str = "gumbel",
                 temperature: float = 1.0, tie_encoder: bool = False) -> None:
        super().__init__()
        if tie_encoder:  # ELECTRA's "tying all weights" (§3.2): one encoder, two heads
            generator.convbert = discriminator.convbert
        ours, theirs = discriminator.convbert.embeddings, generator.convbert.embeddings
        for name in SHARED_EMBEDDINGS:
            a, b = getattr(ours, name), getattr(theirs, name)
            if a.weight.shape != b.weight.shape:
                raise ConfigError(
                    f"generator and discriminator embeddings differ ({name}: {tuple(b.weight.shape)} vs "
                    f"{tuple(a.weight.shape)}); they must share vocabulary, positions and width")
            setattr(theirs, name, a)
        generator.head.decoder.weight = ours.word.weight
        self.discriminator, self.generator = discriminator, generator
        self.discriminator_weight, self.generator_weight = discriminator_weight, generator_weight
        self.sampling, self.temperature = sampling, temperature

    def forward(self, input_ids: torch.Tensor, corrupted_ids: torch.Tensor, labels: torch.Tensor,
                attention_mask: torch.Tensor, rng: torch.Generator | None = None,
                judged: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                sample_uniforms: torch.Tensor | None = None) -> ReplacedTokenDetectionOutput:
        """``judged`` (B, L): the tokens the discriminator's loss covers (default: every real token);
        ``sample_uniforms`` (B, L): the numbers ``inverse_cdf`` sampling uses at the masked positions."""
        judged = attention_mask if judged is None else judged
        generated = self.generator(input_ids=corrupted_ids, attention_mask=attention_mask, labels=labels,
                                   token_type_ids=token_type_ids, logits_at_labels_only=True)
        selected = labels != IGNORE_INDEX
        with torch.no_grad():
            fake = input_ids.clone()
            uniforms = sample_uniforms[selected] if sample_uniforms is not None else None
            fake[selected] = sample(generated.logits.detach(), self.sampling, self.temperature, rng, uniforms)
            replaced = (fake != input_ids) & attention_mask.bool()
        hidden = self.discriminator.convbert(fake, attention_mask, token_type_ids).last_hidden_state
        detected = self.discriminator.head(hidden, labels=replaced, attention_mask=judged)
        loss = self.generator_weight * generated.loss + self.discriminator_weight * detected.loss
        return ReplacedTokenDetectionOutput(
            loss=loss, generator_loss=generated.loss, discriminator_loss=detected.loss,
            logits=detected.logits, labels=replaced, generator_logits=generated.logits)


@dataclass
class ReplacedTokenDetectionConfig(MaskedLMConfig):
    """The masking of MaskedLMConfig (applied for the generator), then the generator and discriminator."""

    name: str = "pretrain_rtd"
    generator_size_divisor: int = 4
    discriminator_weight: float = 50.0
    generator_weight: float = 1.0
    sampling: str = "inverse_cdf"
    temperature: float = 1.0
    tie_encoder: bool = False  # true: the generator is the discriminator's encoder + an MLM head (divisor 1)
    judge_special_tokens: bool = False  # true: ELECTRA's loss over [CLS]/[SEP] too (they are never replaced)
    head: Any = field(default_factory=lambda: {"name": "replaced_token_detection"})


class ReplacedTokenDetection(MaskedLanguageModeling):
    """Pretrain with replaced-token detection. Metric: the combined dev loss. The stage's model is the
    discriminator's encoder (``ConvBertModel``); the generator is saved beside it."""

    name = "pretrain_rtd"
    config_class = ReplacedTokenDetectionConfig

    @classmethod
    def check_config(cls, config, path):
        super().check_config(config, path)
        require(config.generator_size_divisor >= 1, f"{path}.generator_size_divisor", "must be >= 1")
        require(not config.tie_encoder or config.generator_size_divisor == 1, f"{path}.tie_encoder",
                "shares the discriminator's encoder, so it needs generator_size_divisor=1")
        require(config.sampling in SAMPLING, f"{path}.sampling",
                f"{config.sampling!r} is not one of {', '.join(SAMPLING)}")
        require(config.temperature > 0, f"{path}.temperature", "must be > 0")

    def model_class_name(self) -> str:
        return "ConvBertModel"  # the discriminator's encoder; the generator is a ConvBertForMaskedLM

    def head_node(self, composition):
        return self.checked_head(dict(self.config.head))  # the discriminator's head, not a masked-LM one

    def check(self, composition):
        self.head_node(composition)
        generator_composition(composition, self.config.generator_size_divisor, self.path)

    def build(self, composition):
        self.token_types = int(composition.get("embedding", {}).get("type_vocab_size", 2))
        discriminator = build_model(with_head(composition, self.head_node(composition)))
        divisor = self.config.generator_size_divisor
        generator = build_model(generator_composition(composition, divisor, self.path))
        return ReplacedTokenDetectionModel(
            discriminator, generator, discriminator_weight=self.config.discriminator_weight,
            generator_weight=self.config.generator_weight, sampling=self.config.sampling,
            temperature=self.config.temperature, tie_encoder=self.config.tie_encoder,
        )

    def load_init(self, module, directory):
        state, source = load_state_dict_dir(directory)  # the discriminator starts from its encoder
        encoder = {k.removeprefix("convbert."): v for k, v in state.items() if not k.startswith("head.")}
        module.discriminator.convbert.load_checkpoint_state(encoder, source)

    def compile_targets(self, module):
        # sampling takes a torch.Generator, which torch.compile does not trace: compile around it
        return [module.generator, module.discriminator.convbert, module.discriminator.head]

    def save(self, module, directory: Path, tokenizer: Any) -> None:
        module.discriminator.convbert.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        module.generator.save_pretrained(directory.parent / "generator")
        tokenizer.save_pretrained(directory.parent / "generator")

    def judged(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The tokens the discriminator is asked about: by default not [CLS] and [SEP], which are never
        replaced, so their answer is known without looking (ELECTRA's loss covers them:
        ``judge_special_tokens=true``). Left in, they lower the loss and raise the accuracy by what the
        position alone tells, and the dev loss is no longer comparable with the entropy of the replaced
        share."""
        if self.config.judge_special_tokens:
            return batch["attention_mask"]
        return (batch["attention_mask"].bool() & ~self.special(batch)).to(batch["attention_mask"].dtype)

    def loss_counts(self, batch):
        """The generator's loss is a mean over the masked tokens, the discriminator's over the judged ones."""
        return [(batch["labels"] != IGNORE_INDEX).sum(), self.judged(batch).sum()]

    def outputs(self, module, batch, rng):
        batch = self.inputs(batch, rng)
        return module(input_ids=batch["input_ids"], corrupted_ids=batch["corrupted_ids"],
                      labels=batch["labels"], attention_mask=batch["attention_mask"], rng=rng,
                      judged=self.judged(batch), token_type_ids=batch.get("token_type_ids"),
                      sample_uniforms=batch.get("sample_uniforms"))

    def loss(self, module, batch, rng):
        out = self.outputs(module, batch, rng)
        return out.loss, {"generator_loss": out.generator_loss.item(),
                          "discriminator_loss": out.discriminator_loss.item()}

    def scaled_loss(self, module, batch, rng, factors):
        """Each part normalised by its own global count: weight x sum / count over the global batch."""
        out = self.outputs(module, batch, rng)
        generator = out.generator_loss * factors[0]
        discriminator = out.discriminator_loss * factors[1]
        loss = self.config.generator_weight * generator + self.config.discriminator_weight * discriminator
        return loss, {"generator_loss": generator.item(), "discriminator_loss": discriminator.item()}

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        rng = torch.Generator(device=device).manual_seed(DEV_MASK_SEED)
        sums = {"loss": 0.0, "generator_loss": 0.0, "discriminator_loss": 0.0}
        gen_correct = gen_count = disc_correct = disc_count = replaced_count = 0.0
        for _, batch in self.batches(dev, batch_size, device):
            drawn = draws(tuple(batch["input_ids"].shape), len(self.tokenizer), rng, device)
            corrupted, labels = self.corrupt(batch, drawn=drawn)
            judged = self.judged(batch)
            with autocast:
                out = module(input_ids=batch["input_ids"], corrupted_ids=corrupted, labels=labels,
                             attention_mask=batch["attention_mask"], rng=rng, judged=judged,
                             token_type_ids=batch.get("token_type_ids"), sample_uniforms=drawn["sample"])
            n = len(batch["input_ids"])
            for key in sums:
                sums[key] += float(out[key]) * n
            real = judged.bool()
            disc_correct += float(((out.logits > 0) == out.labels)[real].sum())
            disc_count += float(real.sum())
            replaced_count += float(out.labels[real].sum())
            gen_correct += float((out.generator_logits.argmax(-1) == labels[labels != IGNORE_INDEX]).sum())
            gen_count += float((labels != IGNORE_INDEX).sum())
        result = {k: v / max(1, len(dev)) for k, v in sums.items()}
        result["discriminator_accuracy"] = disc_correct / max(1.0, disc_count)
        # what a discriminator that learned only how many tokens get replaced would score: the level to beat
        result["discriminator_prior_entropy"] = metrics.entropy([0] * int(disc_count - replaced_count)
                                                                + [1] * int(replaced_count))
        result["generator_accuracy"] = gen_correct / max(1.0, gen_count)
        return result


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(ReplacedTokenDetection)
