"""`python -m vortex_operator`: the operator as it runs in the cluster.

Serves /healthz and /readyz (and /metrics on `VORTEX_OPERATOR_METRICS_PORT`) from the start,
waits for the leader Lease (unless `VORTEX_OPERATOR_LEADER_ELECTION=false`), then runs kopf with
the handlers of `handlers.py` over the whole cluster or `VORTEX_OPERATOR_NAMESPACES`. SIGTERM
stops kopf gracefully and releases the Lease; a lost Lease stops the operator with exit code 1
(the kubelet restarts it as a standby).

For development, `kopf run -m vortex_operator.handlers --standalone --all-namespaces` runs the
same handlers without leader election.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

import kopf

from vortex_kube.client import KubeApi
from vortex_kube.contract import OPERATOR
from vortex_operator.health import HealthServer
from vortex_operator.leader import LeaderElector
from vortex_operator.settings import Settings, get_settings

log = logging.getLogger("vortex_operator")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vortex_operator")
    parser.add_argument(
        "-n", "--namespace", action="append", default=None, help="watch only these namespaces"
    )
    parser.add_argument(
        "--no-leader-election", action="store_true", help="act at once, without the Lease"
    )
    parser.add_argument("--health-port", type=int, default=None)
    parser.add_argument("--verbose", action="store_true")
    return parser


def _lease_namespace(settings: Settings) -> str:
    if settings.lease_namespace:
        return settings.lease_namespace
    with (
        contextlib.suppress(OSError),
        open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f,
    ):
        return f.read().strip()
    return "default"


async def run(settings: Settings) -> int:
    from vortex_operator import handlers  # noqa: F401  (registers the handlers)

    kube = await KubeApi.connect(OPERATOR)
    elector: LeaderElector | None = None
    if settings.leader_election:
        elector = LeaderElector(
            kube,
            namespace=_lease_namespace(settings),
            name=settings.lease_name,
            identity=settings.identity,
            duration_s=settings.lease_duration_s,
            renew_s=settings.lease_renew_s,
        )
    started = asyncio.Event()
    stop = asyncio.Event()

    def leading() -> bool:
        return elector is None or elector.leading

    health = HealthServer(
        settings.health_host,
        settings.health_port,
        alive=lambda: elector.healthy() if elector else True,
        ready=lambda: started.is_set() and leading(),
        details=lambda: {"leader": leading(), "identity": settings.identity},
        metrics_port=settings.metrics_port,
    )
    await health.start()
    lost = False

    async def hold() -> None:
        nonlocal lost
        assert elector is not None
        await elector.hold()
        lost = True
        stop.set()

    holder: asyncio.Task[None] | None = None
    try:
        if elector is not None:
            log.info("waiting for the lease %s as %s", settings.lease_name, settings.identity)
            await elector.acquire()
            holder = asyncio.create_task(hold())
        await kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=True,
            # Without an identity kopf derives one from the OS user name, which a uid with no
            # passwd entry (the image's 10001) does not have: getpass raises KeyError.
            identity=settings.identity,  # type: ignore[arg-type]  # Identity: a NewType of str
            stop_flag=stop,
            ready_flag=started,
            memo=kopf.Memo(settings=settings),
        )
    finally:
        if holder is not None:
            holder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holder
        if elector is not None:
            await elector.release()
        await health.stop()
        await kube.close()
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    overrides: dict[str, object] = {}
    if args.namespace:
        overrides["namespaces"] = args.namespace
    if args.no_leader_election:
        overrides["leader_election"] = False
    if args.health_port is not None:
        overrides["health_port"] = args.health_port
    settings = settings.model_copy(update=overrides)
    log_format = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_format=log_format)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
