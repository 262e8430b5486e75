"""A person on the class hub, as a program (``tests/test_hub.py``, ``bench/class_load.py``):
log in through the hub's login form, start the server, call its APIs (nbgrader's Assignments
API, contents), run code in a kernel over Jupyter's websocket protocol. Plain ``requests`` and
``websocket-client``, so it also runs under locust's gevent.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import requests

TIMEOUT = 300  # an HTTP call on a busy 2-core machine (a fetch, a submit, an autograde)


class HubClientError(AssertionError):
    """A call to the hub or a server did not do what it should; the message says what came back."""


@dataclass
class Person:
    """Someone logged in on the hub (the login form, PAM), with an API token of their own."""
    name: str
    base: str
    token: str = ""
    session: requests.Session = field(default_factory=requests.Session)
    prefix: str = ""   # the server's path; default /user/<name>/ (a Jupyter server of its own: "/")

    @property
    def server_prefix(self) -> str:
        return self.prefix or f"/user/{self.name}/"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    # --- the hub ----------------------------------------------------------------------------
    def log_in(self, password: str, timeout: float = 120) -> "Person":
        """The login form, as a browser posts it; then a token for the APIs."""
        s = self.session
        s.get(f"{self.base}/hub/login", timeout=timeout).raise_for_status()
        r = s.post(f"{self.base}/hub/login?next=/hub/home", allow_redirects=False, timeout=timeout,
                   data={"username": self.name, "password": password, "_xsrf": s.cookies.get("_xsrf")})
        if r.status_code != 302:
            raise HubClientError(f"log-in of {self.name} refused: {r.status_code} {r.text[:500]}")
        r = s.post(f"{self.base}/hub/api/users/{self.name}/tokens", json={"note": "autograder.hubclient"},
                   timeout=timeout, headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")})
        if r.status_code != 201:
            raise HubClientError(f"no token for {self.name}: {r.status_code} {r.text[:500]}")
        self.token = r.json()["token"]
        return self

    def server_state(self) -> dict:
        return (self.ok("get", f"/hub/api/users/{self.name}").get("servers", {}).get("") or {})

    def start_server(self, timeout: float = 300, poll: float = 0.5) -> None:
        r = self.post(f"/hub/api/users/{self.name}/server")
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise HubClientError(f"{self.name}'s server: {r.status_code} {r.text[:500]}")
        deadline = time.monotonic() + timeout
        while not self.server_state().get("ready"):
            if time.monotonic() > deadline:
                raise HubClientError(f"{self.name}'s server did not start in {timeout:.0f} s")
            time.sleep(poll)

    # --- HTTP -------------------------------------------------------------------------------
    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.base + path, headers=self.headers, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return requests.put(self.base + path, headers=self.headers, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return requests.delete(self.base + path, headers=self.headers, timeout=kw.pop("timeout", TIMEOUT), **kw)

    def ok(self, method: str, path: str, **kw) -> dict | list:
        """A JSON answer that reports success (nbgrader's ``{"success": ...}`` included)."""
        r = getattr(self, method)(path, **kw)
        if r.status_code >= 300:
            raise HubClientError(f"{method.upper()} {path}: {r.status_code} {r.text[:2000]}")
        body = r.json() if r.content else {}
        if isinstance(body, dict) and body.get("success") is False:
            raise HubClientError(f"{method.upper()} {path}:\n{body.get('log', '')}\n{body.get('error', '')}")
        return body

    def server(self, method: str, path: str, **kw) -> dict | list:
        return self.ok(method, self.server_prefix + path, **kw)

    def formgrader(self, method: str, what: str) -> dict | list:
        """nbgrader's formgrader API (``assignment/<id>/release``, ``submissions/<id>`` ...), a hub service."""
        from .hub import SERVICE
        return self.ok(method, f"/services/{SERVICE}/formgrader/api/{what}")

    # --- nbgrader's Assignments API of the person's server ----------------------------------
    def assignments(self, course: str = "dgm") -> list[dict]:
        return self.server("get", f"assignments?course_id={course}")["value"]

    def fetch(self, aid: str, course: str = "dgm") -> None:
        self.server("post", "assignments/fetch", json={"course_id": course, "assignment_id": aid})

    def submit(self, aid: str, course: str = "dgm") -> None:
        self.server("post", "assignments/submit", json={"course_id": course, "assignment_id": aid})

    def has_feedback(self, aid: str, course: str = "dgm") -> bool:
        """Whether feedback for one of this person's submissions of ``aid`` waits in the exchange."""
        return any(sub.get("has_exchange_feedback") for a in self.assignments(course)
                   if a["assignment_id"] == aid for sub in a.get("submissions", []))

    def kernel(self, name: str = "python3") -> "Kernel":
        return Kernel(self, self.server("post", "api/kernels", json={"name": name})["id"])


@dataclass
class Reply:
    stdout: str
    stderr: str
    error: str | None   # the traceback of an exception, if the code raised one


class KernelDied(HubClientError):
    """The kernel died (and is restarting) while the code ran."""


class Kernel:
    """A kernel of a person's server, driven over the websocket (``/api/kernels/<id>/channels``)."""

    def __init__(self, person: Person, kernel_id: str):
        self.person, self.id = person, kernel_id

    def _connect(self, timeout: float):
        import websocket

        url = self.person.base.replace("http", "ws", 1) + f"{self.person.server_prefix}api/kernels/{self.id}/channels"
        return websocket.create_connection(url, header=[f"Authorization: token {self.person.token}"], timeout=timeout)

    def state(self) -> str:
        return self.person.server("get", f"api/kernels/{self.id}")["execution_state"]

    def wait_restarted(self, timeout: float = 180) -> None:
        """Until the server has a kernel under this id again (after one died: the server restarts it)."""
        deadline = time.monotonic() + timeout
        while (state := self.state()) in ("restarting", "autorestarting", "dead"):
            if time.monotonic() > deadline:
                raise HubClientError(f"kernel {self.id} still {state} after {timeout:.0f} s")
            time.sleep(0.5)

    def execute(self, code: str, timeout: float = 300, wait: bool = True) -> Reply | None:
        """Run ``code``; its output, or (``wait=False``) None as soon as it started."""
        ws = self._connect(timeout)
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.person.name, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out, err, error = [], [], None
        try:
            while True:
                msg = json.loads(ws.recv())
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] in ("restarting", "dead"):
                    raise KernelDied(f"kernel {self.id} of {self.person.name} died ({msg['content']['execution_state']})")
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    (out if msg["content"]["name"] == "stdout" else err).append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    error = "\n".join(msg["content"]["traceback"])
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy" and not wait:
                    return None
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return Reply("".join(out), "".join(err), error)
        finally:
            ws.close()

    def run(self, code: str, timeout: float = 300) -> str:
        """Run ``code``, which must not raise; its stdout."""
        reply = self.execute(code, timeout)
        if reply.error:
            raise HubClientError(f"{self.person.name}'s kernel raised:\n{reply.error}")
        return reply.stdout

    def shutdown(self) -> None:
        self.person.delete(f"{self.person.server_prefix}api/kernels/{self.id}", timeout=60)
