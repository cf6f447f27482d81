"""convbert-convert: the original release's TF1 checkpoints (yitu-opensource/ConvBert) -> save_pretrained.

Tiny checkpoints with the release's variable names and shapes (tiny small / medium-small / base: embedding
projection, grouped FFN, head ratio 2, kernel 9, a generator at 1/4 or 1/3 of the width sharing the
embeddings), written with tf.compat.v1's Saver as the release wrote them, optimizer slots included, are
converted; the result equals a model whose every parameter the test assigns by hand from the same arrays, and
transformers loads the directory and gives the same outputs.

Skipped when TensorFlow is not installed (``pip install 'convbert[tf]'``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
try:  # the shared CI machine has two cores
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:  # TensorFlow already initialised by an earlier test module
    pass

import convbert  # noqa: E402
from convbert.cli.convert import main  # noqa: E402
from convbert.conversion.tf1_checkpoint import MODELS, SIZES, convert_tf1_checkpoint, released_config  # noqa: E402
from convbert.errors import CheckpointError, ConfigError  # noqa: E402
from convbert.kernels.convolution import depthwise_conv  # noqa: E402

K, VOCAB, POSITIONS = 9, 64, 24
# Tiny releases, given to the converter as the release's pretraining hparams; the sizes the release's rules
# give for them are written out by hand (disc: the discriminator, gen: the generator).
TINY = {
    "small": dict(
        hparams={"model_size": "small", "vocab_size": VOCAB, "embedding_size": 16,
                 "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                            "num_attention_heads": 4, "max_position_embeddings": POSITIONS}},
        embedding=16,
        disc=dict(hidden=32, heads=4, ffn=128, groups=1),
        gen=dict(hidden=8, heads=1, ffn=32, groups=1),  # one head at head ratio 2: the paper's head split
    ),
    "medium-small": dict(
        hparams={"model_size": "medium-small", "vocab_size": VOCAB, "embedding_size": 16,
                 "model_hparam_overrides": {"hidden_size": 48, "num_hidden_layers": 2,
                                            "num_attention_heads": 8, "max_position_embeddings": POSITIONS}},
        embedding=16,
        disc=dict(hidden=48, heads=8, ffn=192, groups=2),
        gen=dict(hidden=12, heads=2, ffn=48, groups=2),
    ),
    "base": dict(
        hparams={"model_size": "base", "vocab_size": VOCAB,
                 "model_hparam_overrides": {"hidden_size": 48, "num_hidden_layers": 2,
                                            "num_attention_heads": 6, "max_position_embeddings": POSITIONS}},
        embedding=48,  # no projection in the discriminator; the generator projects 48 -> 16
        disc=dict(hidden=48, heads=6, ffn=192, groups=1),
        gen=dict(hidden=16, heads=2, ffn=64, groups=1),
    ),
}
LAYERS = 2


def encoder_variables(scope: str, hidden: int, heads: int, ffn: int, groups: int, embedding: int) -> dict:
    """name -> shape of one encoder as the release's model/modeling.py creates it (head ratio 2)."""
    shapes = {}
    if embedding != hidden:
        shapes[f"{scope}/embeddings_project/kernel"] = (embedding, hidden)
        shapes[f"{scope}/embeddings_project/bias"] = (hidden,)
    size = hidden // heads  # attention_head_size, from the heads before the ratio
    n = max(heads // 2, 1)  # heads of each part
    width = n * size
    for i in range(LAYERS):
        p = f"{scope}/encoder/layer_{i}"
        for part in ("query", "key", "value", "conv_attn_point"):
            shapes[f"{p}/attention/self/{part}/kernel"] = (hidden, width)
            shapes[f"{p}/attention/self/{part}/bias"] = (width,)
        shapes[f"{p}/attention/self/conv_attn_key/depthwise_kernel"] = (K, hidden, 1)
        shapes[f"{p}/attention/self/conv_attn_key/pointwise_kernel"] = (1, hidden, width)
        shapes[f"{p}/attention/self/conv_attn_key/bias"] = (width,)
        shapes[f"{p}/attention/self/conv_attn_kernel/kernel"] = (width, n * K)
        shapes[f"{p}/attention/self/conv_attn_kernel/bias"] = (n * K,)
        shapes[f"{p}/attention/output/dense/kernel"] = (2 * width, hidden)
        shapes[f"{p}/attention/output/dense/bias"] = (hidden,)
        if groups > 1:  # the authors' GDense
            shapes[f"{p}/intermediate/g_dense/kernel"] = (groups, hidden // groups, ffn // groups)
            shapes[f"{p}/output/g_dense/kernel"] = (groups, ffn // groups, hidden // groups)
        else:
            shapes[f"{p}/intermediate/dense/kernel"] = (hidden, ffn)
            shapes[f"{p}/output/dense/kernel"] = (ffn, hidden)
        dense = "g_dense" if groups > 1 else "dense"
        shapes[f"{p}/intermediate/{dense}/bias"] = (ffn,)
        shapes[f"{p}/output/{dense}/bias"] = (hidden,)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[f"{p}/{norm}/gamma"] = shapes[f"{p}/{norm}/beta"] = (hidden,)
    return shapes


def release_variables(size: str) -> dict:
    """Every variable of a tiny release checkpoint: shared embeddings, both encoders, both heads."""
    t = TINY[size]
    e, d, g = t["embedding"], t["disc"], t["gen"]
    shapes = {"electra/embeddings/word_embeddings": (VOCAB, e),
              "electra/embeddings/position_embeddings": (POSITIONS, e),
              "electra/embeddings/token_type_embeddings": (2, e),
              "electra/embeddings/LayerNorm/gamma": (e,), "electra/embeddings/LayerNorm/beta": (e,)}
    shapes.update(encoder_variables("electra", **d, embedding=e))
    shapes.update(encoder_variables("generator", **g, embedding=e))
    shapes.update({"generator_predictions/dense/kernel": (g["hidden"], e),
                   "generator_predictions/dense/bias": (e,),
                   "generator_predictions/LayerNorm/gamma": (e,),
                   "generator_predictions/LayerNorm/beta": (e,),
                   "generator_predictions/output_bias": (VOCAB,),
                   "discriminator_predictions/dense/kernel": (d["hidden"], d["hidden"]),
                   "discriminator_predictions/dense/bias": (d["hidden"],),
                   "discriminator_predictions/dense_1/kernel": (d["hidden"], 1),
                   "discriminator_predictions/dense_1/bias": (1,)})
    return shapes


def write_tf1_checkpoint(directory, shapes: dict, seed: int = 0, slots: bool = True):
    """Save variables with these names and shapes as the release did (graph mode, tf.compat.v1 Saver), with
    global_step and the Adam slots of the embeddings and the first layers when ``slots`` (enough to show that
    they are ignored; all of them would triple the graph); returns (prefix, arrays)."""
    rng = np.random.default_rng(seed)
    arrays = {name: (rng.standard_normal(shape) * 0.3 + name.endswith("/gamma")).astype(np.float32)
              for name, shape in shapes.items()}
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        for name, value in arrays.items():
            v1.get_variable(name, initializer=value)
            if slots and ("/embeddings/" in name or "/layer_0/" in name):
                for slot in ("adam_m", "adam_v"):
                    v1.get_variable(f"{name}/{slot}", initializer=np.abs(value) * 1e-3)
        if slots:
            v1.train.get_or_create_global_step()
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            step = 1000 if slots else None
            prefix = saver.save(session, os.path.join(directory, "model.ckpt"), global_step=step)
    return prefix, arrays


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """size -> (checkpoint directory, arrays); the base one also holds a fine-tuning head's variable."""
    out = {}
    for seed, size in enumerate(SIZES):
        directory = tmp_path_factory.mktemp(f"release-{size}")
        shapes = release_variables(size)
        if size == "base":
            shapes["task_specific/classify/kernel"] = (48, 3)
        _, arrays = write_tf1_checkpoint(str(directory), shapes, seed=seed)
        out[size] = directory, arrays
    return out


def hparams_file(tmp_path, size: str):
    path = tmp_path / f"hparams-{size}.json"
    path.write_text(json.dumps(TINY[size]["hparams"]))
    return path


def config_by_hand(size: str, model: str) -> convbert.ConvBertConfig:
    t = TINY[size]
    d = t["disc" if model == "discriminator" else "gen"]
    fields = dict(vocab_size=VOCAB, hidden_size=d["hidden"], num_hidden_layers=LAYERS,
                  num_attention_heads=d["heads"], intermediate_size=d["ffn"], num_groups=d["groups"],
                  embedding_size=t["embedding"], head_ratio=2, conv_kernel_size=K,
                  max_position_embeddings=POSITIONS, pad_token_id=0)
    config = convbert.ConvBertConfig(**fields)
    if d["heads"] < 2:  # the release's split: one head of width hidden per part, not Hugging Face's hidden/2
        composition = config.encoder_composition()
        composition["layer"]["mixer"]["head_size_rule"] = "paper"
        config = convbert.ConvBertConfig(**fields, composition=composition)
    return config


@torch.no_grad()
def model_by_hand(size: str, model: str, arrays: dict):
    """Our model for the tiny release, every parameter assigned here from its TF1 array."""
    config = config_by_hand(size, model)
    net = convbert.ConvBertModel(config) if model == "discriminator" else convbert.ConvBertForMaskedLM(config)
    encoder = net if model == "discriminator" else net.convbert
    scope = "electra" if model == "discriminator" else "generator"

    def put(param, array):
        assert tuple(param.shape) == array.shape, (param.shape, array.shape)
        param.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    def linear(module, name):  # tf.layers.dense: kernel (in, out)
        put(module.weight, arrays[f"{name}/kernel"].T)
        put(module.bias, arrays[f"{name}/bias"])

    def norm(module, name):
        put(module.weight, arrays[f"{name}/gamma"])
        put(module.bias, arrays[f"{name}/beta"])

    emb = encoder.embeddings
    put(emb.word.weight, arrays["electra/embeddings/word_embeddings"])
    put(emb.position.weight, arrays["electra/embeddings/position_embeddings"])
    put(emb.token_type.weight, arrays["electra/embeddings/token_type_embeddings"])
    norm(emb.norm, "electra/embeddings/LayerNorm")
    if emb.project is not None:
        linear(emb.project, f"{scope}/embeddings_project")
    for i, layer in enumerate(encoder.layers):
        p = f"{scope}/encoder/layer_{i}"
        attention, conv = layer.mixer.parts
        for name in ("query", "key", "value"):
            linear(getattr(attention, name), f"{p}/attention/self/{name}")
        put(conv.key_depthwise, arrays[f"{p}/attention/self/conv_attn_key/depthwise_kernel"][:, :, 0].T)
        put(conv.key_pointwise.weight, arrays[f"{p}/attention/self/conv_attn_key/pointwise_kernel"][0].T)
        put(conv.key_pointwise.bias, arrays[f"{p}/attention/self/conv_attn_key/bias"])
        linear(conv.kernel, f"{p}/attention/self/conv_attn_kernel")
        linear(conv.conv_value, f"{p}/attention/self/conv_attn_point")
        linear(layer.mixer_out, f"{p}/attention/output/dense")
        norm(layer.mixer_norm, f"{p}/attention/output/LayerNorm")
        if config.num_groups > 1:  # (groups, in/groups, out/groups) on both sides
            for module, name in ((layer.ffn.up, "intermediate"), (layer.ffn.down, "output")):
                put(module.weight, arrays[f"{p}/{name}/g_dense/kernel"])
                put(module.bias, arrays[f"{p}/{name}/g_dense/bias"])
        else:
            linear(layer.ffn.up, f"{p}/intermediate/dense")
            linear(layer.ffn.down, f"{p}/output/dense")
        norm(layer.ffn_norm, f"{p}/output/LayerNorm")
    if model == "generator":
        linear(net.head.dense, "generator_predictions/dense")
        norm(net.head.norm, "generator_predictions/LayerNorm")
        put(net.head.decoder.bias, arrays["generator_predictions/output_bias"])
        assert net.head.decoder.weight is emb.word.weight  # the release's decoder is the embedding table
    return net.eval()


def inputs():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, VOCAB, (2, 13), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    types = torch.zeros_like(ids)
    types[:, 7:] = 1
    return dict(input_ids=ids.masked_fill(mask == 0, 0), attention_mask=mask, token_type_ids=types * mask)


def first_output(out):
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


CASES = [(size, model) for size in SIZES for model in MODELS]


@pytest.mark.parametrize(("size", "model"), CASES)
def test_converted_equals_the_model_assigned_by_hand_and_loads_in_transformers(
    releases, tmp_path, caplog, size, model
):
    directory, arrays = releases[size]
    out = tmp_path / f"{size}-{model}"
    with caplog.at_level(logging.INFO, logger="convbert.conversion.tf1_checkpoint"):
        convert_tf1_checkpoint(directory, out, model=model, config=hparams_file(tmp_path, size))
    log = caplog.text
    assert "adam" not in log and "global_step" not in log  # optimizer state: ignored without a word

    cls = convbert.ConvBertModel if model == "discriminator" else convbert.ConvBertForMaskedLM
    loaded = cls.from_pretrained(out)
    hand = model_by_hand(size, model, arrays)
    theirs, ours = loaded.own_state_dict(), hand.own_state_dict()
    assert theirs.keys() == ours.keys()
    for key, value in ours.items():
        torch.testing.assert_close(theirs[key], value, rtol=0, atol=0, msg=key)
    assert loaded.config.to_dict() | {"architectures": None, "dtype": None} == \
        hand.config.to_dict() | {"architectures": None, "dtype": None}
    batch = inputs()
    with torch.no_grad():
        expected = first_output(hand(**batch))
        torch.testing.assert_close(first_output(loaded(**batch)), expected, rtol=0, atol=0)

    import transformers

    hf_cls = transformers.ConvBertModel if model == "discriminator" else transformers.ConvBertForMaskedLM
    if size == "small" and model == "generator":  # one head at head ratio 2: transformers cannot describe it
        assert "composition" in json.loads((out / "config.json").read_text())
        assert "transformers cannot load it" in log
        return
    hf = hf_cls.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(first_output(hf(**batch)), expected, rtol=1e-5, atol=1e-5)
    assert hf.config.pad_token_id == 0 and hf.config.num_groups == TINY[size]["disc"]["groups"]


def test_leftover_variables_are_reported_and_the_other_model_ignored(releases, tmp_path, caplog):
    directory, _ = releases["base"]
    with caplog.at_level(logging.INFO, logger="convbert.conversion.tf1_checkpoint"):
        convert_tf1_checkpoint(directory, None, model="discriminator", config=hparams_file(tmp_path, "base"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "task_specific/classify/kernel" in warnings[0]
    assert "discriminator_predictions/dense/kernel" in caplog.text  # its head: reported, not converted
    assert "ignored the generator's" in caplog.text


def test_a_generator_with_its_own_embeddings(tmp_path):
    """untied_generator_embeddings: the generator's own embeddings, under generator/embeddings, its width."""
    hparams = {**TINY["medium-small"]["hparams"], "untied_generator_embeddings": True}
    g = TINY["medium-small"]["gen"]
    shapes = {k: v for k, v in release_variables("medium-small").items() if not k.startswith("generator")}
    tables = {"word_embeddings": VOCAB, "position_embeddings": POSITIONS, "token_type_embeddings": 2}
    shapes.update({f"generator/embeddings/{name}": (rows, 12) for name, rows in tables.items()})
    shapes.update(encoder_variables("generator", **g, embedding=12))
    for name in ("generator/embeddings/LayerNorm", "generator_predictions/LayerNorm"):
        shapes[f"{name}/gamma"] = shapes[f"{name}/beta"] = (12,)
    shapes.update({"generator_predictions/dense/kernel": (12, 12), "generator_predictions/dense/bias": (12,),
                   "generator_predictions/output_bias": (VOCAB,)})
    _, arrays = write_tf1_checkpoint(str(tmp_path), shapes, slots=False)
    net = convert_tf1_checkpoint(tmp_path, tmp_path / "out", model="generator", config=hparams)
    assert net.config.embedding_size == 12 and net.convbert.embeddings.project is None
    np.testing.assert_array_equal(net.get_input_embeddings().weight.detach().numpy(),
                                  arrays["generator/embeddings/word_embeddings"])
    import transformers

    hf = transformers.ConvBertForMaskedLM.from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(**inputs()).logits, net(**inputs()).logits, rtol=1e-5, atol=1e-5)


def test_span_conv_and_grouped_ffn_compute_what_the_release_computes(releases, tmp_path):
    """The two layout changes that are more than a transpose, checked against TensorFlow's own ops and the
    authors' GDense formula on the TF1 arrays."""
    directory, arrays = releases["medium-small"]
    net = convert_tf1_checkpoint(directory, None, model="discriminator",
                                 config=hparams_file(tmp_path, "medium-small"))
    layer, p = net.layers[1], "electra/encoder/layer_1"
    x = np.random.default_rng(5).standard_normal((2, 11, 48)).astype(np.float32)
    # tf.layers.separable_conv1d(padding="same") is a separable conv2d over a height-1 image
    dw = arrays[f"{p}/attention/self/conv_attn_key/depthwise_kernel"]
    pw = arrays[f"{p}/attention/self/conv_attn_key/pointwise_kernel"]
    key = tf.nn.separable_conv2d(x[:, None], dw[None], pw[None], strides=[1, 1, 1, 1], padding="SAME")
    key = key.numpy()[:, 0] + arrays[f"{p}/attention/self/conv_attn_key/bias"]
    conv = layer.mixer.parts[1]
    with torch.no_grad():
        ours = conv.key_pointwise(depthwise_conv(torch.from_numpy(x), conv.key_depthwise))
    np.testing.assert_allclose(ours.numpy(), key, rtol=1e-5, atol=1e-5)
    # GDense.call: reshape to groups, group-wise matmul, reshape back, add the bias
    kernel, bias = arrays[f"{p}/intermediate/g_dense/kernel"], arrays[f"{p}/intermediate/g_dense/bias"]
    flat = x.reshape(-1, 48)
    grouped = np.matmul(flat.reshape(-1, 2, 24).transpose(1, 0, 2), kernel).transpose(1, 0, 2)
    with torch.no_grad():
        ours = layer.ffn.up(torch.from_numpy(flat))
    np.testing.assert_allclose(ours.numpy(), grouped.reshape(-1, 192) + bias, rtol=1e-5, atol=1e-5)


def test_released_sizes_follow_the_release_rules():
    """DATA.md's table (and conf/model), from the release's own hparam rules."""
    table = {"small": (256, 4, 1024, 1, 128, 13.1), "medium-small": (384, 8, 1536, 2, 128, 17.5),
             "base": (768, 12, 3072, 1, 768, 105.7)}
    generators = {"small": (64, 1), "medium-small": (96, 2), "base": (256, 4)}
    for size, (hidden, heads, ffn, groups, embedding, millions) in table.items():
        c = released_config(size)
        assert (c.hidden_size, c.num_attention_heads, c.intermediate_size, c.num_groups, c.embedding_size,
                c.num_hidden_layers, c.head_ratio, c.conv_kernel_size, c.vocab_size, c.pad_token_id) == \
            (hidden, heads, ffn, groups, embedding, 12, 2, 9, 30522, 0)
        with torch.device("meta"):
            assert round(convbert.ConvBertModel(c).num_parameters() / 1e6, 1) == millions
        g = released_config(size, "generator")
        gen = (g.hidden_size, g.num_attention_heads, g.intermediate_size, g.embedding_size, g.num_groups)
        assert gen == (*generators[size], 4 * generators[size][0], embedding, groups)
        assert g.hf_compatible == (size != "small")


# -- bad inputs ---------------------------------------------------------------------------------------------
def test_missing_variables_are_listed_with_what_the_checkpoint_fits(tmp_path):
    shapes = {k: v for k, v in release_variables("small").items() if "/layer_1/" not in k}
    write_tf1_checkpoint(str(tmp_path), shapes, slots=False)
    with pytest.raises(CheckpointError) as err:
        convert_tf1_checkpoint(tmp_path / "model.ckpt", None, config=TINY["small"]["hparams"])
    message = str(err.value)
    assert "missing (first: electra/encoder/layer_1/attention/self/query/kernel" in message
    assert "does not fit the discriminator of the given hparams" in message and "layers 1" in message

    only_discriminator = tmp_path / "disc"
    only_discriminator.mkdir()
    shapes = {k: v for k, v in release_variables("small").items() if not k.startswith("generator")}
    write_tf1_checkpoint(str(only_discriminator), shapes, slots=False)
    with pytest.raises(CheckpointError, match=r"holds no generator .* but a discriminator: .*--model disc"):
        convert_tf1_checkpoint(only_discriminator, None, model="generator", config=TINY["small"]["hparams"])


def test_wrong_size_names_the_variable_the_shapes_and_the_right_size(releases, tmp_path):
    directory, _ = releases["medium-small"]
    with pytest.raises(CheckpointError) as err:
        convert_tf1_checkpoint(directory, None, config=TINY["small"]["hparams"])
    message = str(err.value)
    assert "electra/encoder/layer_0/attention/self/query/kernel: expected (32, 16), found (48, 24)" in message
    assert "intermediate/dense/kernel" in message  # the small config wants dense, the checkpoint has g_dense
    assert "no released size" in message

    # a checkpoint shaped like the released small (only the variables that tell sizes apart, to stay tiny)
    shapes = {"electra/embeddings/LayerNorm/gamma": (128,), "electra/encoder/layer_0/intermediate/dense/bias":
              (1024,), **{f"electra/encoder/layer_{i}/output/LayerNorm/gamma": (256,) for i in range(12)}}
    like_small = tmp_path / "like-small"
    like_small.mkdir()
    write_tf1_checkpoint(str(like_small), shapes, slots=False)
    with pytest.raises(CheckpointError, match=r"looks like conv-bert-small's discriminator: .*--size small"):
        convert_tf1_checkpoint(like_small, None, config="base")


def test_a_path_that_is_not_a_tf1_checkpoint_is_refused_with_the_fix(releases, tmp_path):
    with pytest.raises(CheckpointError, match=r"no TF1 checkpoint at .*pass the checkpoint prefix"):
        convert_tf1_checkpoint(tmp_path / "nothing" / "model.ckpt", None, config="small")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a TF1 checkpoint"):
        convert_tf1_checkpoint(tmp_path / "notes.txt", None, config="small")
    (tmp_path / "garbage.ckpt.index").write_text("not a table")
    with pytest.raises(CheckpointError, match="not a readable TF1 checkpoint"):
        convert_tf1_checkpoint(tmp_path / "garbage.ckpt", None, config="small")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no TF1 checkpoint in .*\(no \*\.index file\)"):
        convert_tf1_checkpoint(tmp_path / "empty", None, config="small")
    converted = tmp_path / "converted"
    convbert.ConvBertModel(config_by_hand("base", "discriminator")).save_pretrained(converted)
    with pytest.raises(CheckpointError, match=r"save_pretrained directory.*from_pretrained"):
        convert_tf1_checkpoint(converted, None, config="small")
    tf2 = tf.train.Checkpoint(v=tf.Variable(np.zeros(3, np.float32)))
    prefix = tf2.write(str(tmp_path / "tf2" / "ckpt"))
    with pytest.raises(CheckpointError, match="TF2 object-based checkpoint"):
        convert_tf1_checkpoint(prefix, None, config="small")


def test_config_mistakes_name_the_fix(releases, tmp_path):
    directory, _ = releases["small"]
    with pytest.raises(ConfigError, match=r"unknown released size 'smal' .did you mean small"):
        released_config("smal")
    with pytest.raises(ConfigError, match=r"neither a released size .* nor a JSON file"):
        convert_tf1_checkpoint(directory, None, config="smal")
    with pytest.raises(ConfigError, match=r"generator_hidden_sise .did you mean generator_hidden_size"):
        convert_tf1_checkpoint(directory, None, config={"model_size": "small", "generator_hidden_sise": 0.5})
    with pytest.raises(ConfigError, match="model='critic': choose one of discriminator, generator"):
        convert_tf1_checkpoint(directory, None, model="critic", config="small")


def test_without_tensorflow_the_error_names_the_extra(monkeypatch, releases):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ConfigError, match=r"pip install 'convbert\[tf\]'"):
        convert_tf1_checkpoint(releases["small"][0], None, config="small")


# -- the command --------------------------------------------------------------------------------------------
def test_cli_converts_and_reports_mistakes_in_one_line(releases, tmp_path, capsys):
    directory, _ = releases["medium-small"]
    out = tmp_path / "out"
    hparams = hparams_file(tmp_path, "medium-small")
    main([str(directory / "model.ckpt-1000"), str(out), "--config", str(hparams), "--model", "generator"])
    assert "wrote" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["architectures"] == ["ConvBertForMaskedLM"]

    with pytest.raises(SystemExit) as exit_:
        main([str(directory), str(tmp_path / "out2"), "--size", "small"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("convbert-convert: error: checkpoint ")
    assert "does not fit the discriminator of conv-bert-small" in err
    assert "electra/embeddings/word_embeddings: expected (30522, 128), found (64, 16)" in err
    assert "Traceback" not in err

    with pytest.raises(SystemExit) as exit_:  # argparse: --size or --config is required
        main([str(directory), str(tmp_path / "out3")])
    assert exit_.value.code == 2


def test_cli_as_a_module_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "convbert.cli.convert", str(tmp_path / "missing.ckpt"),
                           str(tmp_path / "out"), "--size", "small"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("convbert-convert: error: no TF1 checkpoint at ")
    assert "Traceback" not in done.stderr
