"""``conformance auth-endpoint``: certify an app's channel-authorization endpoint (and its
user-authentication endpoint) rather than a Channels server.

The endpoint is where a deployment decides who may read ``private-admin.*``; a wrong rule there
leaks every event on those channels however correct the server is. The pieces:

- ``files``: the credentials file (how each user logs in) and the policy file (which channels
  each user may read, and their id), both read into frozen values;
- ``judge``: pure functions that compute the signature a request deserves and judge a reply;
- ``names``: the channel names and socket ids to try, fixed lists and hypothesis strategies
  around the policy;
- ``checks``: the check registry the spec file ``specs/auth-endpoint.yaml`` names;
- ``probe``: the only module that talks HTTP (aiohttp), behind a one-method interface;
- ``command``: the command line.
"""

from __future__ import annotations
