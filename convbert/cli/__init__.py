"""The command-line programs, one module each (their console scripts in pyproject.toml):

    convbert-train    convbert.cli.train    -> convbert.train.cli (the Hydra entry point: training side)
    convbert-report   convbert.cli.report   -> convbert.train.report
    convbert-prepare  convbert.cli.prepare  -> convbert.train.prepare_cli (issue 25)
    convbert-blocks   convbert.cli.blocks   the registered blocks and tasks, and the block contract suite
    convbert-predict  convbert.cli.predict  pipelines over JSON lines
    convbert-export   convbert.cli.export   ONNX / torch.export
    convbert-convert  convbert.cli.convert  the original release's TF1 checkpoints -> our format

Each is run as ``python -m convbert.cli.<name>`` too. Importing this package imports none of them.
"""
