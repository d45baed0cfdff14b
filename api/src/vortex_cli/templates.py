"""The starter functions of `vortex init` and the VortexFunction manifest written beside them.

Pure: `starter_files` returns file names and contents; `commands/init.py` writes them. The
manifest's apiVersion and kind are the contract's (`vortex_kube.contract`), and it carries the
function's code inline, as crds/examples/ do, so `kubectl apply -f` deploys the same function
that `vortex deploy` deploys from the .js file.
"""

from __future__ import annotations

from vortex_kube.contract import API_VERSION, KIND

FUNCTION_FILE = "function.js"
MANIFEST_FILE = "vortexfunction.yaml"

HELLO = """\
// Body form: this is the body of an async function. `event` is the invocation's JSON input
// (null without one), `context` describes the invocation, and `return` gives the result.
const name = (event && event.name) || "world";
console.log(`greeting ${name}`);
return { message: `Hello, ${name}!` };
"""

HANDLER = """\
// Handler form: the default export is called with the invocation's JSON input (`event`, null
// without one) and its `context`; what it returns is the result.
export default async function (event, context) {
  const name = (event && event.name) || "world";
  console.log(`greeting ${name}`);
  return { message: `Hello, ${name}!`, function: context.functionName };
}
"""

TEMPLATES: dict[str, str] = {"hello": HELLO, "handler": HANDLER}


def manifest(name: str, code: str) -> str:
    """A VortexFunction named `name` with `code` inline (a YAML literal block)."""
    body = "".join(f"    {line}\n" if line else "\n" for line in code.splitlines())
    return (
        f"# Deploy with `kubectl apply -f {MANIFEST_FILE}`, or without a cluster with\n"
        f"# `vortex deploy {FUNCTION_FILE} --name {name}`. Keep the code below and\n"
        f"# {FUNCTION_FILE} the same.\n"
        f"apiVersion: {API_VERSION}\n"
        f"kind: {KIND}\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        "  code: |\n"
        f"{body}"
    )


def starter_files(template: str, name: str) -> dict[str, str]:
    """File name -> content of the starter `template` for a function named `name`."""
    code = TEMPLATES[template]
    return {FUNCTION_FILE: code, MANIFEST_FILE: manifest(name, code)}
