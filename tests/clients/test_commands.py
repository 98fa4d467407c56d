"""The terminal client's commands: the frames each /command sends, and mistakes refused before sending."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from serverless_app.clients.commands import HELP, Commands
from serverless_app.clients.render import Renderer
from serverless_app.clients.session import ChatSession


class FakeLink:
    """Stands in for the connection: records the frames the commands send."""

    online = True

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_soon(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    async def request(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)

    async def quit(self) -> None:
        pass


def run_commands(*lines: str, direct: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], str]:
    """The frames and the output of typing ``lines`` into a client in #general (no server)."""
    session = ChatSession("alice", ["general"])
    for room, peer in (direct or {}).items():
        session.receive({"action": "joined", "room": room, "users": [], "visibility": "direct", "peer": peer})
    out = io.StringIO()
    link = FakeLink()
    commands = Commands(session, Renderer("alice", file=out), link)

    async def type_all() -> None:
        for line in lines:
            await commands.apply(line)

    asyncio.run(type_all())
    return [f for f in link.sent if f["action"] != "getHistory"], out.getvalue()


def test_room_commands_send_the_protocol_frames() -> None:
    """Each new command maps to its action; ROOM defaults to the active room; @user names a direct room."""
    dm = "dm-" + "cd" * 16
    frames, out = run_commands(
        "/create team-x",
        "/create town public",
        "/invite bob",
        "/kick bob team-x",
        "/ban @bob #team-x",
        "/unban bob",
        "/admin bob team-x",
        "/member bob",
        "/dm carol",
        "/rooms",
        "/who @dave",
        direct={dm: "dave"},
    )
    assert frames == [
        {"action": "createRoom", "room": "team-x", "visibility": "private"},
        {"action": "createRoom", "room": "town", "visibility": "public"},
        {"action": "invite", "room": "general", "user_id": "bob"},
        {"action": "kick", "room": "team-x", "user_id": "bob"},
        {"action": "ban", "room": "team-x", "user_id": "bob"},
        {"action": "unban", "room": "general", "user_id": "bob"},
        {"action": "setRole", "room": "team-x", "user_id": "bob", "role": "admin"},
        {"action": "setRole", "room": "general", "user_id": "bob", "role": "member"},
        {"action": "openDirect", "user_id": "carol"},
        {"action": "listRooms", "limit": 50},
        {"action": "getPresence", "room": dm, "limit": 50},
    ]
    assert "✗" not in out


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("/create", "usage: /create NAME [private|public]"),
        ("/create team-x secret", "usage: /create NAME [private|public]"),
        ("/create dm-x", "reserved for direct conversations"),
        ("/invite", "usage: /invite USER [ROOM]"),
        ("/kick b!b", "is not a valid user id"),
        ("/ban bob @nobody", "no direct conversation with nobody yet: /dm nobody"),
        ("/kick dave @dave", "is a direct conversation: nobody moderates it"),
        ("/dm", "usage: /dm USER"),
        ("/dm alice", "a direct conversation needs another user"),
    ],
)
def test_bad_room_commands_are_refused_before_sending(line: str, complaint: str) -> None:
    """Mistakes are explained locally and nothing is sent."""
    frames, out = run_commands(line, direct={"dm-" + "cd" * 16: "dave"})
    assert frames == [] and complaint in out, out


def test_help_lists_every_command() -> None:
    """/help names each command."""
    for command in ("/create", "/invite", "/kick", "/ban", "/unban", "/admin", "/member", "/dm", "/rooms"):
        assert f"  {command} " in HELP
