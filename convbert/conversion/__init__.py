"""Models made from other releases' checkpoints (the original TF1 ConvBERT): above the model core, since a
conversion builds the model it fills."""
