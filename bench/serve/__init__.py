"""bench/serve: each server setup on loopback under wrk, side by side in one run (bench/run)."""
