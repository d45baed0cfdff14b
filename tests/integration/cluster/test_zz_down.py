"""`down` leaves nothing of ours behind; `up` afterwards restores the cluster.

Marked cluster_down, so it runs after every other test in the session; it brings
the cluster back up so anything after it still has one.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from bench.procs import descends_from
from tests.cluster.fixtures import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.cluster_down]

OUR_CHAINS = re.compile(r"KUBE-|CNI-|VORTEX-")
OUR_NETS = ("10.201.0.", "10.202.0.", "10.203.0.")
OUR_LINKS = ("vx0", "vxcni0")


def proc_exes() -> dict[int, str]:
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                out[int(p.name)] = os.readlink(p / "exe")
    return out


def netns_inodes() -> set[int]:
    out = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                out.add(os.stat(p / "ns" / "net").st_ino)
    return out


def pod_cgroup_pids() -> set[int]:
    pids: set[int] = set()
    for root in Path("/sys/fs/cgroup").glob("*/kubepods"):
        for f in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in f.read_text().split())
    return pids


def links() -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split(": ")[1].split("@")[0] for line in out.splitlines()]


def iptables_dump() -> str:
    return "".join(
        subprocess.run([cmd], capture_output=True, text=True).stdout
        for cmd in ("iptables-save", "ip6tables-save")
    )


def test_down_leaves_nothing_and_up_restores(cluster: Cluster):
    state = cluster.state_dir
    saved = dict(
        line.split("=", 1)
        for line in (state / "sysctl.saved").read_text().splitlines()
        if "=" in line
    )
    # what is ours while the cluster runs
    pod_pids = pod_cgroup_pids()
    assert pod_pids, "no pod processes: the cluster should be running pods (CoreDNS at least)"
    pod_netns = {
        os.stat(f"/proc/{p}/ns/net").st_ino for p in pod_pids if Path(f"/proc/{p}").exists()
    }
    host_netns = os.stat("/proc/self/ns/net").st_ino
    pod_netns.discard(host_netns)
    assert pod_netns, "pods should have their own network namespaces"
    veths = [
        line.split(": ")[1].split("@")[0]
        for line in subprocess.run(
            ["ip", "-o", "link", "show", "master", "vxcni0"], capture_output=True, text=True
        ).stdout.splitlines()
    ]
    assert veths, "pods should be attached to the pod bridge"
    assert OUR_CHAINS.search(iptables_dump())

    # Mounts of another cluster on this machine (say, a fresh-machine run's) are not ours.
    foreign = {
        m
        for m in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(state) not in m and ("kubelet" in m or "containerd" in m)
    }

    cluster.down()

    # processes: no cluster binary, no container process
    # (MinIO servers this test session started itself from the same bin/ are not the cluster's)
    ours = {
        pid: exe
        for pid, exe in proc_exes().items()
        if exe.startswith(str(state / "bin") + "/") and not descends_from(pid, os.getpid())
    }
    assert ours == {}, f"processes left: {ours}"
    assert not pod_cgroup_pids()
    assert not list(Path("/sys/fs/cgroup").glob("*/kubepods")), "pod cgroups left"
    # mounts: nothing under the state dir, no overlay/nsfs of ours anywhere
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(state) not in mountinfo, [m for m in mountinfo.splitlines() if str(state) in m]
    left = [
        m
        for m in mountinfo.splitlines()
        if ("kubelet" in m or "containerd" in m) and m not in foreign
    ]
    assert left == [], left
    # network namespaces: none of the pods' netns is alive
    assert not (pod_netns & netns_inodes()), "pod network namespaces still alive"
    assert not [
        m
        for m in mountinfo.splitlines()
        if " nsfs " in m and ("cni-" in m or "netns" in m) and m not in foreign
    ], "netns mounts left"
    # iptables: no rules or chains of ours, no rule naming our networks
    dump = iptables_dump()
    assert not OUR_CHAINS.search(dump), [ln for ln in dump.splitlines() if OUR_CHAINS.search(ln)]
    assert not any(n in dump for n in OUR_NETS)
    # interfaces and routes
    left = [ln for ln in links() if ln in OUR_LINKS or ln in veths]
    assert left == [], f"interfaces left: {left}"
    routes = subprocess.run(
        ["ip", "route", "show", "table", "all"], capture_output=True, text=True
    ).stdout
    assert not any(n in routes for n in OUR_NETS), routes
    # kernel settings restored
    for key, value in saved.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        if path.exists():
            assert path.read_text().strip().replace("\t", " ") == value.strip(), key
    assert not (state / "sysctl.saved").exists()

    # and the cluster comes back for whatever runs next
    cluster.up()
    node = cluster.get_json("node", "vortex-node")
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
