-- Classification metrics over predictions(id, prediction) and truth(id, label), joined on id.
-- mlprod registers both views (mlprod evaluate --engine sql); any engine with the same views runs it.
-- Output: a long table (metric, label, predicted, value):
--   accuracy, balanced_accuracy, precision_macro, recall_macro, f1_macro   (label NULL)
--   precision, recall, f1, support                                          (per class: label)
--   confusion                                                               (label = true, predicted)
-- Conventions follow scikit-learn: labels are the union of true and predicted labels; a precision or
-- recall with a zero denominator is 0; balanced accuracy averages recall over labels with support.
WITH joined AS (
    SELECT CAST(t.label AS VARCHAR) AS y, CAST(p.prediction AS VARCHAR) AS yhat
    FROM truth AS t
    JOIN predictions AS p ON p.id = t.id
),
confusion AS (
    SELECT y, yhat, count(*) AS n FROM joined GROUP BY y, yhat
),
labels AS (
    SELECT y AS label FROM confusion UNION SELECT yhat FROM confusion
),
per_class AS (
    SELECT
        l.label,
        CAST(coalesce(sum(c.n) FILTER (WHERE c.y = l.label AND c.yhat = l.label), 0) AS DOUBLE) AS tp,
        CAST(coalesce(sum(c.n) FILTER (WHERE c.y = l.label), 0) AS DOUBLE) AS support,
        CAST(coalesce(sum(c.n) FILTER (WHERE c.yhat = l.label), 0) AS DOUBLE) AS predicted
    FROM labels AS l
    CROSS JOIN confusion AS c
    GROUP BY l.label
),
scores AS (
    SELECT
        label,
        support,
        CASE WHEN predicted = 0 THEN 0 ELSE tp / predicted END AS precision,
        CASE WHEN support = 0 THEN 0 ELSE tp / support END AS recall,
        CASE WHEN tp = 0 THEN 0 ELSE 2 * tp / (predicted + support) END AS f1
    FROM per_class
)
SELECT 'accuracy' AS metric, NULL AS label, NULL AS predicted,
       CAST(sum(n) FILTER (WHERE y = yhat) AS DOUBLE) / sum(n) AS value
FROM confusion
UNION ALL SELECT 'balanced_accuracy', NULL, NULL, avg(recall) FILTER (WHERE support > 0) FROM scores
UNION ALL SELECT 'precision_macro', NULL, NULL, avg(precision) FROM scores
UNION ALL SELECT 'recall_macro', NULL, NULL, avg(recall) FROM scores
UNION ALL SELECT 'f1_macro', NULL, NULL, avg(f1) FROM scores
UNION ALL SELECT 'precision', label, NULL, precision FROM scores
UNION ALL SELECT 'recall', label, NULL, recall FROM scores
UNION ALL SELECT 'f1', label, NULL, f1 FROM scores
UNION ALL SELECT 'support', label, NULL, support FROM scores
UNION ALL SELECT 'confusion', y, yhat, CAST(n AS DOUBLE) FROM confusion
ORDER BY metric, label, predicted
