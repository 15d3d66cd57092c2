"""The person at the browser, over plain HTTP: follows a login from an authorization URL to the
client's redirect URI, filling in the pages met on the way.

Used by the interop scenarios (tests/interop/run.py) and the SDK client (py_oauth_client.py):
mcpgate's /oauth/authorize sends the browser to the upstream IdP (oidc-provider's devInteractions
login and consent forms, filled in as USER), the IdP back to mcpgate's /oauth/callback, which shows
mcpgate's consent page (answered with DECISION), and mcpgate finally redirects to the client.
Cookies are kept per driver (the IdP's session, mcpgate's login cookie), like one browser's.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import dataclass, field

import httpx2 as httpx


class LoginStopped(Exception):
    """The login ended on a page instead of at the client: `reason` is what the page says."""

    def __init__(self, reason: str, status: int, url: str, page: str):
        super().__init__(f"{reason} (HTTP {status} at {url.split('?')[0]})")
        self.reason = reason
        self.status = status
        self.url = url
        self.page = page


@dataclass
class Login:
    """Where the browser landed at the client, and what it saw on the way."""

    url: str
    params: dict[str, str]
    pages: list[str] = field(default_factory=list)

    @property
    def code(self) -> str | None:
        return self.params.get("code")


def form_action(page: str, base: str) -> str:
    m = re.search(r'<form[^>]*action="([^"]*)"', page)
    return urllib.parse.urljoin(base, html.unescape(m.group(1)) if m else base)


def hidden_inputs(page: str) -> dict[str, str]:
    out = {}
    for tag in re.findall(r"<input[^>]*>", page):
        if 'type="hidden"' in tag or "type=hidden" in tag:
            name = re.search(r'name="?([^" >]+)"?', tag)
            value = re.search(r'value="([^"]*)"', tag) or re.search(r"value=([^ >]+)", tag)
            if name:
                out[name.group(1)] = html.unescape(value.group(1)) if value else ""
    return out


def page_reason(page: str) -> str:
    """The stable reason an mcpgate error page names, or the IdP error page's message."""
    m = re.search(r"Reason: <code>([^<]+)</code>", page)
    if m:
        return m.group(1)
    m = re.search(r"<pre>([^<]+)</pre>", page) or re.search(r"<p>([^<]+)</p>", page)
    return html.unescape(m.group(1)).strip()[:200] if m else "unrecognised page"


class Browser:
    """One browser profile: a cookie jar, never following redirects by itself."""

    def __init__(self, user: str = "alice", decision: str = "allow", timeout: float = 15.0):
        self.user = user
        self.decision = decision
        self.http = httpx.Client(follow_redirects=False, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def login(self, authorize_url: str, redirect_prefix: str, max_steps: int = 30) -> Login:
        """Follows `authorize_url` until a redirect to `redirect_prefix` (not fetched)."""
        url, pages = authorize_url, []
        resp = self.http.get(url)
        for _ in range(max_steps):
            location = resp.headers.get("location")
            if location:
                url = urllib.parse.urljoin(url, location)
                if url.startswith(redirect_prefix):
                    params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
                    return Login(url, params, pages)
                resp = self.http.get(url)
                continue
            page = resp.text
            if resp.status_code == 200 and 'name="login"' in page:
                pages.append("idp-login")
                resp = self.http.post(form_action(page, url), data={"prompt": "login", "login": self.user, "password": "any"})
            elif resp.status_code == 200 and 'value="consent"' in page:
                pages.append("idp-consent")
                resp = self.http.post(form_action(page, url), data={**hidden_inputs(page), "prompt": "consent"})
            elif resp.status_code == 200 and "name=csrf" in page and "name=decision" in page:
                pages.append("gateway-consent")
                self.last_consent_page = page
                form = {**hidden_inputs(page), "decision": self.decision}
                resp = self.http.post(form_action(page, url), data=form)
            else:
                raise LoginStopped(page_reason(page), resp.status_code, url, page)
        raise LoginStopped("too many steps", resp.status_code, url, resp.text)


if __name__ == "__main__":
    # usage: login_driver.py AUTHORIZE_URL USER REDIRECT_PREFIX — prints where the browser landed
    # (for clients in other languages: the TypeScript SDK client's redirectToAuthorization).
    import json
    import sys

    browser = Browser(user=sys.argv[2])
    try:
        done = browser.login(sys.argv[1], sys.argv[3])
        print(json.dumps({"url": done.url, "params": done.params, "pages": done.pages}))
    except LoginStopped as e:
        print(json.dumps({"stopped": e.reason, "status": e.status, "at": e.url.split("?")[0]}))
    finally:
        browser.close()
