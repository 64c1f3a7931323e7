SELECT 'café' AS word, * FROM t
