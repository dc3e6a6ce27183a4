"""din-convert: turn a DeepCTR-Torch or torch-rechub state_dict into a din model file.

Only numpy is needed; torch is imported lazily, and only to read a .pt/.pth file.
"""


class Refusal(Exception):
    """The model cannot be written so that din reproduces it exactly; the message says why."""
