SELECT *
FROM t
WHERE age > $min_age
