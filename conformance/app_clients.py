"""One check's view of the target's apps: which app each connection was opened to, and an
HTTP API client per app, so that a step's ``app:`` signs and connects as that app."""

from __future__ import annotations

import dataclasses

from .errors import PreconditionFailed, UsageError
from .httpclient import ApiClient
from .target import Target
from .target_apps import OtherApp
from .transcript import Transcript

__all__ = ["APP_FIELD_OF_STEP", "CheckApps"]

#: A step's ``app:`` -> the target file's field that declares that app.
APP_FIELD_OF_STEP = {"second": "second_app", "disabled": "disabled_app", "quota": "quota_app"}


class CheckApps:
    """The apps one check talks to; ``None`` always means the target's main app."""

    def __init__(self, target: Target, main_api: ApiClient, transcript: Transcript) -> None:
        self.target = target
        self._main_api = main_api
        self._transcript = transcript
        #: Connection name -> the app it was opened to; absent: the main app.
        self._app_of: dict[str, str] = {}
        #: HTTP API clients of the other apps, made on first use.
        self._apis: dict[str, ApiClient] = {}

    def other(self, app: str) -> OtherApp:
        """The app a step's ``app:`` names (``second``, ``disabled``, ``quota``).

        Raises:
            PreconditionFailed: the target does not declare it (a check that needs it names
                it in ``capabilities`` and is skipped before it gets here).
        """
        field_name = APP_FIELD_OF_STEP.get(app)
        if field_name is None:
            raise UsageError(f"unknown app {app!r} (known: {', '.join(APP_FIELD_OF_STEP)})")
        found = self.target.other_apps.get(field_name)
        if found is None:
            raise PreconditionFailed(f"the target declares no {field_name}")
        return found

    def target_for(self, app: str | None) -> Target:
        """The target through one of its apps: the same server, that app's credentials (an
        app declared without an id or secret keeps the main app's, which no check of it
        uses)."""
        if app is None:
            return self.target
        other = self.other(app)
        return dataclasses.replace(
            self.target,
            key=other.key,
            app_id=other.app_id or self.target.app_id,
            secret=other.secret or self.target.secret,
        )

    def api(self, app: str | None, timeout: float) -> ApiClient:
        """The HTTP API client that signs as ``app``."""
        if app is None:
            return self._main_api
        if app not in self._apis:
            self._apis[app] = ApiClient(self.target_for(app), self._transcript, timeout)
        return self._apis[app]

    def opened(self, name: str, app: str | None) -> str | None:
        """Record the app connection ``name`` is (re)opened to; return the key to use for it
        (``None``: the main app's)."""
        self._app_of.pop(name, None)
        if app is None:
            return None
        key = self.other(app).key
        self._app_of[name] = app
        return key

    def of_connection(self, name: str) -> Target:
        """The target through the app connection ``name`` was opened to, for signing."""
        return self.target_for(self._app_of.get(name))

    async def aclose(self) -> None:
        for api in self._apis.values():
            await api.aclose()
