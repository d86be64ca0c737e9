"""``dlcourse.nn``: the course's layers in NumPy, named and shaped as in ``torch.nn``."""

from . import functional, init, utils
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiheadAttention
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NonFiniteInputError, NonFiniteLossError
from .module import Module, Sequential
from .normalization import LayerNorm
from .parameter import Parameter
from .pooling import AvgPool2d, MaxPool2d
from .positional import PositionalEncoding, sinusoidal_positional_encoding
from .recurrent import GRU, LSTM, RNN
from .rnn_cells import GRUCell, LSTMCell, RNNCell
from .shape import Flatten
from .transformer import TransformerEncoder, TransformerEncoderLayer, generate_square_subsequent_mask

__all__ = [
    "functional", "init", "utils",
    "Parameter", "Module", "Sequential",
    "Linear",
    "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "GELU", "Softmax",
    "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "NonFiniteLossError", "NonFiniteInputError",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout", "BatchNorm1d", "BatchNorm2d",
    "Embedding", "LayerNorm", "MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
    "PositionalEncoding", "sinusoidal_positional_encoding", "generate_square_subsequent_mask",
]
