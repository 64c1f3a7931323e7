SELECT customer_id, age
FRM t
