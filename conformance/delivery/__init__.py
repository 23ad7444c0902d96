"""The multi-user delivery model: many users' connections driven through random interleavings
by a hypothesis state machine and judged against a model of who must, may and must not receive
each event.

``operations`` (the steps, as data), ``model`` (pure: expected state and the judge), ``config``
(rules, weights and bounds from the YAML), ``driver`` (plays steps on the wire), ``machine``
(the state machine), ``scenario`` (named fixed workloads such as admin-alerts).
"""
