"""``autocast_off(device)``: run a region in its inputs' own dtype, on any device.

``torch.autocast(device_type, enabled=False)`` raises for device types without autocast (``meta``, used to
check that the CUDA path holds no CPU-only kernel), where there is nothing to turn off.
"""

from __future__ import annotations

import contextlib

import torch


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
