"""Plain ``nn.Module`` networks. Nothing here knows about Lightning, files or features."""
from kwslab.nets.cnn import KeywordCNN
from kwslab.nets.crnn import CRNN

__all__ = ["CRNN", "KeywordCNN"]
