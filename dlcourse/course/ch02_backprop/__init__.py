"""Chapter 2: helpers, widgets and exercises of notebooks/02_backprop.ipynb."""
