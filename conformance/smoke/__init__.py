"""``conformance smoke``: minutes after a deploy, is the live deployment working? (docs/smoke.md)

``result`` and ``render`` hold what a run found and how it reads, ``steps`` and ``plain`` the
pure judgements, ``probe`` the network side, ``command`` the CLI.
"""

from .command import add_smoke_arguments, smoke_command

__all__ = ["add_smoke_arguments", "smoke_command"]
