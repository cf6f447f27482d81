"""Built-in task heads: each module implements the ``convbert_register_blocks`` hook for its heads."""
