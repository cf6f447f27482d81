"""convbert: ConvBERT as a composition of registered blocks."""
