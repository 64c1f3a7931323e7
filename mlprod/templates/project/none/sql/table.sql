-- The modelling table, from the raw export (registered as table `raw`): the rows with a label, in id order.
-- Run by `make demo` as
--   mlprod data fetch --sql sql/table.sql --table raw=outputs/demo/raw/table.csv --output outputs/demo/table.csv
SELECT row_id, x1, x2, grp, label
FROM raw
WHERE label IS NOT NULL
ORDER BY row_id
