-- Each user's latest interaction, held out to score the recommendations (sql/seen.sql is the rest).
SELECT user_id, item_id, weight, timestamp
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY timestamp DESC, item_id) AS recency
    FROM interactions_raw
)
WHERE recency = 1
ORDER BY user_id
