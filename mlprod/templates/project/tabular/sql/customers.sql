-- The modelling table, from the raw customer export (registered as table `customers_raw`): one row per
-- customer with a known outcome, in id order. Run by `make demo` as
--   mlprod data fetch --sql sql/customers.sql --table customers_raw=outputs/demo/raw/customers.csv --output outputs/demo/customers.csv
SELECT customer_id, age, income, tenure_months, plan, churned
FROM customers_raw
WHERE churned IS NOT NULL
ORDER BY customer_id
