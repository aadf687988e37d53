"""Point Google client libraries at another endpoint without patching them.

gspread (and google-api clients) hard-code `https://sheets.googleapis.com/...` and
`https://www.googleapis.com/...`. A transport adapter mounted on those prefixes rewrites each request's
scheme and host just before it is sent, so the library, its auth and its retries run unchanged. The
connector mounts it on a google-auth `AuthorizedSession` when a mapping sets an API endpoint override;
the sandbox mounts it on a plain session. This module imports nothing from the sandbox on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: The URL prefixes gspread 6 and google-auth call. The OAuth one matters for user credentials:
#: google-auth sends their refresh to https://oauth2.googleapis.com/token whatever the file says.
GOOGLE_PREFIXES: dict[str, str] = {
    "https://sheets.googleapis.com/": "/",
    "https://www.googleapis.com/": "/",
    "https://oauth2.googleapis.com/": "/",
}


class EndpointOverrideAdapter(HTTPAdapter):
    """Send requests whose URL starts with a key of `overrides` to the matching replacement prefix.

    `overrides` maps an original prefix to its replacement, e.g.
    {"https://sheets.googleapis.com/": "https://127.0.0.1:8443/"}; the rest of the URL (path and
    query) is kept. URLs matching no prefix are sent unchanged.
    """

    def __init__(self, overrides: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Longest prefix first, so a specific override wins over a general one.
        self.overrides = dict(sorted(overrides.items(), key=lambda kv: -len(kv[0])))

    def rewrite(self, url: str) -> str:
        for prefix, replacement in self.overrides.items():
            if url.startswith(prefix):
                return replacement + url[len(prefix) :]
        return url

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.url:
            request.url = self.rewrite(request.url)
        return super().send(request, *args, **kwargs)


def mount_endpoint_override(session: requests.Session, base_url: str) -> EndpointOverrideAdapter:
    """Mount one adapter on `session` that sends every Google API call gspread makes to `base_url`."""
    base = base_url.rstrip("/") + "/"
    adapter = EndpointOverrideAdapter({prefix: base for prefix in GOOGLE_PREFIXES})
    for prefix in GOOGLE_PREFIXES:
        session.mount(prefix, adapter)
    return adapter
