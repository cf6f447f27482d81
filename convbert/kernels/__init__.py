"""Kernels: the tensor operations the blocks are made of (linear, dropout, sequence masks, convolutions).

Nothing here is a block or registers anything; blocks (``convbert.blocks``) import what they need.
"""
