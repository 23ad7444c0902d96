"""``conformance simulate``: many virtual users, each with several tabs, through the fault
proxy, measuring what users feel (connect time, delivery, loss, duplicates, order, recovery)
and grading production readiness apart from conformance (docs/simulate.md)."""
