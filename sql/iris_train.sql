-- The demo's modelling table, fetched from the raw iris export (registered as table `iris_raw`):
-- one row per flower with every measurement and a label, in id order (deterministic output).
-- Run by `make demo` as:
--   mlprod data fetch --sql sql/iris_train.sql --table iris_raw=outputs/demo/raw/iris.csv --output outputs/demo/iris.csv
-- The same query runs on a warehouse table named iris_raw.
SELECT
    flower_id,
    sepal_length,
    sepal_width,
    petal_length,
    petal_width,
    species
FROM iris_raw
WHERE sepal_length IS NOT NULL
  AND sepal_width IS NOT NULL
  AND petal_length IS NOT NULL
  AND petal_width IS NOT NULL
  AND species IS NOT NULL
ORDER BY flower_id
