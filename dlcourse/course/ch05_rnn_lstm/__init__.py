"""Chapter 5: helpers, widgets and exercises of notebooks/05_rnn_lstm.ipynb."""
