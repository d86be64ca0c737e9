"""Chapter 8: exercises, the associative-recall task, the small transformer and the attention explorer of
notebooks/08_attention.ipynb."""
