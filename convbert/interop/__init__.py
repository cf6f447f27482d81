"""Interoperability with other implementations' checkpoints (Hugging Face transformers)."""
