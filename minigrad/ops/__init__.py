"""The op families: each op's forward (on arrays) and backward (with Tensor ops) side by side."""
