#!/usr/bin/env python3
"""Checks how a batch of connections spread over the backends.

Inputs: mplb's own prediction per source port (`peer.py lookup` output), the
backends' server logs ("accepted <ip> <port>"), the client address and port
range, and the weights mplb was configured with ("be1:1 be2:2:draining" —
draining or disabled backends count as weight 0).

Checks, printing a table either way:
* every connection was accepted by exactly one backend, the one mplb's
  `lookup` named (so the datapath forwarded as the control plane predicts);
* each backend's count is within a tolerance of its weighted share. The
  count of a backend with share p over n connections hashed at random is
  Binomial(n, p); the tolerance is 5 standard deviations, sqrt(n p (1-p)) × 5,
  so a fair hash fails this with probability below 1e-6 per backend, while
  an unweighted split (1:1 instead of 1:2) is far outside it at n >= 150.
  A backend of weight 0 must get nothing.
Exit status 1 if any check fails.
"""
import argparse
import math
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lookup", required=True)
    p.add_argument("--log", action="append", default=[], help="NAME=PATH of a backend's server log")
    p.add_argument("--client", required=True)
    p.add_argument("--sports", required=True, help="FIRST-LAST")
    p.add_argument("--weights", required=True, help='"be1:1 be2:2:draining"')
    p.add_argument("--suffix", default="", help="mplb's backend name suffix (-v6)")
    a = p.parse_args()

    lo, hi = (int(x) for x in a.sports.split("-"))
    sports = range(lo, hi + 1)
    predicted = {}
    for line in open(a.lookup):
        sport, backend = line.split()
        predicted[int(sport)] = backend.removesuffix(a.suffix) if a.suffix else backend
    served = {s: [] for s in sports}
    for spec in a.log:
        name, path = spec.split("=", 1)
        for line in open(path):
            w = line.split()
            if len(w) == 3 and w[0] == "accepted" and w[1] == a.client and int(w[2]) in served:
                served[int(w[2])].append(name)

    weights = {}
    for spec in a.weights.split():
        f = spec.split(":")
        state = f[2] if len(f) > 2 else "active"
        weights[f[0]] = int(f[1]) if state == "active" else 0
    total_w = sum(weights.values())
    n = len(sports)
    ok = True

    wrong = [(s, predicted.get(s), served[s]) for s in sports if served[s] != [predicted.get(s)]]
    for s, want, got in wrong[:10]:
        print(f"    sport {s}: mplb lookup said {want}, accepted by {got or 'nobody'}")
    if wrong:
        ok = False
    print(f"    {n - len(wrong)} of {n} connections accepted by the backend mplb's lookup names")

    print(f"    {'backend':8} {'weight':>6} {'expected':>9} {'tolerance':>9} {'got':>5}")
    for name, w in sorted(weights.items()):
        share = w / total_w
        expected = n * share
        tol = 5 * math.sqrt(n * share * (1 - share))
        got = sum(1 for s in sports if served[s] == [name])
        good = abs(got - expected) <= tol if w else got == 0
        ok &= good
        print(f"    {name:8} {w:>6} {expected:>9.1f} {'±%.1f' % tol if w else '0':>9} {got:>5} {'' if good else '  <- outside'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
