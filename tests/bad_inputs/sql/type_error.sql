SELECT CAST(city AS INTEGER) AS city_number
FROM t
