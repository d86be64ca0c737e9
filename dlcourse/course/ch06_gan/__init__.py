"""Chapter 6: helpers, widgets and exercises of notebooks/06_gan.ipynb."""
