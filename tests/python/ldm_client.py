"""A nats.py client for tests/lame_duck.rs: connects to the URL given, prints one line per
event ("connected", "ldm", "servers <discovered URLs>", "closed") and exits once closed
(or after 30 s)."""

import asyncio
import sys

import nats


async def main(url: str) -> None:
    closed = asyncio.Event()

    def say(line: str) -> None:
        print(line, flush=True)

    async def on_ldm() -> None:
        say("ldm")

    async def on_closed() -> None:
        say("closed")
        closed.set()

    async def on_error(e: Exception) -> None:
        say(f"error {e}")

    nc = await nats.connect(
        servers=[url],
        lame_duck_mode_cb=on_ldm,
        closed_cb=on_closed,
        error_cb=on_error,
        allow_reconnect=False,
    )
    say("servers " + " ".join(sorted(str(s.netloc) for s in nc.servers)))
    say("connected")
    try:
        await asyncio.wait_for(closed.wait(), timeout=30)
    except asyncio.TimeoutError:
        say("timeout")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
