-- Run once by the postgres image's entrypoint, on an empty data volume only.
-- One database per service, each owned by the role docker-compose.yml connects as, so that neither
-- service can see the other's tables.
CREATE DATABASE userd;
CREATE DATABASE orderd;
