"""Built-in blocks: each module implements the ``convbert_register_blocks`` hook for its blocks."""
