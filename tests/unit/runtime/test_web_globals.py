"""Web-standard globals Workers users expect, implemented inside the isolate."""

from __future__ import annotations

import re
import uuid

import pytest

from .conftest import RunJS


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            "new URL('https://Example.COM:443/a/./b/../c?x=1#h').href",
            "https://example.com/a/c?x=1#h",
        ),
        ("new URL('../d?y=2', 'http://h.io/a/b/c').href", "http://h.io/a/d?y=2"),
        ("new URL('//other.io/p', 'https://h.io/a').href", "https://other.io/p"),
        ("new URL('?q=1', 'https://h.io/a/b').href", "https://h.io/a/b?q=1"),
        ("new URL('#top', 'https://h.io/a?b=1').href", "https://h.io/a?b=1#top"),
        ("new URL('http://user:pw@h.io:8080/p').port", "8080"),
        ("new URL('http://user:pw@h.io:8080/p').username", "user"),
        ("new URL('https://h.io/a b').pathname", "/a%20b"),
        ("new URL('https://h.io').pathname", "/"),
        ("new URL('https://h.io:8443/x').origin", "https://h.io:8443"),
        ("new URL('https://h.io/x').host", "h.io"),
        ("new URL('mailto:ada@example.com').pathname", "ada@example.com"),
        ("new URL('http://[::1]:80/').host", "[::1]"),
        ("String(new URL('https://h.io/p?a=1'))", "https://h.io/p?a=1"),
        ("JSON.stringify({u: new URL('https://h.io/')})", '{"u":"https://h.io/"}'),
        ("URL.canParse('nope')", False),
        ("URL.canParse('/p', 'https://h.io')", True),
    ],
)
async def test_url(run_js: RunJS, expr: str, expected: object) -> None:
    assert (await run_js(f"return {expr};"))[0] == expected


async def test_url_invalid_throws_type_error(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const bad = ['', 'http://', 'https://h.io:99999/', 'relative/path'];"
        "return bad.map(b => { try { new URL(b); return 'parsed' } catch (e) { return e.name } });"
    )
    assert output == ["TypeError"] * 4


async def test_url_setters_and_search_params_link(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const u = new URL('https://h.io/a?x=1');"
        "u.searchParams.append('y', 'two words'); u.pathname = '/b/c'; u.hash = 'frag';"
        "u.port = '8443'; const s1 = u.href; u.search = '?z=9';"
        "return [s1, u.href, u.searchParams.get('z')];"
    )
    assert output == [
        "https://h.io:8443/b/c?x=1&y=two+words#frag",
        "https://h.io:8443/b/c?z=9#frag",
        "9",
    ]


async def test_url_search_params(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const p = new URLSearchParams('?a=1&b=x%20y&a=2&c=%E2%9C%93+ok');"
        "const o = new URLSearchParams({k: 'v', n: 1});"
        "const pairs = new URLSearchParams([['x', '1'], ['y', '2']]);"
        "p.set('b', 'z'); p.delete('c'); p.sort();"
        "return [p.getAll('a'), p.get('b'), p.has('c'), p.toString(), o.toString(),"
        " [...pairs.keys()], p.size, new URLSearchParams('c=%E2%9C%93+ok').get('c')];"
    )
    assert output == [["1", "2"], "z", False, "a=1&a=2&b=z", "k=v&n=1", ["x", "y"], 3, "✓ ok"]


async def test_text_encoder_decoder_round_trip(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const s = 'héllo ✓ 😀'; const b = new TextEncoder().encode(s);"
        "return [Array.from(b).length, new TextDecoder().decode(b) === s,"
        " new TextDecoder().decode(new Uint8Array([0xff, 0x41])),"
        " (() => { try { new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xff]));"
        "   return 'no' } catch (e) { return e.name } })()];"
    )
    assert output == [len("héllo ✓ 😀".encode()), True, "\ufffdA", "TypeError"]


async def test_atob_btoa(run_js: RunJS) -> None:
    output, _ = await run_js(
        "return [btoa('hello'), atob('aGVsbG8='), atob(btoa('\\u00ff\\u0000x')) === '\\u00ff\\u0000x',"
        " (() => { try { btoa('✓'); return 'no' } catch (e) { return e.name } })(),"
        " (() => { try { atob('a'); return 'no' } catch (e) { return e.name } })()];"
    )
    assert output == ["aGVsbG8=", "hello", True, "InvalidCharacterError", "InvalidCharacterError"]


async def test_structured_clone(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const o = {d: new Date(0), m: new Map([['k', {v: 1}]]), s: new Set([1]), a: [1, [2]],"
        " u: new Uint8Array([1, 2])}; o.self = o;"
        "const c = structuredClone(o);"
        "return [c !== o, c.self === c, c.d.getTime(), c.m.get('k').v, c.m.get('k') !== o.m.get('k'),"
        " c.s.has(1), c.a[1][0], Array.from(c.u),"
        " (() => { try { structuredClone(() => 1); return 'no' } catch (e) { return e.name } })()];"
    )
    assert output == [True, True, 0, 1, True, True, 2, [1, 2], "DataCloneError"]


async def test_crypto_random_uuid_and_values(run_js: RunJS) -> None:
    output, _ = await run_js(
        "const ids = new Set(); for (let i = 0; i < 1000; i++) ids.add(crypto.randomUUID());"
        "const b = crypto.getRandomValues(new Uint8Array(4096));"
        "const counts = new Array(256).fill(0); b.forEach(x => counts[x]++);"
        "return [ids.size, crypto.randomUUID(), Math.max(...counts) < 64,"
        " (() => { try { crypto.getRandomValues(new Uint8Array(70000)); return 'no' }"
        "   catch (e) { return e.name } })()];"
    )
    assert output[0] == 1000
    assert uuid.UUID(output[1]).version == 4
    assert re.fullmatch(r"[0-9a-f-]{36}", output[1])
    assert output[2] is True
    assert output[3] == "QuotaExceededError"


async def test_random_values_differ_between_invocations(isolate_of) -> None:  # type: ignore[no-untyped-def]
    from .conftest import context

    isolate = await isolate_of("return crypto.randomUUID()")
    first = await isolate.invoke("null", context(), 1)
    second = await isolate.invoke("null", context(), 1)
    assert first.output_json != second.output_json


async def test_headers_set_append_get_and_order(run_js: RunJS) -> None:
    out, _ = await run_js(
        "const h = new Headers([['B', '1'], ['a', 'x'], ['b', '2']]);"
        "h.append('Set-Cookie', 'c=1'); h.append('set-cookie', 'd=2');"
        "const before = h.get('b');"
        "h.set('b', '3'); h.set('new', 'n');"
        "return {before, after: h.get('b'), entries: [...h], cookies: h.getSetCookie(),"
        " has: h.has('NEW'), gone: (h.delete('a'), h.get('a'))};"
    )
    assert out == {
        "before": "1, 2",
        "after": "3",
        # sorted by name, as the Fetch standard iterates; each set-cookie apart
        "entries": [
            ["a", "x"],
            ["b", "3"],
            ["new", "n"],
            ["set-cookie", "c=1"],
            ["set-cookie", "d=2"],
        ],
        "cookies": ["c=1", "d=2"],
        "has": True,
        "gone": None,
    }
