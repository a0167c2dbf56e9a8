"""The CTC recogniser (``kwslab.models.ctc``): the model and the decoders share the vocabulary's blank, and it
overfits one batch to the exact transcripts."""
from __future__ import annotations

import pytest
import torch

from kwslab.data.datamodules import CTCDataModule
from kwslab.decoding.greedy import greedy
from kwslab.models import CTCRecognizer
from kwslab.text import CharVocab
from tests.support.ctc_task import CHARS


@pytest.mark.parametrize("blank_first", [True, False])
def test_model_and_decoders_share_the_vocabulary_blank(blank_first):
    vocab = CharVocab(CHARS, blank_first=blank_first)
    model = CTCRecognizer(len(vocab), vocab.tokens, {"n_mfcc": 13})
    assert model.vocab == vocab and model.vocab.blank == vocab.blank == (0 if blank_first else len(CHARS))
    assert model.hparams["labels"] == vocab.tokens
    with pytest.raises(ValueError, match="num_outputs"):
        CTCRecognizer(len(vocab) + 1, vocab.tokens, {"n_mfcc": 13})


def test_overfit_one_batch_reaches_the_exact_transcripts(ctc_data):
    dm = CTCDataModule(str(ctc_data["train"]), chars=CHARS, batch_size=8, bucket_by_length=False,
                       features={"kind": "log_mel", "n_mels": 24, "cmvn": True})
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    feats, feat_lens, targets, target_lens = batch
    torch.manual_seed(0)
    model = CTCRecognizer(dm.num_outputs, dm.labels, dm.feature_config.to_dict(), conv_channels=(32, 32),
                          rnn_hidden=48, rnn_layers=1, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    refs = [dm.vocab.decode(t[:n].tolist()) for t, n in zip(targets, target_lens.tolist())]
    for step in range(300):
        loss = model._step(batch, "train")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24:
            model.eval()
            with torch.no_grad():
                lp, lens = model(feats, feat_lens)
            model.train()
            hyps = [greedy(lp[i, :lens[i]].numpy(), dm.vocab) for i in range(len(refs))]
            if hyps == refs:
                break
    assert hyps == refs, list(zip(refs, hyps))
