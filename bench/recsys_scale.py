"""The item-to-item recommender at scale: 100k users, 20k items, 5M interactions (issue 8).

Seeded synthetic interactions (users in groups that prefer groups of items, Zipf-like item popularity,
log-normal user activity) are generated once into bench/data/ (git-ignored). Each measurement runs in a
fresh subprocess, so its peak memory (ru_maxrss) is its own:

- scale: read the data, fit `ItemKNNRecommender` (timed; peak RSS, data included), recommend for ALL users
  (users/s), beside two baselines measured in the same process: the seed's per-user loop (one sparse
  product and one top-k per user, on a sample) and the popularity recommender (batched, all users);
- quality: a time split (each user's latest interaction held out), NDCG@10 etc. of both models.

Targets (issue 8): training at most 60 s and 2 GiB peak; recommendations at least 20k users/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GENERATOR_VERSION = 1  # bump when generate() changes, so cached data is rebuilt


def generate(n_users: int, n_items: int, n_interactions: int, seed: int, n_groups: int = 50) -> Any:
    "Seeded synthetic interactions: (n_interactions, 4) user_id, item_id, timestamp, weight."
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 0.8, n_users)  # (n_users,) heavy-tailed: a few users have ~1k items
    per_user = np.maximum(1, np.floor(activity / activity.sum() * n_interactions)).astype(np.int64)
    short = n_interactions - int(per_user.sum())
    if short > 0:
        np.add.at(per_user, rng.integers(0, n_users, short), 1)
    users = np.repeat(np.arange(n_users), per_user)[:n_interactions]  # (n,)
    user_group = rng.integers(0, n_groups, n_users)  # (n_users,)
    item_group = rng.permutation(np.arange(n_items) % n_groups)  # (n_items,)
    pop = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8  # (n_items,) Zipf-like popularity
    # Inside a group: items by popularity (one cumulative table, groups laid end to end and offset by g).
    by_group = np.argsort(item_group, kind="stable")  # (n_items,) item indices grouped
    sizes = np.bincount(item_group, minlength=n_groups)
    g_of = np.repeat(np.arange(n_groups), sizes)  # (n_items,) group of each grouped position
    w = pop[by_group]
    cum = np.cumsum(w)
    starts = np.concatenate([[0.0], cum[np.cumsum(sizes)[:-1] - 1]])  # (n_groups,) mass before each group
    totals = np.bincount(g_of, weights=w, minlength=n_groups)
    cdf = (cum - starts[g_of]) / totals[g_of] + g_of  # (n_items,) increasing: group g spans (g, g + 1]
    g = user_group[users]
    pos = np.searchsorted(cdf, g + rng.random(len(users)) * (1 - 1e-12))
    in_group = by_group[np.minimum(pos, n_items - 1)]
    anywhere = np.searchsorted(np.cumsum(pop) / pop.sum(), rng.random(len(users)))
    items = np.where(rng.random(len(users)) < 0.8, in_group, np.minimum(anywhere, n_items - 1))
    seconds = rng.integers(0, 180 * 86400, len(users))
    return pd.DataFrame(
        {
            "user_id": pd.Series(users).map("u{:07d}".format),
            "item_id": pd.Series(items).map("i{:06d}".format),
            "timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(seconds, unit="s"),
            "weight": np.ones(len(users), dtype=np.float32),
        }
    )


def data_file(args: argparse.Namespace) -> Path:
    "The cached data file for these parameters; generated on first use."
    name = (
        f"recsys_u{args.users}_i{args.items}_n{args.interactions}_s{args.seed}_v{GENERATOR_VERSION}.parquet"
    )
    path = HERE / "data" / name
    if not path.exists():
        from mlprod.tables import write_table

        t0 = time.perf_counter()
        write_table(generate(args.users, args.items, args.interactions, args.seed), path)
        print(f"generated {os.path.relpath(path)} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def peak_rss_bytes() -> int:
    "This process's peak resident memory so far (VmHWM: unlike ru_maxrss, it does not count the parent's at fork)."
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def per_user_loop(model: Any, rows: Any, k: int) -> tuple[Any, Any]:
    "The seed's way: for each user, one sparse product, the seen items masked, one top-k. ((n, k), (n, k))."
    import numpy as np

    X, S = model.X_, model.similarity_
    items, scores = [], []
    for u in rows:
        x = X[u]  # (1, n_items)
        s = (x @ S).toarray().ravel()  # (n_items,)
        s[x.indices] = -np.inf
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        items.append(top)
        scores.append(s[top])
    return np.array(items), np.array(scores)


def timed(fn: Any, repeat: int = 1) -> tuple[Any, float, float]:
    "(the last result, median wall seconds, median CPU seconds) of `repeat` calls of fn()."
    import statistics

    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return result, statistics.median(walls), statistics.median(cpus)


def phase_scale(path: Path, k: int, neighbours: int, sample: int, repeat: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from mlprod.recsys import ItemKNNRecommender, PopularityRecommender

    out: dict[str, Any] = {"rss_start": peak_rss_bytes()}
    df, out["read_s"], _ = timed(lambda: pd.read_parquet(path))  # (n_interactions, 4)
    out["rss_read"] = peak_rss_bytes()
    model, out["fit_s"], out["fit_cpu"] = timed(
        lambda: ItemKNNRecommender(k=k, neighbours=neighbours).fit(df)
    )
    out["rss_fit"] = peak_rss_bytes()
    out["shape"] = [model.n_users_, model.n_items_, int(model.X_.nnz), int(model.similarity_.nnz)]
    pop, out["pop_fit_s"], out["pop_fit_cpu"] = timed(lambda: PopularityRecommender(k=k).fit(df))
    df = None  # free the frame before recommending
    users = model.user_ids_  # every user
    rec, out["rec_s"], out["rec_cpu"] = timed(lambda: model.recommend(users), repeat)  # (n_users, 4)
    out["rec_fallback"] = int(rec["fallback"].sum())
    out["rec_full"] = float((rec["items"].str.len() == k).mean())
    _, out["pop_rec_s"], out["pop_rec_cpu"] = timed(lambda: pop.recommend(users), repeat)
    rows = np.random.default_rng(0).choice(model.n_users_, min(sample, model.n_users_), replace=False)
    (_, loop_scores), out["loop_s"], out["loop_cpu"] = timed(lambda: per_user_loop(model, rows, k), repeat)
    out["loop_users"] = len(rows)
    batched = np.array(rec["scores"].iloc[rows].tolist())  # (sample, k)
    out["loop_agrees"] = bool(np.allclose(batched, loop_scores, rtol=1e-5, atol=1e-5))
    out["rss_end"] = peak_rss_bytes()
    return out


def phase_quality(path: Path, k: int, neighbours: int) -> dict[str, Any]:
    import pandas as pd

    from mlprod.recsys import ItemKNNRecommender, PopularityRecommender, ranking_metrics, split_interactions

    df = pd.read_parquet(path)
    t0 = time.perf_counter()
    train, held = split_interactions(df, timestamp_col="timestamp", holdout=1)
    split_s = time.perf_counter() - t0
    df = None  # free the frame before recommending
    users = held["user_id"].unique()
    out: dict[str, Any] = {"split_s": split_s, "held_users": len(users)}
    popularity = train["item_id"].value_counts()
    for name, model in [
        ("item_knn", ItemKNNRecommender(k=k, neighbours=neighbours)),
        ("popularity", PopularityRecommender(k=k)),
    ]:
        model.fit(train)
        rec = model.recommend(users)
        t0 = time.perf_counter()
        out[name] = ranking_metrics(rec, held, (5, 10), catalog_size=model.n_items_, popularity=popularity)
        out["metrics_s"] = time.perf_counter() - t0
    return out


def run_phase(phase: str, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    "Run one phase in a fresh interpreter (its own peak memory); returns its JSON result."
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--data", str(path)]
    cmd += ["--k", str(args.k), "--neighbours", str(args.neighbours), "--sample", str(args.sample)]
    cmd += ["--repeat", str(args.repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"recsys_scale: phase {phase} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main(argv: list[str] | None = None) -> list[tuple[str, ...]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--neighbours", type=int, default=50)
    ap.add_argument("--sample", type=int, default=2000, help="users for the per-user loop baseline")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each recommend measurement (median)")
    ap.add_argument("--no-quality", action="store_true", help="skip the NDCG comparison (a second fit)")
    ap.add_argument("--phase", choices=["scale", "quality"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:  # inside the measuring subprocess
        result = (
            phase_scale(args.data, args.k, args.neighbours, args.sample, args.repeat)
            if args.phase == "scale"
            else phase_quality(args.data, args.k, args.neighbours)
        )
        print(json.dumps(result))
        return []

    path = data_file(args)
    s = run_phase("scale", path, args)
    n_users, n_items, nnz, s_nnz = s["shape"]
    knn_ups = n_users / s["rec_s"]
    loop_ups = s["loop_users"] / s["loop_s"]
    print(
        f"\n## Recommendations at scale ({n_users:,} users, {n_items:,} items, {args.interactions:,} interactions; "
        f"item-kNN cosine, {args.neighbours} neighbours, k={args.k})\n"
    )
    print(
        f"Data: `{os.path.relpath(path)}` (seeded, generated once). The user x item matrix holds {nnz:,} distinct "
        f"pairs; the pruned item x item similarity {s_nnz:,} entries ({s_nnz / n_items:.0f} per item), where a "
        f"dense one would be {n_items:,}² float32 = {gib(4 * n_items**2)}.\n"
    )
    print("| training (fresh process) | wall | CPU | peak RSS of the process |\n|---|---|---|---|")
    print(f"| interpreter + imports | | | {gib(s['rss_start'])} |")
    print(f"| read the Parquet file | {s['read_s']:.1f} s | | {gib(s['rss_read'])} |")
    print(
        f"| fit item-kNN: X, pruned S (mlprod) | {s['fit_s']:.1f} s | {s['fit_cpu']:.1f} s | {gib(s['rss_fit'])} |"
    )
    print(f"| fit popularity (baseline) | {s['pop_fit_s']:.1f} s | {s['pop_fit_cpu']:.1f} s | |")
    table = [
        ("item-kNN, batched (mlprod), all users", n_users, s["rec_s"], s["rec_cpu"]),
        (
            f"item-kNN, per-user loop (the seed's way), {s['loop_users']:,}-user sample",
            s["loop_users"],
            s["loop_s"],
            s["loop_cpu"],
        ),
        ("popularity (baseline), batched, all users", n_users, s["pop_rec_s"], s["pop_rec_cpu"]),
    ]
    rows = [
        (name, f"{n / wall:,.0f}", f"{n / cpu:,.0f}", f"{(n / wall) / loop_ups:.1f}x")
        for name, n, wall, cpu in table
    ]
    print(
        f"\n| recommend (exclude seen, top k; median of {args.repeat}) | users/s (wall) | users per CPU-second "
        "| vs per-user loop |\n|---|---|---|---|"
    )
    for r in rows:
        print(f"| {' | '.join(r)} |")
    agree = "the same top-k scores" if s["loop_agrees"] else "DIFFERENT top-k scores"
    print(
        f"\nBatched and per-user loop give {agree} on the sample; "
        f"{s['rec_full']:.1%} of users got a full list of {args.k}."
    )
    if not args.no_quality:
        q = run_phase("quality", path, args)
        print(
            f"\nQuality on a time split ({q['held_users']:,} users, each user's latest interaction held out; "
            f"split {q['split_s']:.1f} s, metrics {q['metrics_s']:.1f} s):\n"
        )
        print(
            "| model | ndcg@10 | recall@10 | map@10 | coverage@10 | popularity@10 |\n|---|---|---|---|---|---|"
        )
        for name in ("item_knn", "popularity"):
            m = q[name]
            print(
                f"| {name} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['map@10']:.4f} | "
                f"{m['coverage@10']:.3f} | {m['popularity@10']:.3f} |"
            )
        ratio = q["item_knn"]["ndcg@10"] / max(q["popularity"]["ndcg@10"], 1e-12)
        print(f"\nitem-kNN NDCG@10 = {ratio:.1f}x the popularity baseline.")
    knn_cpu_ups = n_users / s["rec_cpu"]
    checks = [
        ("training", f"{s['fit_s']:.1f} s", "<= 60 s", s["fit_s"] <= 60),
        ("training peak", gib(s["rss_fit"]), "<= 2 GiB", s["rss_fit"] <= 2 * 2**30),
        ("recommend, all users", f"{knn_ups:,.0f} users/s", ">= 20,000/s", knn_ups >= 20_000),
    ]
    print(
        "\nTargets (issue 8): "
        + "; ".join(f"{a} {b} ({t}): {'PASS' if ok else 'FAIL'}" for a, b, t, ok in checks)
        + f". Per CPU-second (what a loaded machine does not take away): {knn_cpu_ups:,.0f} users/s."
    )
    return rows


if __name__ == "__main__":
    main()
