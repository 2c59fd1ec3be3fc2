-- One PostgreSQL server, one database per service (they share no tables).
CREATE DATABASE issuer;
CREATE DATABASE redeemer;
