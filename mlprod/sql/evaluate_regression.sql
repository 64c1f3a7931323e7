-- Regression metrics over predictions(id, prediction) and truth(id, label), joined on id.
-- mlprod registers both views (mlprod evaluate --engine sql); any engine with the same views runs it.
-- Output: a long table (metric, label, predicted, value) with rmse, mae, r2, mape (label NULL).
-- MAPE follows scikit-learn: |y - yhat| / max(|y|, machine epsilon), as a fraction.
WITH joined AS (
    SELECT CAST(t.label AS DOUBLE) AS y, CAST(p.prediction AS DOUBLE) AS yhat
    FROM truth AS t
    JOIN predictions AS p ON p.id = t.id
),
stats AS (
    SELECT
        avg((y - yhat) * (y - yhat)) AS mse,
        avg(abs(y - yhat)) AS mae,
        sum((y - yhat) * (y - yhat)) AS ss_res,
        sum((y - (SELECT avg(y) FROM joined)) * (y - (SELECT avg(y) FROM joined))) AS ss_tot,
        avg(abs(y - yhat) / greatest(abs(y), 2.220446049250313e-16)) AS mape,
        count(*) AS n
    FROM joined
)
SELECT 'rmse' AS metric, NULL AS label, NULL AS predicted, sqrt(mse) AS value FROM stats
UNION ALL SELECT 'mae', NULL, NULL, mae FROM stats
UNION ALL SELECT 'r2', NULL, NULL, CASE WHEN n < 2 THEN NULL WHEN ss_tot = 0 THEN NULL ELSE 1 - ss_res / ss_tot END FROM stats
UNION ALL SELECT 'mape', NULL, NULL, mape FROM stats
ORDER BY metric
