"""Chapter 3: helpers, widgets and exercises of notebooks/03_optimizers.ipynb."""
