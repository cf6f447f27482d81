"""Where the package's own files are: the Hydra config tree that ``convbert-train`` composes from."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent / "conf"
