"""Keyword models on real voices they never heard: recall of each keyword and the share of other words accepted as a
keyword, on Speech Commands speakers held out of every training (prints a markdown table; JSON with --out).

    python scripts/bench_real_keywords.py --ckpt checkpoints/cnn/last.ckpt --label "espeak CNN (old default)"
    python scripts/bench_real_keywords.py --ckpt A.ckpt B.ckpt C.ckpt --val data/tts_keywords/marvin/val.csv \\
        --target-false-accepts 0.02

Data: ``--data`` (default ``data/sc35_kws_all``) holds the manifests of
``python -m kwslab.prepare speech-commands --root ../shared/data/speech_commands --task 35 --val-fraction 0.1
--test-fraction 0.25 --out data/sc35_kws_all``: the same speaker split as the embedding's data (``data/sc35_kws``,
which only leaves out the words the embedding must never hear), with every word. Scored clips:

- a keyword's real recordings: its clips of the test speakers; for a word in ``--never-heard`` (default: the words
  the embedding was kept from: marvin, sheila, house, wow) every speaker's clips, since no recording of it was
  used anywhere;
- other words: the test speakers' clips of every word that is not one of the model's keywords.

``--threshold-on`` says how a clip is accepted as a keyword, and where a threshold comes from (never from the clips
scored here):

- ``top`` (default): when the keyword is the model's top class (what ``python -m kwslab.predict`` reports);
- otherwise, when the likeliest keyword's probability reaches the threshold (a detector's score, whatever class is
  on top), with the threshold chosen as follows.
- ``real-val``: the lowest one (in steps of 0.01) at which at most ``--target-false-accepts`` of the validation
  speakers' clips of other words (``--data``'s ``val.csv``: real audio, speakers disjoint from the test's) are accepted;
- ``tts-val``: the same on the ``_unknown_`` and ``_silence_`` clips of the model's own validation manifest
  (``--val``, e.g. its TTS corpus's ``val.csv``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "data" / "sc35_kws_all"
NEVER_HEARD = ("marvin", "sheila", "house", "wow")
SPECIAL = ("_silence_", "_unknown_")
GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)


def prepare_command(data: Path) -> str:
    return ("python -m kwslab.prepare speech-commands --root ../shared/data/speech_commands --task 35 "
            f"--val-fraction 0.1 --test-fraction 0.25 --out {data}")


def accepted(probs: np.ndarray, labels: list[str], keywords: list[str], threshold: float | None) -> list[str | None]:
    """Per clip, the keyword it is accepted as, or None. ``threshold`` None: the top class, when it is a keyword;
    a number: the likeliest keyword, when its probability reaches it."""
    if threshold is None:
        top = probs.argmax(axis=1)
        return [labels[t] if labels[t] in keywords else None for t in top]
    cols = [labels.index(k) for k in keywords]
    best = probs[:, cols].argmax(axis=1)
    return [keywords[b] if probs[i, cols[b]] >= threshold else None for i, b in enumerate(best)]


def choose_threshold(probs: np.ndarray, labels: list[str], keywords: list[str], negatives: np.ndarray,
                     target: float) -> float:
    """The lowest grid threshold at which at most ``target`` of the ``negatives`` rows are accepted."""
    for t in GRID:
        acc = accepted(probs[negatives], labels, keywords, float(t))
        if sum(a is not None for a in acc) <= target * max(1, int(negatives.sum())):
            return float(t)
    return 1.0


def probabilities(model: Any, paths: list[Path]) -> np.ndarray:
    """Class probabilities of one loaded model, or the mean of several (an ensemble with the same labels)."""
    from kwslab.inference.scoring import ensemble_probabilities

    return ensemble_probabilities(model if isinstance(model, list) else [model], paths).numpy()


def score(ckpt: Path | list[Path], data: Path, never_heard: tuple[str, ...], val: Path | None, target: float,
          threshold_on: str = "top") -> dict[str, Any]:
    """One model's figures; a list of checkpoints is scored as one ensemble (mean probabilities)."""
    from kwslab.data.manifest import read_manifest
    from kwslab.inference import load_model

    models = [load_model(c) for c in (ckpt if isinstance(ckpt, list) else [ckpt])]
    if any(list(m.labels) != list(models[0].labels) for m in models):
        raise SystemExit("error: --ensemble needs checkpoints with the same labels")
    model = models if len(models) > 1 else models[0]
    labels = list(models[0].labels)
    keywords = [w for w in labels if w not in SPECIAL]
    threshold, val_note = None, "top class"
    if threshold_on != "top":
        if threshold_on == "real-val":
            rows = [r for r in read_manifest(data / "val.csv", need_keyword=True) if r.keyword not in keywords]
            negatives = np.ones(len(rows), bool)
            what = f"real validation-speaker clips of other words ({data / 'val.csv'})"
        else:
            if val is None:
                raise SystemExit("error: --threshold-on tts-val needs --val MANIFEST")
            rows = read_manifest(val, need_keyword=True)
            negatives = np.array([r.keyword in SPECIAL for r in rows])
            what = f"_unknown_/_silence_ clips of {val}"
        probs = probabilities(model, [r.path for r in rows])
        threshold = choose_threshold(probs, labels, keywords, negatives, target)
        val_note = f"<= {100 * target:g}% of {int(negatives.sum())} {what} accepted"
    test = read_manifest(data / "test.csv", need_keyword=True)
    everyone = [r for s in ("train", "val", "test") for r in read_manifest(data / f"{s}.csv", need_keyword=True)]
    result: dict[str, Any] = {"ckpt": [str(c) for c in ckpt] if isinstance(ckpt, list) else str(ckpt),
                              "threshold": threshold, "threshold_from": val_note,
                              "keywords": {}, "data": str(data)}
    for k in keywords:
        rows = [r for r in (everyone if k in never_heard else test) if r.keyword == k]
        if not rows:
            result["keywords"][k] = {"clips": 0, "recall": None}
            continue
        acc = accepted(probabilities(model, [r.path for r in rows]), labels, keywords, threshold)
        result["keywords"][k] = {"clips": len(rows), "recall": sum(a == k for a in acc) / len(rows),
                                 "speakers": len({r.speaker for r in rows}),
                                 "source": "every speaker (never heard)" if k in never_heard else "test speakers"}
    others = [r for r in test if r.keyword not in keywords and r.keyword not in SPECIAL]
    acc = accepted(probabilities(model, [r.path for r in others]), labels, keywords, threshold)
    result["other_words"] = {"clips": len(others), "accepted": sum(a is not None for a in acc),
                             "rate": sum(a is not None for a in acc) / max(1, len(others)),
                             "as": {k: sum(a == k for a in acc) for k in keywords}}
    return result


def table(results: list[dict[str, Any]], labels: list[str]) -> str:
    lines = ["| model | keyword | real clips (speakers) | recall | other-word clips accepted as a keyword "
             "| threshold |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for res, label in zip(results, labels):
        ow = res["other_words"]
        for k, c in res["keywords"].items():
            recall = "-" if c["recall"] is None else f"{100 * c['recall']:.1f}%"
            t = "top class" if res["threshold"] is None else f"{res['threshold']:g} ({res['threshold_from']})"
            lines.append(f"| {label} | `{k}` | {c['clips']} ({c.get('speakers', 0)}, {c.get('source', '-')}) | "
                         f"{recall} | {100 * ow['rate']:.1f}% ({ow['accepted']} of {ow['clips']}) | {t} |")
    return "\n".join(lines)


def summary(results: list[dict[str, Any]]) -> str:
    """Mean ± sd over checkpoints (seeds) of each keyword's recall and of the other-word acceptance."""
    out = []
    for k in results[0]["keywords"]:
        rec = [r["keywords"][k]["recall"] for r in results if r["keywords"].get(k, {}).get("recall") is not None]
        if len(rec) > 1:
            out.append(f"`{k}` recall {100 * statistics.mean(rec):.1f}% ± {100 * statistics.stdev(rec):.1f}")
    fa = [r["other_words"]["rate"] for r in results]
    if len(fa) > 1:
        out.append(f"other words accepted {100 * statistics.mean(fa):.1f}% ± {100 * statistics.stdev(fa):.1f}")
    return f"mean ± sd over {len(results)} checkpoints: " + "; ".join(out) if out else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", nargs="+", required=True, help="keyword checkpoints (e.g. one per seed)")
    p.add_argument("--label", nargs="+", help="a name per checkpoint for the table (default: the file names)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="real clips' manifests")
    p.add_argument("--never-heard", default=",".join(NEVER_HEARD),
                   help="comma-separated words no model's training data had (scored on every speaker)")
    p.add_argument("--threshold-on", choices=("top", "real-val", "tts-val"), default="top",
                   help="where the acceptance threshold is chosen (see above; default top: no threshold)")
    p.add_argument("--val", type=Path, nargs="+", help="tts-val: the validation manifest per checkpoint (or one for "
                                                       "all)")
    p.add_argument("--target-false-accepts", type=float, default=0.02,
                   help="share of validation negatives a threshold may accept (default 0.02)")
    p.add_argument("--ensemble", action="store_true",
                   help="score the checkpoints as one model (their probabilities averaged), e.g. a head's seeds")
    p.add_argument("--out", type=Path, help="write the numbers here as JSON")
    a = p.parse_args(argv)
    if not all((a.data / f"{s}.csv").is_file() for s in ("train", "val", "test")):
        sys.exit(f"error: no manifests in {a.data}; prepare them first: {prepare_command(a.data)}")
    labels = a.label or [Path(c).name for c in a.ckpt]
    if len(labels) != len(a.ckpt):
        sys.exit("error: give one --label per --ckpt")
    vals = (a.val * len(a.ckpt) if a.val and len(a.val) == 1 else a.val) or [None] * len(a.ckpt)
    if len(vals) != len(a.ckpt):
        sys.exit("error: give one --val manifest, or one per --ckpt")
    never = tuple(w for w in a.never_heard.split(",") if w)
    if a.ensemble:
        labels = [a.label[0] if a.label else f"ensemble of {len(a.ckpt)}"]
        results = [score([Path(c) for c in a.ckpt], a.data, never, vals[0], a.target_false_accepts, a.threshold_on)]
    else:
        results = [score(Path(c), a.data, never, v, a.target_false_accepts, a.threshold_on)
                   for c, v in zip(a.ckpt, vals)]
    print(table(results, labels))
    print(summary(results))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"results": results, "labels": labels}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
