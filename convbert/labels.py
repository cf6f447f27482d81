"""The label value every loss skips: -100, PyTorch's ``cross_entropy`` default and Hugging Face's convention
(padding, unmasked tokens, sub-word pieces after a word's first). One definition for both frameworks."""

IGNORE_INDEX = -100
