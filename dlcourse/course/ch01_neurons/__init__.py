"""Chapter 1: helpers, widgets and exercises of notebooks/01_neurons.ipynb."""
