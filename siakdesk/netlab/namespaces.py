"""Real links between Linux network namespaces, shaped like a kecamatan's.

A :class:`NetLab` builds a small star network that exists only for as long as
the lab does: a *hub* namespace with a bridge, and one namespace per host
(the server, each office), joined to the bridge by a veth pair.  Each host's
link can then be

* limited in capacity, each way: ``tc`` token bucket (``tbf``) on the host's
  end (upload) and on the hub's end (download);
* made lossy, each way: an ``nft`` rule with ``numgen random`` dropping that
  share of packets in the host's input and output;
* cut and restored: the host's interface down and up (an outage).

This kernel has no ``netem``, so there is no delay or jitter here; the
in-process emulator (:mod:`siakdesk.netlab.inprocess`) adds those to one
session's UDP.  Programs run inside a host with :meth:`NetLab.popen`
(``ip netns exec``).  Addresses are 10.77.0.0/24 inside the lab's namespaces
only; nothing touches the machine's own interfaces.  Everything is removed on
exit, also after an error.  Needs root (CAP_NET_ADMIN) and ``ip``, ``tc``,
``nft``: :func:`unavailable` says why not, for a clear test skip.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
from types import TracebackType
from typing import Any

SUBNET = "10.77.0"


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")


def unavailable() -> str | None:
    """Why a lab cannot be built here, or None when it can."""
    for tool in ("ip", "tc", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, nftables)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"sdprobe{secrets.token_hex(3)}"
    try:
        _run("ip", "netns", "add", probe)
    except RuntimeError as exc:
        return f"cannot create network namespaces here: {exc}"
    _run("ip", "netns", "del", probe)
    return None


@dataclasses.dataclass(frozen=True)
class Shape:
    """A link's impairment, the same each way."""

    capacity_kbit: int | None = None
    loss: float = 0.0  # 0..1


@dataclasses.dataclass
class Host:
    name: str
    namespace: str
    address: str
    hub_end: str  # the veth's name in the hub namespace


class NetLab:
    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.hub = f"sdhub{self.tag}"
        self.hosts: dict[str, Host] = {}
        self._processes: list[subprocess.Popen[Any]] = []

    def __enter__(self) -> NetLab:
        try:
            _run("ip", "netns", "add", self.hub)
            self._in(self.hub, "ip", "link", "set", "lo", "up")
            self._in(self.hub, "ip", "link", "add", "br0", "type", "bridge")
            self._in(self.hub, "ip", "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _in(namespace: str, *argv: str) -> None:
        _run("ip", "netns", "exec", namespace, *argv)

    def add_host(self, name: str, shape: Shape | None = None) -> Host:
        number = len(self.hosts) + 1
        namespace = f"sd{self.tag}{name}"[:40]
        host_end, hub_end = f"sd{self.tag}h{number}", f"sd{self.tag}b{number}"
        address = f"{SUBNET}.{number}"
        _run("ip", "netns", "add", namespace)
        host = Host(name, namespace, address, hub_end)
        self.hosts[name] = host
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", hub_end)
        _run("ip", "link", "set", host_end, "netns", namespace)
        _run("ip", "link", "set", hub_end, "netns", self.hub)
        self._in(self.hub, "ip", "link", "set", hub_end, "master", "br0")
        self._in(self.hub, "ip", "link", "set", hub_end, "up")
        self._in(namespace, "ip", "link", "set", "lo", "up")
        self._in(namespace, "ip", "link", "set", host_end, "name", "eth0")
        self._in(namespace, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        self._in(namespace, "ip", "link", "set", "eth0", "up")
        if shape is not None:
            self.shape(name, shape)
        return host

    def shape(self, name: str, shape: Shape) -> None:
        """Set ``name``'s link to ``shape`` (replacing what it had): capacity and loss."""
        host = self.hosts[name]
        for namespace, device in ((host.namespace, "eth0"), (self.hub, host.hub_end)):
            subprocess.run(
                ["ip", "netns", "exec", namespace, "tc", "qdisc", "del", "dev", device, "root"],
                capture_output=True,
                check=False,
            )
            if shape.capacity_kbit:
                # a burst of 20 ms at the rate (at least two full packets), 300 ms of queue
                burst = max(3000, shape.capacity_kbit * 1000 // 8 // 50)
                self._in(
                    namespace, "tc", "qdisc", "add", "dev", device, "root", "tbf",
                    "rate", f"{shape.capacity_kbit}kbit", "burst", str(burst),
                    "latency", "300ms",
                )  # fmt: skip
        self._in(host.namespace, "nft", "flush", "ruleset")
        if shape.loss > 0:
            per_mille = round(shape.loss * 1000)
            drop = f"numgen random mod 1000 < {per_mille} drop;"
            rules = (
                "table inet siakdesk_lab {\n"
                + "".join(
                    f" chain {hook} {{ type filter hook {hook} priority 0; {drop} }}\n"
                    for hook in ("input", "output")
                )
                + "}\n"
            )
            subprocess.run(
                ["ip", "netns", "exec", host.namespace, "nft", "-f", "-"],
                input=rules,
                text=True,
                capture_output=True,
                check=True,
            )

    def cut(self, name: str) -> None:
        """The link of ``name`` goes away (its interface down)."""
        self._in(self.hosts[name].namespace, "ip", "link", "set", "eth0", "down")

    def restore(self, name: str) -> None:
        host = self.hosts[name]
        self._in(host.namespace, "ip", "link", "set", "eth0", "up")

    def popen(self, name: str, argv: list[str], **options: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside host ``name``; the lab kills it on exit if it still runs."""
        process: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", self.hosts[name].namespace, *argv], **options
        )
        self._processes.append(process)
        return process

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
        self._processes.clear()
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, check=False)
        self.hosts.clear()
        subprocess.run(["ip", "netns", "del", self.hub], capture_output=True, check=False)
