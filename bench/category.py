"""Complaint categories against hand labels: accuracy, per-category precision and recall, confusion, speed.

Data: negative reviews (label 0) of ../shared/data/sentiment/waimai_10k/waimai_10k.csv (SophonPlus/ChineseNlpCorpus
@ a0b781d, food-delivery reviews). No category-labelled set exists there, so we labelled a fixed random sample
ourselves: bench/data/category_gold.tsv holds ``row_index<TAB>category`` (0-based data row of the CSV, header not
counted) and the annotation guidelines in its header. The labels are ours (one annotator), not the data set's; the
review texts stay in the data folder. Two splits: ``dev`` (150 reviews, read while the keyword lexicon was written)
and ``heldout`` (80 more, labelled after the lexicon was frozen and never used to tune it): the held-out figure is
the honest one. Food delivery has almost no ethics complaints (one in the sample), so that
category's figures mean little here; the unit tests cover it with texts of our own.

Nothing is asserted. Run:  python bench/category.py [--show 10]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.analysis.category import CATEGORIES, OTHER, CategoryClassifier  # noqa: E402

CSV = ROOT.parent / "shared" / "data" / "sentiment" / "waimai_10k" / "waimai_10k.csv"
GOLD = ROOT / "bench" / "data" / "category_gold.tsv"


def load_rows() -> list[list[str]]:
    """The CSV's data rows (``label, review``), header dropped."""
    with CSV.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


def load_gold(path: Path = GOLD) -> dict[str, list[tuple[int, str]]]:
    """``{split: [(row_index, category), ...]}`` from the label file; ``# split: NAME`` lines start a split."""
    out: dict[str, list[tuple[int, str]]] = {}
    split = "dev"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# split:"):
            split = line.split(":", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            idx, cat = line.split("\t")
            out.setdefault(split, []).append((int(idx), cat.strip()))
    return out


def report(name: str, pairs: list[tuple[int, str, str, str]], show: int) -> None:
    """Accuracy, per-category precision/recall/F1 and confusions of ``(row, gold, predicted, text)`` tuples."""
    n = len(pairs)
    correct = sum(t == p for _, t, p, _ in pairs)
    majority = Counter(t for _, t, _, _ in pairs).most_common(1)[0]
    print(f"\n== {name}: {n} labelled negative reviews; accuracy {correct}/{n} = {correct / n:.3f} "
          f"(majority class {majority[0]}: {majority[1] / n:.3f})")
    print(f"{'category':22s} {'gold':>5s} {'pred':>5s} {'precision':>9s} {'recall':>7s} {'F1':>6s}")
    f1s = []
    for cat in (*CATEGORIES, OTHER):
        tp = sum(t == cat and p == cat for _, t, p, _ in pairs)
        n_gold = sum(t == cat for _, t, _, _ in pairs)
        n_pred = sum(p == cat for _, _, p, _ in pairs)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if n_gold:
            f1s.append(f1)
        print(f"{cat:22s} {n_gold:5d} {n_pred:5d} {prec:9.3f} {rec:7.3f} {f1:6.3f}")
    print(f"macro F1 over the categories present: {sum(f1s) / len(f1s):.3f}")
    confusion = Counter((t, p) for _, t, p, _ in pairs if t != p)
    print("confusions (gold -> predicted):", ", ".join(f"{t}->{p} {c}" for (t, p), c in confusion.most_common(6)))
    for idx, truth, pred, text in [x for x in pairs if x[1] != x[2]][:show]:
        print(f"  row {idx}: gold {truth}, predicted {pred}: {text[:60]!r}")


def main() -> None:
    """Score the classifier on the labelled sample and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=10, help="misclassified reviews to print")
    args = parser.parse_args()
    if not CSV.is_file():
        sys.exit(f"no data at {CSV}")
    rows = load_rows()
    clf = CategoryClassifier()
    for split, gold in load_gold().items():
        pairs = []
        for idx, truth in gold:
            label, text = rows[idx]
            assert label == "0", f"row {idx} is not a negative review"
            pairs.append((idx, truth, clf.classify(text).category, text))
        report(split, pairs, args.show)
    # Speed on all negative reviews.
    texts = [r[1] for r in rows if r[0] == "0"]
    t0 = time.perf_counter()
    for text in texts:
        clf.classify(text)
    speed = len(texts) / (time.perf_counter() - t0)
    print(f"\nspeed: {speed:,.0f} texts/s over the {len(texts):,} negative reviews")


if __name__ == "__main__":
    main()
