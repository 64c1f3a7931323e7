"""recsys: the item-to-item recommender, its ID maps outside the pickle, the interaction split, ranking metrics."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlprod.errors import BundleError, ConfigError, DataError, IntegrityError, SchemaError
from mlprod.recsys import (
    ItemKNNRecommender,
    PopularityRecommender,
    as_id_strings,
    item_similarity,
    ranking_metrics,
    split_interactions,
)


def planted(
    n_users: int = 600, n_items: int = 240, n_groups: int = 6, per_user: int = 12, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    "Users in groups that each prefer a group of items (80% of their interactions), plus globally popular noise."
    rng = np.random.default_rng(seed)
    user_group = rng.integers(0, n_groups, n_users)  # (n_users,)
    item_group = np.arange(n_items) % n_groups  # (n_items,)
    pop = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.7  # (n_items,) zipf-like popularity
    users = np.repeat(np.arange(n_users), per_user)  # (n,)
    in_group = rng.random(len(users)) < 0.8
    # Within a group: sample by popularity among the group's items; outside: by global popularity.
    probs_in = np.where(item_group[None, :] == np.arange(n_groups)[:, None], pop[None, :], 0.0)
    probs_in /= probs_in.sum(axis=1, keepdims=True)  # (n_groups, n_items)
    cdf_in = np.cumsum(probs_in, axis=1)
    r = rng.random(len(users))
    item_in = (cdf_in[user_group[users]] < r[:, None]).sum(axis=1)
    item_out = np.searchsorted(np.cumsum(pop) / pop.sum(), rng.random(len(users)))
    items = np.minimum(np.where(in_group, item_in, item_out), n_items - 1)
    df = pd.DataFrame(
        {
            "user_id": [f"u{u:04d}" for u in users],
            "item_id": [f"i{i:04d}" for i in items],
            "timestamp": rng.integers(0, 10**6, len(users)),
        }
    )
    return df, user_group


@pytest.fixture(scope="module")
def fixture_df() -> pd.DataFrame:
    from mlprod.tables import read_table

    return read_table(Path(__file__).parent / "fixtures" / "interactions.csv")  # (360, 5)


@pytest.fixture(scope="module")
def fixture_model(fixture_df: pd.DataFrame) -> ItemKNNRecommender:
    return ItemKNNRecommender(k=5, weight_col="weight").fit(fixture_df)


# ---- quality ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", ["cosine", "jaccard"])
def test_beats_popularity_on_planted_structure(similarity: str) -> None:
    df, _ = planted()
    train, held = split_interactions(df, timestamp_col="timestamp", holdout=2)
    users = held["user_id"].unique()
    knn = ItemKNNRecommender(similarity=similarity, neighbours=30).fit(train)
    base = PopularityRecommender().fit(train)
    m_knn = ranking_metrics(knn.recommend(users), held, catalog_size=knn.n_items_)
    m_pop = ranking_metrics(base.recommend(users), held, catalog_size=base.n_items_)
    assert m_knn["users"] == m_pop["users"] == len(users)
    assert m_knn["ndcg@10"] > 2 * m_pop["ndcg@10"], (m_knn, m_pop)
    assert m_knn["recall@10"] > m_pop["recall@10"]
    assert m_knn["coverage@10"] > m_pop["coverage@10"]


def test_recommendations_follow_the_planted_groups() -> None:
    df, user_group = planted(seed=1)
    m = ItemKNNRecommender().fit(df)
    rec = m.recommend([f"u{u:04d}" for u in range(100)])
    items = np.array(rec["items"].tolist())  # (100, 10)
    item_group = np.vectorize(lambda s: int(s[1:]) % 6)(items)
    assert (item_group == user_group[:100, None]).mean() > 0.8


def test_fixture_trains_and_recommends_sensibly(
    fixture_df: pd.DataFrame, fixture_model: ItemKNNRecommender
) -> None:
    m = fixture_model
    assert (m.n_users_, m.n_items_) == (40, 30)
    # A user's group is the item group (item index % 3) most of their history belongs to.
    hist = fixture_df.assign(g=fixture_df["item_id"].str[1:].astype(int) % 3)
    user_group = hist.groupby("user_id")["g"].agg(lambda s: s.mode().iloc[0])
    rec = m.recommend(user_group.index)
    assert len(rec) == 40 and not rec["fallback"].any() and (rec["items"].str.len() == 5).all()
    rec_group = np.array(rec["items"].tolist(), dtype=object)  # (40, 5)
    rec_group = np.vectorize(lambda s: int(s[1:]) % 3)(rec_group)
    # Each user has 7 of their group's 10 items: the 3 left should lead their lists.
    share = (rec_group[:, :3] == user_group.to_numpy()[:, None]).mean()
    assert share > 0.8, share
    # Scores are sorted, positive, and as many as the items.
    for items, scores in zip(rec["items"], rec["scores"], strict=True):
        assert len(items) == len(scores) and scores == sorted(scores, reverse=True) and min(scores) > 0
    # And on a time split the model beats popularity.
    train, held = split_interactions(fixture_df, timestamp_col="timestamp")
    users = held["user_id"].unique()
    knn = ranking_metrics(ItemKNNRecommender().fit(train).recommend(users), held)
    pop = ranking_metrics(PopularityRecommender().fit(train).recommend(users), held)
    assert knn["ndcg@10"] > pop["ndcg@10"]


# ---- recommend ----------------------------------------------------------------------------------------------


def test_seen_items_are_excluded(fixture_df: pd.DataFrame, fixture_model: ItemKNNRecommender) -> None:
    seen = fixture_df.groupby("user_id")["item_id"].agg(set)
    rec = fixture_model.recommend(seen.index, k=10)
    for user, items in zip(rec["user_id"], rec["items"], strict=True):
        assert not seen[user] & set(items), user
    # Without the exclusion, the user's own items come back (they are their own best neighbours' neighbours).
    again = fixture_model.recommend(seen.index, k=10, exclude_seen=False)
    overlap = [len(seen[u] & set(i)) for u, i in zip(again["user_id"], again["items"], strict=True)]
    assert sum(overlap) > 0


def test_unseen_users_get_popular_items_flagged_fallback(
    fixture_df: pd.DataFrame, fixture_model: ItemKNNRecommender
) -> None:
    rec = fixture_model.recommend(["new-1", "u000", "new-2", "u000"], k=4)
    assert rec["user_id"].tolist() == ["new-1", "u000", "new-2", "u000"]  # order and repeats kept
    assert rec["fallback"].tolist() == [True, False, True, False]
    counts = fixture_df["item_id"].value_counts()
    popular = counts.sort_index().sort_values(ascending=False, kind="stable")  # ties: by ID
    assert rec.loc[0, "items"] == rec.loc[2, "items"] == popular.index[:4].tolist()
    assert np.allclose(rec.loc[0, "scores"], (popular.iloc[:4] / len(fixture_df)).to_numpy(), atol=1e-6)
    assert rec.loc[1, "items"] == rec.loc[3, "items"]


def test_a_user_who_has_almost_everything_gets_the_rest() -> None:
    # u0 has 5 of 6 items; u1 and u2 share items so there are similarities.
    df = pd.DataFrame(
        {
            "user_id": ["u0"] * 5 + ["u1"] * 3 + ["u2"] * 2,
            "item_id": ["a", "b", "c", "d", "e", "a", "f", "b", "c", "f"],
        }
    )
    m = ItemKNNRecommender(k=3).fit(df)
    rec = m.recommend(["u0", "u1"])
    assert rec.loc[0, "items"] == ["f"]  # the only item u0 does not have; fewer than k
    assert len(rec.loc[1, "items"]) == 3 and not {"a", "f", "b"} & set(rec.loc[1, "items"])
    # Candidates without similarity are filled from popularity with score 0, after the scored ones.
    scores = rec.loc[1, "scores"]
    assert scores == sorted(scores, reverse=True) and len(set(rec.loc[1, "items"])) == 3


def test_scores_match_a_dense_brute_force() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    df = pd.DataFrame(
        {
            "user_id": rng.integers(0, 150, n),
            "item_id": rng.integers(0, 80, n),
            "w": rng.integers(1, 5, n).astype(float),
        }
    )
    m = ItemKNNRecommender(weight_col="w", neighbours=15, k=8).fit(df)
    X = m.X_.toarray()  # (n_users, n_items)
    S = m.similarity_.toarray()  # (n_items, n_items)
    dense = X @ S  # (n_users, n_items)
    dense[X > 0] = -np.inf
    rec = m.recommend(m.user_ids_)
    want = -np.sort(-dense, axis=1)[:, :8]  # (n_users, 8)
    got = np.array(rec["scores"].tolist())
    assert np.allclose(got, want, rtol=1e-5, atol=2e-6)
    cols = np.array([[m.item_ids_.tolist().index(i) for i in items] for items in rec["items"]])
    assert np.allclose(np.take_along_axis(dense, cols, axis=1), want, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("similarity", ["cosine", "jaccard"])
def test_similarity_is_sparse_pruned_and_exact(similarity: str) -> None:
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"user_id": rng.integers(0, 120, 1500), "item_id": rng.integers(0, 60, 1500)})
    m = ItemKNNRecommender(similarity=similarity, neighbours=7).fit(df)
    S = m.similarity_
    assert S.format == "csr" and S.shape == (60, 60) and S.dtype == np.float32
    assert S.diagonal().sum() == 0 and S.getnnz(axis=1).max() <= 7
    B = (m.X_.toarray() > 0).astype(float)  # (n_users, n_items)
    if similarity == "cosine":
        Xd = m.X_.toarray()
        norms = np.linalg.norm(Xd, axis=0)
        full = (Xd.T @ Xd) / np.outer(norms, norms)
    else:
        co = B.T @ B
        cnt = B.sum(axis=0)
        full = co / (cnt[:, None] + cnt[None, :] - co)
    np.fill_diagonal(full, 0)
    Sd = S.toarray()
    kept = Sd > 0
    assert np.allclose(Sd[kept], full[kept], atol=1e-6)  # kept values are the true similarities
    # and each row keeps its 7 largest: the smallest kept >= the largest dropped
    dropped = np.where(kept, -np.inf, full).max(axis=1)
    assert (np.where(kept, Sd, np.inf).min(axis=1) >= dropped - 1e-6).all()


def test_ties_are_broken_by_popularity_not_by_chance() -> None:
    # Both users have every item, so all Jaccard similarities are 1; repeated rows make d, then c, popular.
    df = pd.DataFrame({"user_id": ["u1"] * 6 + ["u2"] * 5, "item_id": list("abcdcd") + list("abcdd")})
    m = ItemKNNRecommender(similarity="jaccard", k=2).fit(df)
    assert m.popularity_.tolist() == [2, 2, 3, 4]
    assert np.allclose(m.similarity_.toarray(), 1 - np.eye(4))
    assert m.similar_items(["a"])["items"][0] == ["d", "c"]
    assert m.similar_items(["d"])["items"][0] == ["c", "a"]  # a and b tie on popularity too: by ID
    assert m.recommend(["new"])["items"][0] == ["d", "c"]


def test_predict_gives_joined_strings(fixture_model: ItemKNNRecommender) -> None:
    X = pd.DataFrame({"user_id": ["u001", "nobody", "u002"], "other": [1, 2, 3]})
    got = fixture_model.predict(X)
    rec = fixture_model.recommend(X["user_id"])
    assert got.shape == (3,) and got.tolist() == [" ".join(i) for i in rec["items"]]
    with pytest.raises(SchemaError, match="user_id"):
        fixture_model.predict(pd.DataFrame({"customer": ["u001"]}))


def test_int_ids_and_str_ids_are_the_same_user() -> None:
    df = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 3], "item_id": [10, 11, 10, 12, 11, 12, 13]})
    m = ItemKNNRecommender(k=2).fit(df)
    a = m.recommend([1, 2])
    b = m.recommend(["1", "2"])
    c = m.recommend(pd.Series([1.0, 2.0]))  # an int column with a gap reads back as floats
    assert a.equals(b) and a.equals(c) and not a["fallback"].any()
    assert all(isinstance(i, str) for items in a["items"] for i in items)
    assert as_id_strings([1, "1", 1.0]).tolist() == ["1", "1", "1"]


def test_empty_requests_and_a_refit(fixture_df: pd.DataFrame) -> None:
    m = ItemKNNRecommender().fit(fixture_df.iloc[:60])
    first = m.recommend(["u029"])
    assert m.recommend([]).shape == (0, 4) and m.predict(pd.DataFrame({"user_id": []})).shape == (0,)
    assert m.similar_items([]).shape == (0, 3)
    # A refit replaces every derived array: the answers are those of a fresh model.
    m.fit(fixture_df)
    fresh = ItemKNNRecommender().fit(fixture_df)
    assert m.recommend(["u029", "u001"]).equals(fresh.recommend(["u029", "u001"]))
    assert not m.recommend(["u029"]).equals(first)


# ---- similar items --------------------------------------------------------------------------------------------


def test_similar_items(fixture_model: ItemKNNRecommender) -> None:
    sim = fixture_model.similar_items(["i000", "i004"], k=4)
    assert list(sim.columns) == ["item_id", "items", "scores"]
    for seed, items in zip(sim["item_id"], sim["items"], strict=True):
        assert seed not in items and len(items) == 4
        assert np.mean([int(i[1:]) % 3 == int(seed[1:]) % 3 for i in items]) >= 0.75


def test_unknown_item_raises_naming_it(fixture_model: ItemKNNRecommender) -> None:
    with pytest.raises(DataError, match="'i999'") as e:
        fixture_model.similar_items(["i000", "i999"])
    assert "item_id" in str(e.value) and "\n" not in str(e.value)


# ---- the ID maps ----------------------------------------------------------------------------------------------


def test_pickle_holds_no_ids_and_works_after_attach(
    fixture_model: ItemKNNRecommender, tmp_path: Path
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(fixture_model, path, compress=0)
    raw = path.read_bytes()
    for some_id in (b"u000", b"u039", b"i000", b"i029"):
        assert some_id not in raw, some_id
    assert b"u000" not in pickle.dumps(fixture_model)
    loaded = joblib.load(path)
    for call in (
        lambda: loaded.recommend(["u000"]),
        lambda: loaded.similar_items(["i000"]),
        lambda: loaded.predict(pd.DataFrame({"user_id": ["u000"]})),
        loaded.export_id_maps,
    ):
        with pytest.raises(BundleError, match="no ID maps"):
            call()
    # The maps go through CSV files, as in a bundle's id_maps/, and back.
    for name, table in fixture_model.export_id_maps().items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    maps = {
        n: pd.read_csv(tmp_path / f"{n}.csv", dtype=str, keep_default_na=False) for n in ("users", "items")
    }
    assert loaded.attach_id_maps(maps) is loaded
    users = ["u000", "u017", "stranger"]
    assert loaded.recommend(users).equals(fixture_model.recommend(users))
    assert loaded.similar_items(["i003"]).equals(fixture_model.similar_items(["i003"]))
    # The original kept its maps (pickling must not strip the live object).
    assert fixture_model.recommend(["u000"])["fallback"].tolist() == [False]


def test_attach_refuses_maps_that_do_not_match() -> None:
    df = pd.DataFrame({"user_id": ["007", "010", "007", "010"], "item_id": ["a", "a", "b", "c"]})
    m = ItemKNNRecommender().fit(df)
    maps = m.export_id_maps()
    fresh = pickle.loads(pickle.dumps(m))
    # Read back with type inference: "007" becomes 7 -> the fingerprint no longer matches.
    retyped = {**maps, "users": maps["users"].assign(user_id=maps["users"]["user_id"].astype(int))}
    with pytest.raises(IntegrityError, match="users.*fingerprint"):
        fresh.attach_id_maps(retyped)
    edited = {**maps, "items": maps["items"].assign(item_id=["a", "c", "b"])}  # two IDs swapped
    with pytest.raises(IntegrityError, match="items"):
        fresh.attach_id_maps(edited)
    with pytest.raises(IntegrityError, match="0..1"):
        fresh.attach_id_maps({**maps, "users": maps["users"].iloc[:1]})
    with pytest.raises(SchemaError, match="index"):
        fresh.attach_id_maps({**maps, "items": maps["items"].drop(columns="index")})
    with pytest.raises(BundleError, match="'users'"):
        fresh.attach_id_maps({"items": maps["items"]})
    # Shuffled rows are fine: the index column says where each ID goes.
    shuffled = {n: t.sample(frac=1, random_state=0) for n, t in maps.items()}
    assert fresh.attach_id_maps(shuffled).recommend(["007"]).equals(m.recommend(["007"]))


def test_maps_travel_in_a_bundle_and_a_tampered_map_is_refused(
    fixture_df: pd.DataFrame, fixture_model: ItemKNNRecommender, tmp_path: Path
) -> None:
    from mlprod.bundle import Bundle, load_bundle, save_bundle
    from mlprod.schema import capture_schema

    schema = capture_schema(fixture_df[["user_id"]], "recommend", None, None, categorical=["user_id"])
    b = Bundle(
        fixture_model, {"name": "recs", "task": "recommend"}, schema, id_maps=fixture_model.export_id_maps()
    )
    version = save_bundle(b, tmp_path / "recs")
    assert sorted(p.name for p in (version / "id_maps").iterdir()) == ["items.csv", "users.csv"]
    assert (
        b"u000" not in (version / "model.joblib").read_bytes()
    )  # compressed or not, no IDs in the model file
    loaded = load_bundle(version)
    model = loaded.model
    if getattr(model, "user_ids_", None) is None:  # until load_bundle attaches them itself
        model.attach_id_maps(loaded.id_maps)
    assert model.recommend(["u005"]).equals(fixture_model.recommend(["u005"]))
    users_csv = version / "id_maps" / "users.csv"
    users_csv.write_text(users_csv.read_text().replace("u005", "u500"))
    with pytest.raises(IntegrityError, match="users.csv"):
        load_bundle(version)


def test_copies_in_memory_keep_their_maps(fixture_model: ItemKNNRecommender) -> None:
    for other in (copy.deepcopy(fixture_model), copy.copy(fixture_model)):
        assert other.recommend(["u003"]).equals(fixture_model.recommend(["u003"]))
    unfitted = clone(fixture_model)
    assert unfitted.get_params() == fixture_model.get_params() and not hasattr(unfitted, "X_")


# ---- bad input ------------------------------------------------------------------------------------------------


def test_fit_errors_name_the_column(fixture_df: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="user_id"):
        ItemKNNRecommender().fit(fixture_df.drop(columns="user_id"))
    with pytest.raises(SchemaError, match="rating"):
        ItemKNNRecommender(weight_col="rating").fit(fixture_df)
    holes = fixture_df.copy()
    holes.loc[4, "item_id"] = None
    with pytest.raises(DataError, match=r"column 'item_id'.*row 5"):
        ItemKNNRecommender().fit(holes)
    bad_w = fixture_df.assign(weight=fixture_df["weight"].where(fixture_df.index != 2, -1.0))
    with pytest.raises(DataError, match=r"column 'weight'.*row 3"):
        ItemKNNRecommender(weight_col="weight").fit(bad_w)
    with pytest.raises(DataError, match="no interactions"):
        ItemKNNRecommender().fit(fixture_df.iloc[:0])
    with pytest.raises(ConfigError, match="similarity"):
        ItemKNNRecommender(similarity="pearson").fit(fixture_df)
    with pytest.raises(ConfigError, match="neighbours"):
        ItemKNNRecommender(neighbours=0).fit(fixture_df)
    with pytest.raises(ConfigError, match="'k'"):
        ItemKNNRecommender().fit(fixture_df).recommend(["u000"], k=0)
    with pytest.raises(BundleError, match="not fitted"):
        ItemKNNRecommender().recommend(["u000"])
    with pytest.raises(DataError, match="user_id"):
        ItemKNNRecommender().fit(fixture_df).recommend(["u000", None])
    with pytest.raises(ConfigError, match="similarity"):
        item_similarity(ItemKNNRecommender().fit(fixture_df).X_, "euclid")


# ---- split ----------------------------------------------------------------------------------------------------


def test_split_by_time_holds_out_each_users_latest() -> None:
    df = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "c"],
            "item_id": ["x", "y", "z", "x", "y", "x"],
            "ts": ["2026-01-03", "2026-01-01", "2026-01-02", "2026-02-01", "2026-01-01", "2026-01-01"],
        }
    )
    train, held = split_interactions(df, timestamp_col="ts")
    assert held[["user_id", "item_id"]].values.tolist() == [
        ["a", "x"],
        ["b", "x"],
    ]  # c has one: kept for training
    assert sorted(train.index) == [1, 2, 4, 5]
    train, held = split_interactions(df, timestamp_col="ts", holdout=2)
    assert sorted(held.index) == [0, 2, 3]  # a keeps its earliest; b keeps one
    with pytest.raises(DataError, match=r"column 'ts'.*row 2"):
        split_interactions(df.assign(ts=["2026-01-03", "soon", "", "", "", ""]), timestamp_col="ts")


def test_split_at_random_is_seeded_and_by_fraction() -> None:
    df, _ = planted(n_users=50, per_user=10)
    a_train, a_held = split_interactions(df, holdout=0.2, seed=7)
    b_train, b_held = split_interactions(df, holdout=0.2, seed=7, drop_known=False)
    c_held = split_interactions(df, holdout=0.2, seed=8, drop_known=False)[1]
    assert b_held.groupby("user_id").size().eq(2).all() and len(b_train) + len(b_held) == len(df)
    assert not b_held.index.equals(c_held.index)
    # drop_known removes held-out pairs the user also has in training, and only those
    pairs = set(zip(b_train["user_id"], b_train["item_id"], strict=True))
    known = [(u, i) in pairs for u, i in zip(b_held["user_id"], b_held["item_id"], strict=True)]
    assert len(a_held) == len(b_held) - sum(known) and a_train.equals(b_train)
    for bad in (0, -1, 1.0, 1.5, True, "1"):
        with pytest.raises(ConfigError, match="holdout"):
            split_interactions(df, holdout=bad)
    with pytest.raises(SchemaError, match="when"):
        split_interactions(df, timestamp_col="when")


# ---- metrics --------------------------------------------------------------------------------------------------


def test_metrics_by_hand() -> None:
    # u1 holds out {a, b, c}, gets [a, x, b, y]: hits at ranks 1 and 3.
    # u2 holds out {d}, gets [x, d]: hit at rank 2 (its list is shorter than k).
    # u3 holds out {e} and has no recommendations: zeros.  u4 has recommendations only: ignored.
    recs = pd.DataFrame(
        {"user_id": ["u1", "u2", "u4"], "items": [["a", "x", "b", "y"], ["x", "d"], ["a", "b"]]}
    )
    held = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u3", "u1"], "item_id": list("abcdea")})
    m = ranking_metrics(recs, held, k_values=(2, 4), catalog_size=20)
    d = 1 / np.log2(np.arange(2, 6))  # discounts of ranks 1..4
    assert m["users"] == 3 and m["users_without_recommendations"] == 1
    assert np.isclose(m["precision@2"], (1 / 2 + 1 / 2 + 0) / 3)
    assert np.isclose(m["precision@4"], (2 / 4 + 1 / 4 + 0) / 3)
    assert np.isclose(m["recall@2"], (1 / 3 + 1 + 0) / 3)
    assert np.isclose(m["recall@4"], (2 / 3 + 1 + 0) / 3)
    assert np.isclose(m["map@2"], (1 / 2 + (1 / 2) / 1 + 0) / 3)  # u1: P@1 / min(2, 3); u2: P@2 / 1
    assert np.isclose(m["map@4"], ((1 + 2 / 3) / 3 + 1 / 2 + 0) / 3)
    assert np.isclose(m["ndcg@2"], (d[0] / (d[0] + d[1]) + d[1] / d[0] + 0) / 3)
    assert np.isclose(m["ndcg@4"], ((d[0] + d[2]) / d[:3].sum() + d[1] / d[0] + 0) / 3)
    assert np.isclose(m["coverage@2"], 3 / 20)  # {a, x, d}
    assert np.isclose(m["coverage@4"], 5 / 20)  # {a, x, b, y, d}; u4 is not evaluated
    # A perfect list scores 1 everywhere it can.
    perfect = ranking_metrics(
        pd.DataFrame({"user_id": ["u"], "items": [["p", "q"]]}),
        pd.DataFrame({"user_id": ["u", "u"], "item_id": ["q", "p"]}),
    )
    assert (
        perfect["ndcg@5"] == perfect["map@5"] == perfect["recall@5"] == 1.0 and perfect["precision@5"] == 0.4
    )


def test_metrics_accept_predict_strings_and_ignore_repeats() -> None:
    held = pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["a", "b", "c"]})
    as_lists = pd.DataFrame({"user_id": ["1", "2"], "items": [["a", "z", "b"], ["c"]]})
    as_text = pd.DataFrame({"user_id": [1, 2], "items": ["a z b", "c"]})
    assert ranking_metrics(as_lists, held, (3,)) == ranking_metrics(as_text, held, (3,))
    repeated = pd.DataFrame({"user_id": ["1", "2"], "items": [["a", "a", "b"], ["c"]]})
    m = ranking_metrics(repeated, held, (3,))
    assert np.isclose(m["precision@3"], (2 / 3 + 1 / 3) / 2)  # "a" twice counts once
    pop = ranking_metrics(as_lists, held, (1, 3), popularity=pd.Series({"a": 10, "b": 5, "c": 1, "z": 2}))
    pct = {"a": 1.0, "b": 0.75, "z": 0.5, "c": 0.25}  # rank percentiles
    assert np.isclose(pop["popularity@1"], (pct["a"] + pct["c"]) / 2)
    assert np.isclose(pop["popularity@3"], np.mean([pct["a"], pct["z"], pct["b"], pct["c"]]))
    with pytest.raises(SchemaError, match="items"):
        ranking_metrics(as_lists.rename(columns={"items": "recs"}), held)
    with pytest.raises(DataError, match="no held-out"):
        ranking_metrics(as_lists, held.iloc[:0])
