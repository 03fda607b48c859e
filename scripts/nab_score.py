#!/usr/bin/python3
"""NAB (Numenta Anomaly Benchmark) score of one detections file, computed the NAB way.

    /usr/bin/python3 scripts/nab_score.py DETECTIONS [--column alert|anomaly_score]
        [--threshold T] [--sweep] [--windows combined_windows.json] [--key NAME] [--json]

DETECTIONS is JSON lines (as examples/nab.yaml writes: time, value, anomaly_score, alert) or a
CSV with a header (e.g. a NAB results file: timestamp, anomaly_score, ...). One row per row of
the scored data file, in time order. A row is a detection when its column is >= threshold
(booleans count as 1/0; default column: alert when present, else anomaly_score; default
threshold 0.5).

Scoring, as NAB's sweeper (numenta/NAB nab/sweeper.py, standard profile: tp 1, fp 0.11, fn 1),
re-implemented here from its documented semantics:
  - the first min(floor(0.15 N), 750) rows are probationary: ignored entirely;
  - a row inside a labelled window [start, end] (width W rows, right edge index R) weighs
    tp * sigma(-(R - i + 1) / W) / sigma(-1), sigma(x) = 2 / (1 + exp(-5 x)) - 1... precisely
    scaled(x) = 2 * logistic(-5 x) - 1, so the earliest detection of a window is worth 1.0 and
    one at the right edge about 0;
  - a row outside every window weighs fp * scaled(|R_prev - i| / (W_prev - 1)) relative to the
    previous window (-fp when there is none, or 3 window widths after it);
  - raw score = sum over windows of (the best, i.e. first, detection's weight, or -fn when
    none) + the sum of the weights of all detections outside windows;
  - TP/FP = detections inside/outside windows (every row counts), FN/TN = the other rows;
  - normalised = 100 (raw - null) / (perfect - null): null detects nothing (-fn per window),
    perfect detects each window at its first row (+tp per window).
--sweep also reports the threshold on the column that maximises the raw score on this file,
as NAB's optimiser does over the whole corpus (optimistic for a single file).

Standard library only. Labels: tests/data/nab/combined_windows.json (MIT, Numenta; SOURCE.md).
"""
import argparse
import csv
import json
import math
import os
import sys
from datetime import datetime, timezone

PROFILES = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WINDOWS = os.path.join(HERE, "..", "tests", "data", "nab", "combined_windows.json")


def parse_time(s):
    s = str(s).strip().replace("T", " ")
    if s.endswith("Z"):
        s = s[:-1]
    t = datetime.fromisoformat(s)
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def as_number(v):
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if v is None or v == "":
        return 0.0
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return 1.0 if v.lower() == "true" else 0.0
    return float(v)


def load_rows(path):
    """List of dicts, from JSON lines or a CSV with a header."""
    with open(path, newline="") as f:
        first = f.read(1)
        f.seek(0)
        if first == "{":
            return [json.loads(line) for line in f if line.strip()]
        return list(csv.DictReader(f))


def scaled_sigmoid(x):
    if x >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def row_weights(times, windows, tp, fp):
    """Per row: (window index or None, weight if detected)."""
    index = {t: i for i, t in enumerate(times)}
    spans = []
    for k, (start, end) in enumerate(windows):
        if start not in index or end not in index:
            sys.exit("window %s .. %s: its ends are not rows of the data" % (start, end))
        spans.append((index[start], index[end], k))
    max_tp = scaled_sigmoid(-1.0)
    out = []
    prev = None  # (right index, width) of the last window left
    cur = None
    spans_left = list(spans)
    for i in range(len(times)):
        if cur is None and spans_left and spans_left[0][0] == i:
            cur = spans_left.pop(0)
        if cur is not None:
            left, right, k = cur
            width = float(right - left + 1)
            out.append((k, scaled_sigmoid(-(right - i + 1) / width) * tp / max_tp))
            if i == right:
                prev = (right, width)
                cur = None
        else:
            pos = 3.0 if prev is None else abs(prev[0] - i) / (prev[1] - 1)
            out.append((None, scaled_sigmoid(pos) * fp))
    return out


def score(times, values, windows, threshold, profile="standard"):
    tp_w, fp_w, fn_w = PROFILES[profile]
    n = len(times)
    probation = min(math.floor(0.15 * n), 0.15 * 5000)
    weights = row_weights(times, windows, tp_w, fp_w)
    scored_windows = sorted({k for i, (k, _) in enumerate(weights) if k is not None and i >= probation})
    best = {k: None for k in scored_windows}
    per_window = {k: [] for k in scored_windows}
    fp_rows = []
    tp = fp = fn = tn = 0
    fp_sum = 0.0
    for i in range(n):
        if i < probation:
            continue
        k, w = weights[i]
        hit = values[i] >= threshold
        if k is not None:
            if hit:
                tp += 1
                per_window[k].append((times[i], w))
                best[k] = w if best[k] is None else max(best[k], w)
            else:
                fn += 1
        elif hit:
            fp += 1
            fp_sum += w
            fp_rows.append((times[i], w))
        else:
            tn += 1
    raw = fp_sum + sum(-fn_w if b is None else b for b in best.values())
    null = -fn_w * len(scored_windows)
    perfect = tp_w * len(scored_windows)
    norm = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return {
        "threshold": threshold,
        "raw": raw,
        "null": null,
        "perfect": perfect,
        "normalised": norm,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "windows": [
            {
                "start": str(windows[k][0]),
                "end": str(windows[k][1]),
                "detections": len(per_window[k]),
                "first": str(per_window[k][0][0]) if per_window[k] else None,
                "weight": best[k] if best[k] is not None else -fn_w,
            }
            for k in scored_windows
        ],
        "false_positives": [{"time": str(t), "weight": w} for t, w in fp_rows],
    }


def sweep(times, values, windows, profile):
    """Threshold maximising the raw score: rows taken in falling order of their value, the
    score updated incrementally and read at each distinct value (as NAB's sweeper)."""
    tp_w, fp_w, fn_w = PROFILES[profile]
    n = len(times)
    probation = min(math.floor(0.15 * n), 0.15 * 5000)
    weights = row_weights(times, windows, tp_w, fp_w)
    rows = sorted((i for i in range(n) if i >= probation), key=lambda i: -values[i])
    best_w = {k: -fn_w for k in {weights[i][0] for i in rows} if k is not None}
    fp_sum = 0.0
    top = max(values) if values else 0.0
    best = (sum(best_w.values()), 1.1 if top < 1.1 else top * 2)  # detect nothing, as NAB's 1.1
    for j, i in enumerate(rows):
        k, w = weights[i]
        if k is None:
            fp_sum += w
        else:
            best_w[k] = max(best_w[k], w)
        if j + 1 == len(rows) or values[rows[j + 1]] != values[i]:
            raw = fp_sum + sum(best_w.values())
            if raw > best[0]:
                best = (raw, values[i])
    return score(times, values, windows, best[1], profile)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("detections")
    ap.add_argument("--column", help="alert or anomaly_score (default: alert if present)")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--windows", default=DEFAULT_WINDOWS)
    ap.add_argument("--key", help="entry of the windows file (default: the only or matching one)")
    ap.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    rows = load_rows(a.detections)
    if not rows:
        sys.exit("%s: no rows" % a.detections)
    tcol = "time" if "time" in rows[0] else "timestamp"
    col = a.column or ("alert" if "alert" in rows[0] else "anomaly_score")
    if col not in rows[0] or tcol not in rows[0]:
        sys.exit("%s: needs columns %s and %s" % (a.detections, tcol, col))
    times = [parse_time(r[tcol]) for r in rows]
    values = [as_number(r[col]) for r in rows]

    labels = json.load(open(a.windows))
    keys = [a.key] if a.key else [k for k in labels if len(labels) == 1 or
                                  "machine_temperature_system_failure" in k]
    if len(keys) != 1 or keys[0] not in labels:
        sys.exit("choose the windows entry with --key (%d candidates)" % len(keys))
    windows = [(parse_time(s), parse_time(e)) for s, e in labels[keys[0]]]

    res = score(times, values, windows, a.threshold, a.profile)
    res.update({"file": a.detections, "column": col, "profile": a.profile, "rows": len(rows)})
    if a.sweep:
        b = sweep(times, values, windows, a.profile)
        res["sweep"] = {k: b[k] for k in ("threshold", "raw", "normalised", "tp", "fp", "fn")}
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print("%s: %d rows, column %s >= %.17g, profile %s" %
          (a.detections, len(rows), col, a.threshold, a.profile))
    print("raw %.11f  null %.1f  perfect %.1f  normalised %.2f" %
          (res["raw"], res["null"], res["perfect"], res["normalised"]))
    print("TP %d  FP %d  FN %d  TN %d" % (res["tp"], res["fp"], res["fn"], res["tn"]))
    for w in res["windows"]:
        print("window %s .. %s: %d detections, first %s, weight %.4f" %
              (w["start"], w["end"], w["detections"], w["first"], w["weight"]))
    for f in res["false_positives"][:20]:
        print("false positive %s weight %.4f" % (f["time"], f["weight"]))
    if a.sweep:
        s = res["sweep"]
        print("sweep: best threshold %.17g raw %.11f normalised %.2f TP %d FP %d" %
              (s["threshold"], s["raw"], s["normalised"], s["tp"], s["fp"]))


if __name__ == "__main__":
    main()
