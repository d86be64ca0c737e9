"""Chapter 7: helpers, widgets and exercises of notebooks/07_mnist_project.ipynb."""
