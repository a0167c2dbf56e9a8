"""The keyword classifier takes its network as an argument: a network from a package kwslab knows nothing about,
selected in the config by ``class_path``, trains, exports to ONNX, streams and adapts with no change to kwslab. And
checkpoints written before ``net`` existed still load."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kwslab.audio import write_wav
from kwslab.fit import main
from kwslab.inference import load_model
from tests.support.checkpoints import write_checkpoint
from tests.support.keyword_task import FEATURES, SR, tiny_config, tone_stream

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def user_net_checkpoint(tone_data, tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures_pkg"))
        cli = main(["--config", str(tiny_config(tone_data, tmp_path_factory.mktemp("user_net"), epochs=6)),
                    "--test=false", "--model.net.class_path=userpkg.nets.DilatedTCN",
                    "--model.net.init_args.width=10"])
    assert type(cli.model.net).__module__ == "userpkg.nets"
    best = cli.trainer.checkpoint_callback.best_model_path
    assert best
    return Path(best)


@pytest.mark.slow
def test_a_network_from_the_users_package_trains_exports_streams_and_adapts(user_net_checkpoint, tone_data,
                                                                            tmp_path, monkeypatch):
    from kwslab.adaptation import ADAPTATION_KEY, adapt_checkpoint
    from kwslab.checkpoint import CheckpointError
    from kwslab.data.manifest import read_manifest
    from kwslab.export import export_onnx
    from kwslab.export import main as export_main
    from kwslab.inference.backend import onnx_backend, torch_backend
    from kwslab.inference.keywords import detect_stream, predict_files, predict_files_onnx

    ckpt = user_net_checkpoint
    monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures_pkg"))
    monkeypatch.delenv("KWSLAB_ALLOW_CLASSES", raising=False)
    with pytest.raises(CheckpointError, match=r"userpkg.nets.DilatedTCN.*--allow-class"):
        load_model(ckpt)  # fit trusted its own config; a checkpoint read later names classes only when allowed
    assert export_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "flag.onnx"),
                        "--allow-class", "userpkg.nets.DilatedTCN"]) == 0  # the commands' flag
    monkeypatch.setenv("KWSLAB_ALLOW_CLASSES", "userpkg")  # library use: the environment variable
    model = load_model(ckpt)
    assert model.kind == "keyword" and type(model.module.net).__name__ == "DilatedTCN"
    net = model.checkpoint["hyper_parameters"]["net"]  # plain data: loads with weights_only=True
    assert net["class_path"] == "userpkg.nets.DilatedTCN" and net["init_args"]["width"] == 10
    rows = read_manifest(tone_data["test"], need_keyword=True)
    files = [r.path for r in rows]

    torch_results, errors = predict_files(ckpt, files, model=model)
    assert not errors
    accuracy = np.mean([r["keyword"] == row.keyword for r, row in zip(torch_results, rows)])
    assert accuracy >= 0.8  # it learnt the tones

    onnx = tmp_path / "user.onnx"
    exported = export_onnx(ckpt, onnx)
    assert exported["kind"] == "keyword" and exported["max_abs_diff"] <= 1e-4
    onnx_results, _ = predict_files_onnx(onnx, files)
    assert [r["keyword"] for r in onnx_results] == [r["keyword"] for r in torch_results]

    stream = tone_stream(np.random.default_rng(3), [("high", 1.0, 1.3), ("low", 3.0, 3.3)], 5.0)
    write_wav(tmp_path / "stream.wav", stream, SR)
    by_torch = detect_stream(torch_backend(ckpt, threads=1), tmp_path / "stream.wav", threshold=0.5, hop=0.05)
    by_onnx = detect_stream(onnx_backend(onnx), tmp_path / "stream.wav", threshold=0.5, hop=0.05)
    assert by_torch["duration"] == pytest.approx(len(stream) / SR, abs=0.01)
    assert [d["keyword"] for d in by_torch["detections"]] == [d["keyword"] for d in by_onnx["detections"]]
    assert [d["keyword"] for d in by_torch["detections"]] == ["high", "low"]

    adapted = tmp_path / "adapted.ckpt"
    info = adapt_checkpoint(ckpt, adapted, files[:8])
    assert info["batchnorm_layers"] == 3  # the stem's and both blocks' BatchNorms, found by a forward pass
    after = load_model(adapted)
    assert after.checkpoint[ADAPTATION_KEY]["model"] == "keyword"
    name = "net.stem.1.running_mean"
    assert not torch.equal(after.module.state_dict()[name], model.module.state_dict()[name])


def _legacy_hparams(**net_args) -> dict:
    return {"num_outputs": 3, "labels": ["a", "b", "c"], "feature_config": FEATURES, **net_args}


@pytest.mark.parametrize("class_path, net_class, net_args", [
    ("kwslab.models.KeywordClassifier", "kwslab.nets.cnn.KeywordCNN",
     {"channels": (8, 8), "kernel_size": 3, "pool": 2, "hidden": 8, "dropout": 0.0}),
    ("kwslab.models.keyword2d.KeywordClassifier2d", "kwslab.nets.cnn2d.KeywordCNN2d",
     {"channels": (4, 8), "kernel_size": 3, "pool": 2, "hidden": 0, "dropout": 0.0}),
])
def test_checkpoints_from_before_net_existed_still_load(tmp_path, class_path, net_class, net_args):
    """Old checkpoints kept the CNN's arguments as the classifier's own (and KeywordClassifier2d picked the 2-D
    CNN); the weights' names never changed, so they load into today's classifier and give the same outputs."""
    from kwslab.models import KeywordClassifier

    torch.manual_seed(0)
    today = KeywordClassifier(3, ["a", "b", "c"], FEATURES,
                              net={"class_path": net_class, "init_args": dict(net_args)}).eval()
    ckpt = write_checkpoint(tmp_path / "old.ckpt", today, class_path, _legacy_hparams(**net_args))
    loaded = load_model(ckpt)
    assert type(loaded.module) is KeywordClassifier
    assert f"{type(loaded.module.net).__module__}.{type(loaded.module.net).__name__}" == net_class
    x = torch.randn(2, 13, 51)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), today(x))


@pytest.mark.slow
def test_fit_saves_one_feature_setting_per_checkpoint(user_net_checkpoint):
    ckpt = torch.load(user_net_checkpoint, map_location="cpu", weights_only=True)
    assert "feature_config" in ckpt["hyper_parameters"]
    assert "features" not in ckpt["datamodule_hyper_parameters"]


def test_a_network_that_cannot_be_built_is_named(tmp_path):
    from kwslab.models import KeywordClassifier
    from kwslab.models.base import allowed_classes

    with allowed_classes(["nowhere", "torch.nn.Linear"]):
        with pytest.raises(ValueError, match="model.net: 'nowhere.Net' cannot be imported"):
            KeywordClassifier(3, feature_config=FEATURES, net={"class_path": "nowhere.Net", "init_args": {}})
        with pytest.raises(ValueError, match="is not a torch.nn.modules.module.Module"):
            KeywordClassifier(3, feature_config=FEATURES, net={"class_path": "kwslab.models.base.resolve_class"})
        with pytest.raises(ValueError, match="freeze_backbone.*no `backbone`"):
            KeywordClassifier(3, feature_config=FEATURES, freeze_backbone=True,
                              net={"class_path": "torch.nn.Linear", "init_args": {}})


def test_a_network_class_outside_kwslab_is_refused_before_import_unless_allowed(tmp_path, monkeypatch):
    """A class path is data: one outside kwslab is refused before importlib sees it (the module never runs),
    naming the class and the flag; allowed by --allow-class (allowed_classes) or $KWSLAB_ALLOW_CLASSES."""
    import sys

    from kwslab.models import KeywordClassifier
    from kwslab.models.base import allowed_classes

    monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures_pkg"))
    monkeypatch.delenv("KWSLAB_ALLOW_CLASSES", raising=False)
    for name in [m for m in sys.modules if m == "userpkg" or m.startswith("userpkg.")]:
        monkeypatch.delitem(sys.modules, name)
    spec = {"class_path": "userpkg.nets.DilatedTCN", "init_args": {"width": 4}}
    with pytest.raises(ValueError, match=r"'userpkg.nets.DilatedTCN' is not a kwslab class.*--allow-class "
                                         r"userpkg.nets.DilatedTCN.*KWSLAB_ALLOW_CLASSES"):
        KeywordClassifier(3, feature_config=FEATURES, net=spec)
    assert "userpkg.nets" not in sys.modules  # refused before any import
    with pytest.raises(ValueError, match="not a kwslab class"):  # a prefix allows a package, not a lookalike
        with allowed_classes(["userpk"]):
            KeywordClassifier(3, feature_config=FEATURES, net=spec)
    with allowed_classes(["userpkg"]):
        assert type(KeywordClassifier(3, feature_config=FEATURES, net=spec).net).__name__ == "DilatedTCN"
    monkeypatch.setenv("KWSLAB_ALLOW_CLASSES", "other_pkg, userpkg.nets.DilatedTCN")
    assert type(KeywordClassifier(3, feature_config=FEATURES, net=spec).net).__name__ == "DilatedTCN"


def test_a_network_class_object_given_in_python_is_trusted_but_its_path_is_not(monkeypatch):
    """Handing the class itself to the classifier means the caller already imported it; a class path (as a
    checkpoint holds it) still needs the allow-list."""
    from kwslab.models import KeywordClassifier
    from kwslab.models.base import UntrustedClassError

    monkeypatch.syspath_prepend(str(REPO / "tests" / "fixtures_pkg"))
    monkeypatch.delenv("KWSLAB_ALLOW_CLASSES", raising=False)
    from userpkg.nets import DilatedTCN

    model = KeywordClassifier(3, ["a", "b", "c"], FEATURES, net=DilatedTCN)
    assert type(model.net) is DilatedTCN and model.hparams["net"]["class_path"] == "userpkg.nets.DilatedTCN"
    with pytest.raises(UntrustedClassError, match="--allow-class userpkg.nets.DilatedTCN"):
        KeywordClassifier(3, ["a", "b", "c"], FEATURES, net=dict(model.hparams["net"]))
