"""The login chat on the ISP's terminal server, before SLIP or PPP starts.

Many 1990s ISPs answered the modem with a text login ("login:", "Password:")
and only then started SLIP or PPP on the line; the subscriber's dialer ran a
chat script of expect/send pairs, as ``chat(8)`` does.  Both ends here are
machines of the project's one shape (``receive``, ``output``, ``events``,
``next_deadline``, ``on_timer``; :mod:`dialsim.proto.machine`), so the same
drivers run them; :class:`PhasedLineHost` hands the line to the link framing
once the chat is over.
"""

from __future__ import annotations

from dialsim.proto.machine import earliest, fire_due


class ChatScript:
    """The subscriber's dialer: wait for each ``expect`` string, answer ``send`` + CR."""

    def __init__(self, steps: list[tuple[str, str, float]], now: float) -> None:
        self.steps = list(steps)
        self.index = 0
        self.buffer = b""
        self.out: list[bytes] = []
        self.done = not self.steps
        self.failed: str | None = None
        self._deadline = now + self.steps[0][2] if self.steps else None

    def receive(self, data: bytes, now: float) -> None:
        if self.done or self.failed:
            return
        self.buffer = (self.buffer + data)[-4096:]
        while not self.done:
            expect, send, _timeout = self.steps[self.index]
            at = self.buffer.find(expect.encode())
            if at < 0:
                return
            self.buffer = self.buffer[at + len(expect) :]
            self.out.append(send.encode() + b"\r")
            self.index += 1
            if self.index == len(self.steps):
                self.done = True
                self._deadline = None
            else:
                self._deadline = now + self.steps[self.index][2]

    def output(self, now: float) -> list[bytes]:
        out, self.out = self.out, []
        return out

    def events(self) -> list:
        return []

    def next_deadline(self) -> float | None:
        return None if (self.done or self.failed) else self._deadline

    def on_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline and not self.done:
            self.failed = f"chat: no {self.steps[self.index][0]!r} within {self.steps[self.index][2]:g} s"
            self._deadline = None


class TerminalServer:
    """The ISP side: print each prompt, read a line; check the login and password.

    A prompt containing "login" or "name" takes the user name, one containing
    "assword" the password; any other prompt just takes a line.  After the
    last answer it prints the banner and the link framing takes over.
    """

    def __init__(self, prompts: list[str], authenticator, *, banner: str, now: float,
                 timeout: float = 60.0) -> None:
        self.prompts = list(prompts)
        self.auth = authenticator
        self.banner = banner
        self.index = 0
        self.user = ""
        self.password = ""
        self.buffer = b""
        self.done = not self.prompts
        self.failed: str | None = None
        self.timeout = timeout
        self.out = [b"\r\n" + self.prompts[0].encode() + b" "] if self.prompts else []
        self._deadline = now + timeout if self.prompts else None

    def receive(self, data: bytes, now: float) -> None:
        if self.done or self.failed:
            return
        self.buffer += data
        while not self.done and not self.failed:
            cut = min((i for i in (self.buffer.find(b"\r"), self.buffer.find(b"\n")) if i >= 0),
                      default=-1)
            if cut < 0:
                if len(self.buffer) > 256:
                    self.buffer = b""
                return
            line = self.buffer[:cut].decode("latin-1").strip()
            self.buffer = self.buffer[cut + 1 :].lstrip(b"\r\n")
            prompt = self.prompts[self.index].lower()
            if "login" in prompt or "name" in prompt:
                self.user = line
                self.out.append(b"\r\n")
            elif "assword" in prompt:
                self.password = line
                self.out.append(b"\r\n")  # no echo of the password
            else:
                self.out.append(line.encode("latin-1") + b"\r\n")
            self.index += 1
            self._deadline = now + self.timeout
            if self.index == len(self.prompts):
                if self.user and self.auth is not None and not self.auth.check_password(
                    self.user, self.password
                ):
                    self.failed = "login incorrect"
                    self.out.append(b"Login incorrect\r\n")
                    return
                self.done = True
                self._deadline = None
                self.out.append(self.banner.encode() + b"\r\n")
            else:
                self.out.append(self.prompts[self.index].encode() + b" ")

    def output(self, now: float) -> list[bytes]:
        out, self.out = self.out, []
        return [b"".join(out)] if out else []

    def events(self) -> list:
        return []

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline and not self.done:
            self.failed = "login timed out"
            self._deadline = None


class PhasedLineHost:
    """A chat, then the link: the line belongs to ``first`` until it is done.

    ``then`` keeps its timers running during the chat (an ISP's TCP goes on
    retransmitting to a subscriber that is gone), but what it would send is
    discarded until the chat is over: the port is not yet in SLIP/PPP mode.
    ``on_switch(now)`` is called once, when the line passes to ``then``.
    """

    def __init__(self, first, then, on_switch=None) -> None:
        self.first = first
        self.then = then
        self.on_switch = on_switch
        self.switched = False
        self.discarded_octets = 0

    def _maybe_switch(self, now: float) -> None:
        if not self.switched and self.first.done:
            self.switched = True
            if self.on_switch is not None:
                self.on_switch(now)

    def receive(self, data: bytes, now: float) -> None:
        (self.then if self.switched else self.first).receive(data, now)

    def output(self, now: float) -> list[bytes]:
        if self.switched:
            return self.then.output(now)
        out = self.first.output(now)
        self.discarded_octets += sum(len(c) for c in self.then.output(now))
        self._maybe_switch(now)
        if self.switched:
            out += self.then.output(now)
        return out

    def events(self) -> list:
        return self.then.events()

    def next_deadline(self) -> float | None:
        return earliest((self.then.next_deadline(),
                         None if self.switched else self.first.next_deadline()))

    def on_timer(self, now: float) -> None:
        if not self.switched:
            fire_due(self.first, now)
        fire_due(self.then, now)
