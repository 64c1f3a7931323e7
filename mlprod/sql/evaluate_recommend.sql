-- Ranking metrics of recommendations over predictions(id, items) and truth(id, item).
-- mlprod registers both views (mlprod evaluate --engine sql): ids and item IDs as text, `items` as a list of
-- text, best first (one row per user); the truth is the held-out interactions (any number of rows per user).
-- Parameter: $k_values, a list of integers.
-- Output: a long table (metric, label, predicted, value): precision@k and recall@k for each k (label NULL).
-- Conventions follow mlprod.recsys.ranking_metrics: the users evaluated are those of the truth; an item
-- listed twice for a user counts once, at its best position; n_rel is a user's number of distinct held-out items;
--   precision@k = mean over users of hits@k / k,   recall@k = mean over users of hits@k / n_rel.
WITH relevant AS (
    SELECT DISTINCT id, item FROM truth
),
users AS (
    SELECT id, count(*) AS n_rel FROM relevant GROUP BY id
),
listed AS (
    SELECT id, unnest(items) AS item, generate_subscripts(items, 1) AS pos
    FROM predictions
),
first_position AS (
    SELECT id, item, min(pos) AS pos FROM listed GROUP BY id, item
),
hits AS (
    SELECT f.id, f.pos
    FROM first_position AS f
    JOIN relevant AS r ON r.id = f.id AND r.item = f.item
),
ks AS (
    SELECT DISTINCT CAST(unnest($k_values) AS BIGINT) AS k
),
per_user AS (
    SELECT ks.k, u.id, CAST(u.n_rel AS DOUBLE) AS n_rel, CAST(count(h.pos) AS DOUBLE) AS hits
    FROM ks
    CROSS JOIN users AS u
    LEFT JOIN hits AS h ON h.id = u.id AND h.pos <= ks.k
    GROUP BY ks.k, u.id, u.n_rel
)
SELECT 'precision@' || k AS metric, NULL AS label, NULL AS predicted, avg(hits / k) AS value
FROM per_user GROUP BY k
UNION ALL
SELECT 'recall@' || k, NULL, NULL, avg(hits / n_rel)
FROM per_user GROUP BY k
ORDER BY CAST(split_part(metric, '@', 2) AS BIGINT), metric
