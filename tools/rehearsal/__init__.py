"""The compose rehearsal: docker-compose.yml's topology run natively with real parts, read from the
file itself (composefile), compose's DNS from dnsmasq (dns), containers as mount namespaces
(container), compose's PostgreSQL as a private cluster (postgres), and the whole (stack).
`make rehearse` runs it; tests/e2e/test_compose_rehearsal.py tests the compose path on it."""
