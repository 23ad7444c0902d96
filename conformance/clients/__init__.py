"""Client certification: a scripted Pusher server of the suite's own, and a driver protocol that
steers the client library under test (docs/client-driver.md, docs/client-certification.md).

Layout, from the bottom up:

- ``protocol``: the server's protocol decisions as pure functions and one small per-connection
  state machine (frames, signatures, presence rosters, the auth endpoints' answers);
- ``timeline``: the time-stamped record of everything a check saw, which waits can watch and
  which becomes the check's transcript;
- ``scripted_server``: the asyncio adapter that puts ``protocol`` on real sockets (ws, wss,
  HTTP) and carries out a scenario's scripted actions;
- ``driver_link``: the driver process and its JSON-lines channel;
- ``scenarios``: the named client checks the spec refers to;
- ``runner`` and ``command``: one check end to end, the run, and ``conformance client``.

Nothing here imports ``reference_server``: the certifier must not share code with a server it
might one day be used to judge.
"""
