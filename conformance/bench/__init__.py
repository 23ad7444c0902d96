"""``conformance bench``: throughput, latency and memory of a Pusher-protocol server, side by side
with others (docs/bench.md)."""
