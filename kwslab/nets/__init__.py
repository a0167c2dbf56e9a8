"""Plain ``nn.Module`` networks. Nothing here knows about Lightning, files or features."""
from kwslab.nets.cnn import KeywordCNN

__all__ = ["KeywordCNN"]
