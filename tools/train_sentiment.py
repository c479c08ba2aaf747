"""Train the ``weibo`` sentiment model shipped as ``monitor/analysis/models/sentiment-v3.tsv.gz``.

Data: the labelled sets in ``../shared/data/sentiment`` (see that folder's DATA_SOURCES.md and docs/sentiment.md),
mapped to a binary polarity: negative = angry, sad, fear (SMP2020-EWECT); fear, disgust, sadness, anger (COVID-19
Weibo emotions); label 0 (weibo2018, waimai_10k). Positive = happy (SMP); optimism, gratitude (COVID); label 1.
SMP neutral and surprise, and COVID surprise, are neither: they train the model towards 0.5 (``neutral_weight``).
Each set is first reduced to distinct texts (``dedupe``).

A fixed, stratified 20 % of EACH set (by its original label, chosen by a SHA-256 of the set name, row number and text)
is held out and never trained on; ``bench/sentiment.py`` measures on it. A training text equal (after cleaning) to any
held-out text is dropped too.

Deterministic: inputs are read in file order and the vocabulary sorted, liblinear runs with a fixed seed, weights are
rounded to integers of 1e-4 and the gzip header carries no time or name: two runs write the same bytes.

Run:
    pip install -e '.[train]'
    python tools/train_sentiment.py                     # rebuild the shipped model
    python tools/train_sentiment.py --cv                # cross-validation on the training part (tuning)
    python tools/train_sentiment.py --limit 300 --out /tmp/m.tsv.gz   # a tiny model (tests)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.analysis.sentiment import (  # noqa: E402
    CHAIN_WEIGHT,
    MODEL_FILE,
    TextFeatures,
    analyse_text,
    feature_fingerprint,
)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sentiment"
DEFAULT_OUT = ROOT / "monitor" / "analysis" / MODEL_FILE
HOLDOUT_FRACTION = 0.2
SEED = 20240611

#: Hyper-parameters, chosen by ``--cv`` (leave-one-set-out and 5-fold cross-validation on the training part only).
PARAMS: dict[str, Any] = {
    "C": 2.0,
    "nb": 1.0,
    "min_df": 2,
    "neutral_weight": 0.5,
    "balance": "set_class",
    "scale": 1e-4,
    "prune": 0.002,
    "chain_weight": CHAIN_WEIGHT,
}

SMP_POLARITY = {"angry": 1, "sad": 1, "fear": 1, "happy": 0, "neutral": None, "surprise": None}
COVID_POLARITY = {"0": 1, "1": 1, "5": 1, "6": 1, "2": 0, "4": 0, "3": None}
BINARY_POLARITY = {"0": 1, "1": 0}  # weibo2018 and waimai: 1 positive, 0 negative; we predict "negative" = 1

#: name -> (path under the data folder, what it is)
SETS = {
    "smp_usual": ("smp2020_ewect/usual_eval_labeled.json", "SMP2020-EWECT general Weibo (eval)"),
    "smp_virus_eval": ("smp2020_ewect/virus_eval_labeled.json", "SMP2020-EWECT COVID Weibo (eval)"),
    "smp_virus_train": ("smp2020_ewect/virus_train.json", "SMP2020-EWECT COVID Weibo (train)"),
    "weibo2018": ("weibo2018/train.txt", "weibo2018 hand-labelled Weibo"),
    "covid19_weibo": ("covid19_weibo_emotions/labeledData.csv", "COVID-19 Weibo emotions"),
    "waimai_10k": ("waimai_10k/waimai_10k.csv", "waimai_10k delivery reviews"),
}


@dataclass(frozen=True)
class Row:
    """One labelled text: ``y`` is 1 negative, 0 positive, None neither (neutral/surprise)."""

    set: str
    index: int
    text: str
    label: str
    y: int | None


def _read_text(path: Path) -> str:
    # utf-8-sig: virus_train.json and labeledData.csv start with a BOM.
    return path.read_text(encoding="utf-8-sig")


def load_set(name: str, data_dir: Path = DEFAULT_DATA) -> list[Row]:
    """All rows of one set, in file order."""
    rel, _ = SETS[name]
    path = data_dir / rel
    rows: list[Row] = []
    if rel.endswith(".json"):
        for i, item in enumerate(json.loads(_read_text(path))):
            rows.append(Row(name, i, str(item["content"]), item["label"], SMP_POLARITY[item["label"]]))
    elif name == "weibo2018":
        for i, line in enumerate(_read_text(path).split("\n")):
            if not line.strip():
                continue
            _mid, label, text = line.split(",", 2)
            rows.append(Row(name, i, text, label, BINARY_POLARITY[label]))
    elif name == "covid19_weibo":
        reader = csv.reader(io.StringIO(_read_text(path)))
        next(reader)  # review,label
        for i, (text, label) in enumerate(reader):
            rows.append(Row(name, i, text, label, COVID_POLARITY[label]))
    elif name == "waimai_10k":
        reader = csv.reader(io.StringIO(_read_text(path)))
        next(reader)  # label,review
        for i, (label, text) in enumerate(reader):
            rows.append(Row(name, i, text, label, BINARY_POLARITY[label]))
    else:  # pragma: no cover - SETS and this function go together
        raise KeyError(name)
    return dedupe(rows)


def dedupe(rows: Sequence[Row]) -> list[Row]:
    """One row per distinct text (the first); a text whose copies disagree on the polarity is dropped altogether.

    covid19_weibo repeats about half of its texts; some copies of short texts (哈哈哈, 泪目) carry opposite labels.
    """
    polarities: dict[str, set[int | None]] = {}
    for r in rows:
        polarities.setdefault(r.text, set()).add(r.y)
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.text in seen or len(polarities[r.text]) > 1:
            continue
        seen.add(r.text)
        out.append(r)
    return out


def _key(row: Row) -> str:
    return hashlib.sha256(f"{SEED}|{row.set}|{row.index}|{row.text}".encode()).hexdigest()


def split_set(rows: Sequence[Row], fraction: float = HOLDOUT_FRACTION) -> tuple[list[Row], list[Row]]:
    """(train, held-out): the first ``fraction`` of each original label, ordered by a SHA-256 of set, row and text."""
    by_label: dict[str, list[Row]] = {}
    for row in rows:
        by_label.setdefault(row.label, []).append(row)
    held: set[tuple[str, int]] = set()
    for label in sorted(by_label):
        group = sorted(by_label[label], key=_key)
        held.update((r.set, r.index) for r in group[: round(len(group) * fraction)])
    train = [r for r in rows if (r.set, r.index) not in held]
    test = [r for r in rows if (r.set, r.index) in held]
    return train, test


def _clean_key(text: str) -> str:
    f = analyse_text(text)
    return f.own + "|" + f.chain + "|" + ",".join(f.specials)


def load_splits(data_dir: Path = DEFAULT_DATA) -> tuple[dict[str, list[Row]], dict[str, list[Row]]]:
    """Per set: the training rows and the held-out rows. Training rows whose cleaned text equals a held-out text of
    any set are dropped, so no held-out text is ever seen in training."""
    trains: dict[str, list[Row]] = {}
    tests: dict[str, list[Row]] = {}
    for name in SETS:
        trains[name], tests[name] = split_set(load_set(name, data_dir))
    held_keys = {_clean_key(r.text) for rows in tests.values() for r in rows}
    for name in SETS:
        trains[name] = [r for r in trains[name] if _clean_key(r.text) not in held_keys]
    return trains, tests


# --------------------------------------------------------------------------------------------------------------------
# Features and training (scikit-learn, numpy and scipy are needed here only: pip install -e '.[train]')
# --------------------------------------------------------------------------------------------------------------------


def doc_features(f: TextFeatures, chain_weight: float) -> tuple[dict[str, float], float, list[str]]:
    """The n-gram counts (chain ones at ``chain_weight``), the normaliser √n and the specials, as the model adds
    them up."""
    counts: dict[str, float] = dict(Counter(f.own_grams))
    n = float(len(f.own_grams))
    if f.chain_grams:
        for g in f.chain_grams:
            counts[g] = counts.get(g, 0.0) + chain_weight
        n += chain_weight * len(f.chain_grams)
    return counts, math.sqrt(max(n, 1.0)), f.specials


def build_vocab(docs: Sequence[tuple[dict[str, float], float, list[str]]], min_df: int) -> dict[str, int]:
    """Features present in at least ``min_df`` documents, sorted, numbered."""
    df: Counter[str] = Counter()
    for counts, _, specials in docs:
        df.update(counts.keys())
        df.update(specials)
    return {k: i for i, k in enumerate(sorted(k for k, c in df.items() if c >= min_df))}


def to_matrix(docs: Sequence[tuple[dict[str, float], float, list[str]]], vocab: dict[str, int]) -> Any:
    """CSR matrix of the documents over ``vocab``: n-gram count / √n, specials 1."""
    import numpy as np
    from scipy.sparse import csr_matrix

    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for counts, norm, specials in docs:
        cols: dict[int, float] = {}
        for g, c in counts.items():
            j = vocab.get(g)
            if j is not None:
                cols[j] = c / norm
        for s in specials:
            j = vocab.get(s)
            if j is not None:
                cols[j] = 1.0
        for j in sorted(cols):
            indices.append(j)
            data.append(cols[j])
        indptr.append(len(indices))
    return csr_matrix((np.array(data), np.array(indices, dtype=np.int64), np.array(indptr, dtype=np.int64)),
                      shape=(len(docs), len(vocab)))


def training_examples(rows: Iterable[Row], params: dict[str, Any]) -> tuple[list[Row], list[int], list[float]]:
    """Rows with targets and sample weights. Neutral rows appear twice, once per class, at ``neutral_weight / 2``.

    ``balance``: "none"; "class" (both classes weigh the same overall); "set_class" (every set weighs the same, and
    within a set both classes do; neutral rows are weighed against their set's labelled rows).
    """
    rows = list(rows)
    out_rows: list[Row] = []
    ys: list[int] = []
    ws: list[float] = []
    per_set_class: Counter[tuple[str, int | None]] = Counter((r.set, r.y) for r in rows)
    per_class: Counter[int | None] = Counter(r.y for r in rows)
    sets = sorted({r.set for r in rows})
    labelled = sum(1 for r in rows if r.y is not None)
    for r in rows:
        if params["balance"] == "set_class":
            n_set = per_set_class[(r.set, 0)] + per_set_class[(r.set, 1)]
            if r.y is None:
                base = 1.0 / max(n_set, 1) * labelled / len(sets)
            else:
                base = 0.5 / per_set_class[(r.set, r.y)] * labelled / len(sets)
        elif params["balance"] == "class":
            base = 1.0 if r.y is None else 0.5 * labelled / per_class[r.y]
        else:
            base = 1.0
        if r.y is None:
            if params["neutral_weight"] > 0:
                for y in (0, 1):
                    out_rows.append(r)
                    ys.append(y)
                    ws.append(base * params["neutral_weight"] / 2)
        else:
            out_rows.append(r)
            ys.append(r.y)
            ws.append(base)
    return out_rows, ys, ws


def fit(rows: Sequence[Row], params: dict[str, Any],
        analysed: dict[str, TextFeatures]) -> tuple[dict[str, float], float]:
    """Train on ``rows``; return (feature -> weight, bias), unrounded."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    ex_rows, ys, ws = training_examples(rows, params)
    docs = [doc_features(analysed[r.text], params["chain_weight"]) for r in ex_rows]
    vocab = build_vocab([docs[i] for i in range(len(docs)) if i == 0 or ex_rows[i] is not ex_rows[i - 1]],
                        params["min_df"])
    x = to_matrix(docs, vocab)
    y = np.array(ys)
    w = np.array(ws)
    scaling = None
    if params.get("nb"):
        # Naive-Bayes log-count ratios as feature scales (Wang & Manning 2012): discriminative n-grams are
        # regularised less. Folded into the weights below, so the run-time model is unchanged in form.
        present = (x > 0).astype(np.float64)
        alpha = float(params["nb"])
        p = alpha + present.T @ (w * (y == 1))
        q = alpha + present.T @ (w * (y == 0))
        scaling = np.abs(np.log((p / p.sum()) / (q / q.sum())))
        scaling = np.maximum(scaling, 0.05)
        from scipy.sparse import diags

        x = x @ diags(scaling)
    clf = LogisticRegression(C=params["C"], solver="liblinear", max_iter=1000, tol=1e-5, random_state=SEED,
                             intercept_scaling=10.0)
    clf.fit(x, y, sample_weight=w)
    coef = clf.coef_[0] if scaling is None else clf.coef_[0] * scaling
    names = sorted(vocab, key=vocab.__getitem__)
    return {names[j]: float(coef[j]) for j in range(len(names))}, float(clf.intercept_[0])


def quantise(weights: dict[str, float], bias: float, params: dict[str, Any]) -> tuple[dict[str, int], int]:
    """Integer weights in units of ``scale``; weights under ``prune`` in size dropped."""
    scale = params["scale"]
    q = {k: round(w / scale) for k, w in weights.items() if abs(w) >= params["prune"]}
    return {k: v for k, v in q.items() if v}, round(bias / scale)


def model_bytes(q: dict[str, int], qbias: int, params: dict[str, Any], meta: dict[str, Any]) -> bytes:
    """The model file: a JSON header line then ``feature<TAB>weight`` lines in sorted order, gzip'd reproducibly."""
    header = {
        "format": "monitor-sentiment-v1",
        "version": 1,
        "bias": qbias * params["scale"],
        "scale": params["scale"],
        "chain_weight": params["chain_weight"],
        "features": len(q),
        **meta,
    }
    lines = [json.dumps(header, ensure_ascii=False, sort_keys=True)]
    lines += [f"{k}\t{v}" for k, v in sorted(q.items())]
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------------------
# Evaluation helpers (cross-validation on the training part)
# --------------------------------------------------------------------------------------------------------------------


def neg_f1(ys: Sequence[int], ps: Sequence[float], threshold: float = 0.5) -> tuple[float, float, float]:
    """(precision, recall, F1) of the negative class, a text being called negative when p > threshold."""
    tp = sum(1 for y, p in zip(ys, ps, strict=True) if y == 1 and p > threshold)
    fp = sum(1 for y, p in zip(ys, ps, strict=True) if y == 0 and p > threshold)
    fn = sum(1 for y, p in zip(ys, ps, strict=True) if y == 1 and p <= threshold)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def _predict(weights: dict[str, float], bias: float, params: dict[str, Any], f: TextFeatures) -> float:
    counts, norm, specials = doc_features(f, params["chain_weight"])
    z = bias + sum(weights.get(g, 0.0) * c for g, c in counts.items()) / norm + sum(weights.get(s, 0.0)
                                                                                   for s in specials)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def _fold(row: Row, k: int) -> int:
    return int(_key(row)[:8], 16) % k


def cross_validate(trains: dict[str, list[Row]], params: dict[str, Any], analysed: dict[str, TextFeatures],
                   scheme: str) -> dict[str, list[tuple[int | None, float]]]:
    """Out-of-fold (y, p) per set. ``scheme``: "kfold" (5 folds over all sets) or "loso" (leave one set out)."""
    all_rows = [r for name in SETS for r in trains[name]]
    out: dict[str, list[tuple[int | None, float]]] = {name: [] for name in SETS}
    if scheme == "kfold":
        folds = [[r for r in all_rows if _fold(r, 5) == k] for k in range(5)]
        for k in range(5):
            w, b = fit([r for r in all_rows if _fold(r, 5) != k], params, analysed)
            for r in folds[k]:
                out[r.set].append((r.y, _predict(w, b, params, analysed[r.text])))
    else:
        for name in SETS:
            w, b = fit([r for r in all_rows if r.set != name], params, analysed)
            out[name] = [(r.y, _predict(w, b, params, analysed[r.text])) for r in trains[name]]
    return out


def report_cv(result: dict[str, list[tuple[int | None, float]]], label: str) -> float:
    """Print per-set negative F1 at 0.5 and the best shared threshold; return the mean F1 at 0.5."""
    f1s = []
    line = []
    for name, pairs in result.items():
        ys = [y for y, _ in pairs if y is not None]
        ps = [p for y, p in pairs if y is not None]
        f1 = neg_f1(ys, ps)[2]
        f1s.append(f1)
        line.append(f"{name}={f1:.3f}")
    best = max((sum(neg_f1([y for y, _ in pairs if y is not None], [p for y, p in pairs if y is not None], t)[2]
                    for pairs in result.values()) / len(result), t) for t in [i / 20 for i in range(4, 17)])
    neutral = [p for pairs in result.values() for y, p in pairs if y is None]
    neutral_neg = sum(1 for p in neutral if p > 0.5) / max(len(neutral), 1)
    print(f"{label}: mean negF1@0.5={sum(f1s) / len(f1s):.4f} best mean={best[0]:.4f}@{best[1]:.2f} "
          f"neutral>0.5: {neutral_neg:.2f} | " + " ".join(line), flush=True)
    return sum(f1s) / len(f1s)


def train(trains: dict[str, list[Row]], params: dict[str, Any],
          analysed: dict[str, TextFeatures] | None = None) -> bytes:
    """Fit on every training row of ``trains`` and return the model file's bytes."""
    rows = [r for name in SETS for r in trains.get(name, [])]
    if analysed is None:
        analysed = analyse_all(rows)
    weights, bias = fit(rows, params, analysed)
    q, qbias = quantise(weights, bias, params)
    counts = Counter(r.set for r in rows)
    meta = {
        "trained_on": {name: counts[name] for name in SETS},
        "holdout": f"{HOLDOUT_FRACTION:.0%} of each set, stratified by label, SHA-256 order, seed {SEED}",
        "params": {k: params[k] for k in sorted(params)},
        # Which feature code this model was trained for (tests compare it with the code's).
        "feature_fingerprint": feature_fingerprint(),
    }
    return model_bytes(q, qbias, params, meta)


def analyse_all(rows: Iterable[Row]) -> dict[str, TextFeatures]:
    """``analyse_text`` for every distinct text."""
    out: dict[str, TextFeatures] = {}
    for r in rows:
        if r.text not in out:
            out[r.text] = analyse_text(r.text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the sentiment sets")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model file to write")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N training rows of each set only")
    parser.add_argument("--cv", action="store_true", help="cross-validate PARAMS (and --grid) instead of training")
    parser.add_argument("--grid", default="", help='JSON list of parameter overrides to cross-validate, e.g. '
                                                   '\'[{"C": 0.5}, {"C": 2}]\'')
    parser.add_argument("--scheme", default="loso,kfold", help="cross-validation schemes: loso, kfold")
    args = parser.parse_args(argv)

    if not args.data.is_dir():
        print(f"error: no data folder {args.data}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    trains, _tests = load_splits(args.data)
    if args.limit:
        trains = {name: rows[: args.limit] for name, rows in trains.items()}
    analysed = analyse_all(r for rows in trains.values() for r in rows)
    print(f"loaded {sum(map(len, trains.values()))} training rows in {time.perf_counter() - t0:.1f}s", flush=True)

    if args.cv:
        grid = json.loads(args.grid) if args.grid else [{}]
        for override in grid:
            params = {**PARAMS, **override}
            for scheme in args.scheme.split(","):
                t1 = time.perf_counter()
                res = cross_validate(trains, params, analysed, scheme)
                report_cv(res, f"{scheme} {json.dumps(override, ensure_ascii=False)} ({time.perf_counter() - t1:.0f}s)")
        return 0

    data = train(trains, PARAMS, analysed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    features = json.loads(gzip.decompress(data).split(b"\n", 1)[0])["features"]
    print(f"wrote {args.out} ({len(data):,} bytes, {features:,} features, sha256 {hashlib.sha256(data).hexdigest()}) "
          f"in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
