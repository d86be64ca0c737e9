"""Chapter 4: helpers, widgets and exercises of notebooks/04_cnn.ipynb."""
