"""convbert.tf: the TensorFlow classes read the PyTorch classes' checkpoints and give the same numbers.

Skipped when TensorFlow is not installed (``pip install 'convbert[tf]'``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_config_kwargs

import convbert

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
ctf = importlib.import_module("convbert.tf")  # with TensorFlow present, a failure here is a real error
try:  # the shared CI machine has two cores
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:  # TensorFlow already initialised by an earlier test module
    pass

CLASSES = [
    "ConvBertModel", "ConvBertForMaskedLM", "ConvBertForSequenceClassification",
    "ConvBertForTokenClassification", "ConvBertForQuestionAnswering", "ConvBertForMultipleChoice",
]
CONFIGS = {
    "ratio1-k3-emb16-maskpad": dict(
        head_ratio=1, conv_kernel_size=3, num_groups=1, embedding_size=16, conv_mask_padding=True),
    "ratio2-k5-groups2-emb24-gelunew": dict(
        head_ratio=2, conv_kernel_size=5, num_groups=2, embedding_size=24, hidden_act="gelu_new"),
    "ratio4-k9-groups2-maskpad-relu-3labels-untied": dict(
        head_ratio=4, conv_kernel_size=9, num_groups=2, conv_mask_padding=True, hidden_act="relu",
        num_labels=3, tie_word_embeddings=False),
}
TOL = 1e-4


def _config(config_id: str, name: str) -> convbert.ConvBertConfig:
    kwargs = tiny_config_kwargs(**CONFIGS[config_id])
    if name == "ConvBertForQuestionAnswering":
        kwargs["num_labels"] = 2
    return convbert.ConvBertConfig(**kwargs)


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Random values everywhere (LayerNorms and biases too) so that no mis-mapped tensor hides."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _inputs(name: str, batch, num_labels: int) -> dict:
    """A right-padded batch with token types, every output asked for, and the class's labels."""
    ids, mask, types = batch
    g = torch.Generator().manual_seed(2)
    args = dict(input_ids=ids, attention_mask=mask, token_type_ids=types,
                output_hidden_states=True, output_attentions=True)
    if name == "ConvBertForMultipleChoice":
        args = {k: v.unsqueeze(1).expand(-1, 2, -1).clone() if torch.is_tensor(v) else v
                for k, v in args.items()}
        args["input_ids"][:, 1, 1] = 7  # the two choices differ
        args["labels"] = torch.tensor([1, 0, 1])
    elif name == "ConvBertForMaskedLM":
        args["labels"] = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, -100)
        args["labels"][0, 0] = ids[0, 0]
    elif name == "ConvBertForSequenceClassification":
        args["labels"] = torch.randint(0, num_labels, (3,), generator=g)
    elif name == "ConvBertForTokenClassification":
        args["labels"] = torch.randint(0, num_labels, ids.shape, generator=g).masked_fill(mask == 0, -100)
    elif name == "ConvBertForQuestionAnswering":
        args["start_positions"] = torch.tensor([1, 3, 40])  # 40: outside the input, ignored
        args["end_positions"] = torch.tensor([2, 6, 4])
    return args


def _numpy(args: dict) -> dict:
    return {k: v.numpy() if torch.is_tensor(v) else v for k, v in args.items()}


def _max_diff(ref, out) -> float:
    """Largest difference over every output field (tuples included); the fields must be the same."""
    assert list(ref.keys()) == list(out.keys())
    worst = 0.0
    for key in ref:
        a, b = ref[key], out[key]
        pairs = zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]
        for x, y in pairs:
            assert tuple(x.shape) == tuple(y.shape), key
            worst = max(worst, float(np.abs(x.detach().numpy() - np.asarray(y)).max()))
    return worst


@pytest.mark.parametrize("config_id", list(CONFIGS))
@pytest.mark.parametrize("name", CLASSES)
def test_pytorch_checkpoint_loads_with_same_outputs_and_back(name, config_id, batch, tmp_path):
    config = _config(config_id, name)
    torch.manual_seed(0)
    pt = getattr(convbert, name)(config).eval()
    _randomize(pt, seed=3)
    pt.save_pretrained(tmp_path / "pt")
    model = getattr(ctf, "TF" + name).from_pretrained(tmp_path / "pt")
    args = _inputs(name, batch, config.num_labels)
    with torch.no_grad():
        ref = pt(**args)
    out = model(**_numpy(args))
    assert _max_diff(ref, out) <= TOL

    model.save_pretrained(tmp_path / "tf")  # and back: TF save -> PyTorch load -> the same weights
    again = getattr(convbert, name).from_pretrained(tmp_path / "tf").eval()
    original = pt.state_dict()
    for key, value in again.state_dict().items():
        assert torch.equal(value, original[key]), key
    with torch.no_grad():
        assert _max_diff(again(**args), out) <= TOL


@pytest.mark.parametrize("name", CLASSES)
def test_transformers_checkpoints_both_ways(name, batch, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = _config("ratio2-k5-groups2-emb24-gelunew", name)
    hf = getattr(transformers, name)(transformers.ConvBertConfig(**config.to_dict())).eval()
    _randomize(hf, seed=4)
    if hasattr(hf, "tie_weights"):
        hf.tie_weights()
    hf.save_pretrained(tmp_path / "hf")
    model = getattr(ctf, "TF" + name).from_pretrained(tmp_path / "hf")
    args = _inputs(name, batch, config.num_labels)
    with torch.no_grad():
        ref = hf(**args)
    out = model(**_numpy(args))
    assert _max_diff(ref, out) <= TOL
    model.save_pretrained(tmp_path / "tf")
    again = getattr(transformers, name).from_pretrained(tmp_path / "tf").eval()
    with torch.no_grad():
        assert _max_diff(again(**args), out) <= TOL


@pytest.mark.parametrize("problem_type", ["regression", "multi_label_classification"])
def test_sequence_classification_problem_types(problem_type, batch, tmp_path):
    num_labels = 1 if problem_type == "regression" else 3
    pt = convbert.ConvBertForSequenceClassification(
        convbert.ConvBertConfig(**tiny_config_kwargs(num_labels=num_labels))).eval()
    _randomize(pt, seed=5)
    pt.save_pretrained(tmp_path)
    model = ctf.TFConvBertForSequenceClassification.from_pretrained(tmp_path)
    ids, mask, types = batch
    labels = torch.rand(3, num_labels) if num_labels > 1 else torch.rand(3)
    if problem_type == "multi_label_classification":
        labels = labels.round()
    with torch.no_grad():
        ref = pt(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    out = model(input_ids=ids.numpy(), attention_mask=mask.numpy(), token_type_ids=types.numpy(),
                labels=labels.numpy())
    assert _max_diff(ref, out) <= TOL
    assert model.config.problem_type == pt.config.problem_type == problem_type


def test_training_gradients_match_pytorch(batch, tmp_path):
    """Dropout off, train mode: the same loss and the same gradient for every weight."""
    config = convbert.ConvBertConfig(**tiny_config_kwargs(
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_groups=2, conv_mask_padding=True))
    pt = convbert.ConvBertForMaskedLM(config)
    _randomize(pt, seed=6)
    pt.save_pretrained(tmp_path)
    model = ctf.TFConvBertForMaskedLM.from_pretrained(tmp_path)
    args = _inputs("ConvBertForMaskedLM", batch, 2)
    pt(**args).loss.backward()
    from convbert.interop import hf_keys

    expected, _ = hf_keys.to_hf({n: p.grad for n, p in pt.named_parameters()}, "masked_lm")
    weights = model.hf_weights()
    with tf.GradientTape() as tape:
        loss = model(**_numpy(args), training=True).loss
    grads = tape.gradient(loss, [v for v, _ in weights.values()])
    for (name, (_, layout)), grad in zip(weights.items(), grads, strict=True):
        want = layout.to_keras(expected[name].numpy())
        np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), want, atol=1e-5, err_msg=name)


def test_dict_inputs_tuples_and_tf_function(batch):
    """Hugging Face's TF calling conventions: a dict as first argument, return_dict=False, graph mode."""
    model = ctf.TFConvBertForTokenClassification(convbert.ConvBertConfig(**tiny_config_kwargs()))
    ids, mask, types = (t.numpy() for t in batch)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    eager = model(inputs)
    as_tuple = model(ids, attention_mask=mask, token_type_ids=types, return_dict=False)
    graph = tf.function(lambda x: model(x))(inputs)
    assert type(graph) is type(eager)
    np.testing.assert_allclose(as_tuple[0], eager.logits)
    np.testing.assert_allclose(graph.logits, eager.logits, atol=1e-6)


def test_fit_two_steps_with_the_models_own_loss(batch):
    """Compile without a loss: the model's own is used, from labels in the input dict (HF's TF style) or y."""
    model = ctf.TFConvBertForSequenceClassification(convbert.ConvBertConfig(**tiny_config_kwargs()))
    ids, mask, types = (np.concatenate([t.numpy(), t.numpy()]) for t in batch)
    x = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
         "labels": np.array([0, 1, 1, 0, 1, 0])}
    word, out_proj = model.convbert.embeddings.word_embeddings, model.head.out_proj.kernel
    word_before, out_proj_before = word.numpy().copy(), out_proj.numpy().copy()
    model.compile(optimizer=ctf.keras.optimizers.SGD(0.1), jit_compile=False)  # SGD: Adam traces for seconds
    history = model.fit(x, batch_size=3, epochs=1, verbose=0)  # 2 steps
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(out_proj.numpy(), out_proj_before)
    assert not np.array_equal(word.numpy()[ids[0, 0]], word_before[ids[0, 0]])
    np.testing.assert_array_equal(word.numpy()[0], word_before[0])  # padding row: as PyTorch's padding_idx
    labels = x.pop("labels")  # Keras's (x, y) form: y is the labels
    expected = float(model(x, labels=labels).loss)
    assert model.evaluate(x, labels, batch_size=6, verbose=0) == pytest.approx(expected, abs=1e-5)
    assert model.predict(x, batch_size=3, verbose=0)["logits"].shape == (6, 2)


def test_exported_saved_model_serves_the_same_logits(batch, tmp_path):
    model = ctf.TFConvBertForMaskedLM(convbert.ConvBertConfig(**tiny_config_kwargs(conv_mask_padding=True)))
    ids, mask, types = (t.numpy().astype(np.int32) for t in batch)
    model.export(tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    out = served.serve({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    expected = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    np.testing.assert_allclose(out["logits"].numpy(), expected.numpy(), atol=1e-5)


def test_base_checkpoint_in_our_own_names_loads_under_a_new_head(batch, tmp_path, caplog):
    """A base model saved with hf_format=False (convbert's module names) -> a task class, head initialised."""
    pt = convbert.ConvBertModel(convbert.ConvBertConfig(**tiny_config_kwargs())).eval()
    _randomize(pt, seed=7)
    pt.save_pretrained(tmp_path, hf_format=False)
    model = ctf.TFConvBertForTokenClassification.from_pretrained(tmp_path)
    assert "newly initialised head weights" in caplog.text
    ids, mask, types = batch
    with torch.no_grad():
        ref = pt(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.numpy()
    out = model(input_ids=ids.numpy(), attention_mask=mask.numpy(), token_type_ids=types.numpy(),
                output_hidden_states=True)
    np.testing.assert_allclose(out.hidden_states[-1], ref, atol=TOL)


def test_custom_composition_is_refused_with_the_reason():
    composition = convbert.ConvBertConfig(**tiny_config_kwargs()).encoder_composition()
    composition["layer"]["mixer"]["parts"][1]["name"] = "lightweight_conv"
    config = convbert.ConvBertConfig(**tiny_config_kwargs(), composition=composition)
    with pytest.raises(convbert.NotExpressibleError, match="standard ConvBERT composition"):
        ctf.TFConvBertModel(config)


def test_pickled_weights_are_refused(tmp_path):
    convbert.ConvBertConfig(**tiny_config_kwargs()).save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(convbert.CheckpointError, match="never opens"):
        ctf.TFConvBertModel.from_pretrained(tmp_path)


def test_core_package_does_not_import_tensorflow():
    code = "import sys, convbert; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
