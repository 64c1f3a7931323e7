-- The interactions to train on: all but each user's latest (registered as table `interactions_raw`).
-- Run by `make demo`; sql/held_out.sql is the other part.
SELECT user_id, item_id, weight, timestamp
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY timestamp DESC, item_id) AS recency
    FROM interactions_raw
)
WHERE recency > 1
ORDER BY user_id, timestamp, item_id
