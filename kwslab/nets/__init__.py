"""Plain ``nn.Module`` networks. Nothing here knows about Lightning, files or features."""
from kwslab.nets.bcresnet import BCResNet
from kwslab.nets.cnn import KeywordCNN
from kwslab.nets.crnn import CRNN
from kwslab.nets.dscnn import DSCNN
from kwslab.nets.embedding_head import EmbeddingHead
from kwslab.nets.matchboxnet import MatchboxNet
from kwslab.nets.tcresnet import TCResNet

__all__ = ["BCResNet", "CRNN", "DSCNN", "EmbeddingHead", "KeywordCNN", "MatchboxNet", "TCResNet"]
