"""fetch benchmark: the cost of one allowed `fetch` to a loopback HTTP server, from a Vortex
function (the runtime's `/invoke`, egress allowing the server) and from a workerd worker doing
the same request, in one run. Each side's serial latency with the fetch, less its latency
without one, is what the fetch costs; printed with the ratio. The server is the tests' stdlib
one (tests/fixtures/fetch.py), the same for both.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import anchors
from tests.fixtures.fetch import serve

RUNS = 300


@contextmanager
def _vortex(code: str, egress: dict[str, object] | None) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "fn.js")
        path.write_text(code)
        port = anchors.free_port()
        env = {"VORTEX_EGRESS": json.dumps(egress)} if egress else {}
        server = anchors.runtime_server(port, "--code-file", str(path), env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            anchors.wait_http(url + "/readyz")
            yield url + "/invoke"
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    print("== fetch benchmark ==")
    with serve() as port:
        host = f"127.0.0.1:{port}"
        target = f"http://{host}"
        fetching = f"return await (await fetch({json.dumps(target + '/json')})).text();"
        ours = {}
        for name, code in (("fetch", fetching), ("none", "return 'x';")):
            with _vortex(code, {"allow": [host]}) as url:
                ours[name] = anchors.serial_latency_ms(url, runs=RUNS)
        theirs = {}
        for name, body in (("fetch", fetching), ("none", "return 'x';")):
            worker = (
                "export default { async fetch(request) {"
                f" const output = await (async () => {{ {body} }})();"
                " return Response.json({ output }); } };"
            )
            with anchors.workerd(worker, local_fetch=True) as url:
                theirs[name] = anchors.serial_latency_ms(url + "/", runs=RUNS)
    ours_cost = ours["fetch"] - ours["none"]
    theirs_cost = theirs["fetch"] - theirs["none"]
    print(f"serial latency with one fetch to a loopback server ({RUNS} runs, median):")
    print(f"  vortex runtime: {ours['fetch']:.3f} ms ({ours['none']:.3f} ms without the fetch)")
    print(f"  workerd:        {theirs['fetch']:.3f} ms ({theirs['none']:.3f} ms without the fetch)")
    print(
        f"  cost of the fetch: vortex {ours_cost:.3f} ms, workerd {theirs_cost:.3f} ms"
        f" -> ratio (vortex/workerd) {ours_cost / theirs_cost:.2f}x"
    )
    print(f"  whole request ratio (vortex/workerd): {ours['fetch'] / theirs['fetch']:.2f}x")
