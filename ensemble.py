"""Average of two models' P(negative): python ensemble.py A_probs.pkl B_probs.pkl val|test [weight of A ...]"""
import sys, pickle
from common import *
from train_sentiment import _fold
trains, tests = get_splits()
ev = tests if sys.argv[3] == "test" else {s: [r for r in trains[s] if _fold(r, 5) == 0] for s in SETS}
A = pickle.load(open(sys.argv[1], "rb")); B = pickle.load(open(sys.argv[2], "rb"))
for wa in [float(x) for x in (sys.argv[4:] or ["0", "0.3", "0.5", "0.7", "1"])]:
    p = {s: [wa * a + (1 - wa) * b for a, b in zip(A[s], B[s])] for s in SETS}
    report(f"w_A={wa}", ev, p)
