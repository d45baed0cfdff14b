// URL and URLSearchParams for Vortex isolates, following the WHATWG URL standard for the
// cases functions meet: special schemes (http, https, ws, wss, ftp, file), relative
// resolution against a base, dot segments, percent-encoding sets, default ports and opaque
// paths (mailto:, data:). International domain names are lower-cased but not punycoded.
// Evaluated by isolate.py right after bootstrap.js.
(function (global) {
  "use strict";
  const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  const encoder = new global.TextEncoder();
  const decoder = new global.TextDecoder();

  function invalid(input) {
    return new TypeError("Invalid URL: " + String(input));
  }

  function percentEncode(str, mustEncode) {
    let out = "";
    for (const ch of str) {
      const c = ch.codePointAt(0);
      if (c >= 0x20 && c < 0x7f && !mustEncode(ch)) { out += ch; continue; }
      if (ch === "%" ) { out += ch; continue; }
      for (const b of encoder.encode(ch)) out += "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
    }
    return out;
  }
  const fragmentSet = (ch) => ' "<>`'.includes(ch);
  const querySet = (ch) => ' "#<>'.includes(ch);
  const specialQuerySet = (ch) => ' "#<>\''.includes(ch);
  const pathSet = (ch) => ' "#<>?`{}'.includes(ch);
  const userinfoSet = (ch) => ' "#<>?`{}/:;=@[\\]^|'.includes(ch);
  const opaqueSet = () => false;

  function percentDecode(str) {
    if (!str.includes("%")) return str;
    const bytes = [];
    const raw = encoder.encode(str);
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === 0x25 && i + 2 < raw.length && /^[0-9a-fA-F]{2}$/.test(String.fromCharCode(raw[i + 1], raw[i + 2]))) {
        bytes.push(parseInt(String.fromCharCode(raw[i + 1], raw[i + 2]), 16));
        i += 2;
      } else bytes.push(raw[i]);
    }
    return decoder.decode(new Uint8Array(bytes));
  }

  function parseHost(input, special) {
    if (input.startsWith("[")) {
      if (!input.endsWith("]") || !/^\[[0-9a-fA-F:.]+\]$/.test(input)) return null;
      return input.toLowerCase();
    }
    if (!special) {
      if (/[\0\t\n\r #/<>?@[\\\]^|]/.test(input)) return null;
      return percentEncode(input, () => false);
    }
    const host = percentDecode(input).toLowerCase();
    if (host === "" || /[\0\t\n\r #%/:<>?@[\\\]^|]/.test(host)) return null;
    // IPv4 in dotted decimal is kept as is; other numeric forms are rare enough to ignore.
    return host;
  }

  function shortenPath(path, scheme) {
    if (scheme === "file:" && path.length === 1 && /^[A-Za-z]:$/.test(path[0])) return;
    path.pop();
  }

  function parse(input, base) {
    let s = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
    const url = { scheme: "", username: "", password: "", host: null, port: "", path: [], opaque: null, query: null, fragment: null };
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s);
    let rest;
    if (m) {
      url.scheme = m[1].toLowerCase() + ":";
      rest = s.slice(m[0].length);
      const special = url.scheme in SPECIAL;
      if (special && base && base.scheme === url.scheme && !/^[/\\]/.test(rest)) {
        return relative(url, rest, base);
      }
      if (special || rest.startsWith("//")) {
        if (special) rest = rest.replace(/^[/\\]*/, "");
        else rest = rest.slice(2);
        return authority(url, rest, special);
      }
      if (rest.startsWith("/")) return pathQueryFragment(url, rest, false);
      // An opaque path: mailto:, data:, javascript: and friends.
      const cut = splitQF(rest);
      url.opaque = percentEncode(cut.path, opaqueSet);
      url.query = cut.query === null ? null : percentEncode(cut.query, querySet);
      url.fragment = cut.fragment === null ? null : percentEncode(cut.fragment, fragmentSet);
      return url;
    }
    if (!base) return null;
    if (base.opaque !== null) {
      if (!s.startsWith("#")) return null;
      const copy = { ...base, path: [], fragment: percentEncode(s.slice(1), fragmentSet) };
      return copy;
    }
    url.scheme = base.scheme;
    return relative(url, s, base);
  }

  function splitQF(str) {
    let fragment = null, query = null, path = str;
    const h = path.indexOf("#");
    if (h >= 0) { fragment = path.slice(h + 1); path = path.slice(0, h); }
    const q = path.indexOf("?");
    if (q >= 0) { query = path.slice(q + 1); path = path.slice(0, q); }
    return { path, query, fragment };
  }

  function relative(url, rest, base) {
    const special = url.scheme in SPECIAL;
    const slash = special ? /^[/\\]{2}/ : /^\/\//;
    if (slash.test(rest)) return authority(url, rest.slice(2), special);
    url.username = base.username; url.password = base.password; url.host = base.host; url.port = base.port;
    if (rest === "") { url.path = base.path.slice(); url.query = base.query; return url; }
    if (rest.startsWith("/") || (special && rest.startsWith("\\"))) return pathQueryFragment(url, rest, special);
    if (rest.startsWith("?")) {
      url.path = base.path.slice();
      const cut = splitQF(rest);
      url.query = percentEncode(cut.query, special ? specialQuerySet : querySet);
      url.fragment = cut.fragment === null ? null : percentEncode(cut.fragment, fragmentSet);
      return url;
    }
    if (rest.startsWith("#")) {
      url.path = base.path.slice(); url.query = base.query;
      url.fragment = percentEncode(rest.slice(1), fragmentSet);
      return url;
    }
    url.path = base.path.slice();
    shortenPath(url.path, url.scheme);
    return pathQueryFragment(url, rest, special, true);
  }

  function authority(url, rest, special) {
    let end = rest.search(special ? /[/\\?#]/ : /[/?#]/);
    if (end < 0) end = rest.length;
    let auth = rest.slice(0, end);
    rest = rest.slice(end);
    const at = auth.lastIndexOf("@");
    if (at >= 0) {
      const info = auth.slice(0, at);
      auth = auth.slice(at + 1);
      const colon = info.indexOf(":");
      url.username = percentEncode(colon >= 0 ? info.slice(0, colon) : info, userinfoSet);
      url.password = colon >= 0 ? percentEncode(info.slice(colon + 1), userinfoSet) : "";
    }
    const pm = /:(\d*)$/.exec(auth);
    let hostPart = auth;
    if (pm && !auth.endsWith("]")) {
      hostPart = auth.slice(0, pm.index);
      if (pm[1] !== "") {
        const port = parseInt(pm[1], 10);
        if (port > 65535) return null;
        url.port = String(port) === SPECIAL[url.scheme] ? "" : String(port);
      }
    } else if (/:[^\]]*$/.test(auth) && !auth.startsWith("[")) return null;
    if (hostPart === "" && special && url.scheme !== "file:") return null;
    url.host = hostPart === "" ? "" : parseHost(hostPart, special);
    if (url.host === null) return null;
    if (url.scheme === "file:" && url.host === "localhost") url.host = "";
    return pathQueryFragment(url, rest, special);
  }

  function pathQueryFragment(url, rest, special, merge) {
    const cut = splitQF(rest);
    let p = cut.path;
    if (special) p = p.replace(/\\/g, "/");
    const segments = p.split("/");
    if (!merge) { if (segments[0] === "") segments.shift(); url.path = url.path && merge ? url.path : []; }
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      const lower = seg.toLowerCase();
      if (lower === ".." || lower === ".%2e" || lower === "%2e." || lower === "%2e%2e") {
        shortenPath(url.path, url.scheme);
        if (last) url.path.push("");
      } else if (lower === "." || lower === "%2e") {
        if (last) url.path.push("");
      } else {
        url.path.push(percentEncode(seg, pathSet));
      }
    }
    if (special && url.path.length === 0) url.path.push("");
    url.query = cut.query === null ? null : percentEncode(cut.query, special ? specialQuerySet : querySet);
    url.fragment = cut.fragment === null ? null : percentEncode(cut.fragment, fragmentSet);
    return url;
  }

  function pathname(u) {
    if (u.opaque !== null) return u.opaque;
    return u.path.length || u.host !== null ? "/" + u.path.join("/") : "";
  }

  function serialize(u, excludeFragment) {
    let out = u.scheme;
    if (u.host !== null) {
      out += "//";
      if (u.username || u.password) out += u.username + (u.password ? ":" + u.password : "") + "@";
      out += u.host + (u.port ? ":" + u.port : "");
    }
    out += pathname(u);
    if (u.query !== null) out += "?" + u.query;
    if (!excludeFragment && u.fragment !== null) out += "#" + u.fragment;
    return out;
  }

  // ------------------------------------------------------------------ URLSearchParams
  function formEncode(s) {
    let out = "";
    for (const b of encoder.encode(String(s))) {
      const ch = String.fromCharCode(b);
      if (/[A-Za-z0-9*\-._]/.test(ch)) out += ch;
      else if (b === 0x20) out += "+";
      else out += "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
    }
    return out;
  }
  function formParse(q) {
    const list = [];
    for (const part of q.split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const k = eq >= 0 ? part.slice(0, eq) : part;
      const v = eq >= 0 ? part.slice(eq + 1) : "";
      list.push([percentDecode(k.replace(/\+/g, " ")), percentDecode(v.replace(/\+/g, " "))]);
    }
    return list;
  }

  const LIST = Symbol("list");
  const OWNER = Symbol("owner");

  class URLSearchParams {
    constructor(init = "") {
      this[LIST] = [];
      this[OWNER] = null;
      if (init instanceof URLSearchParams) this[LIST] = init[LIST].map(([k, v]) => [k, v]);
      else if (init !== null && typeof init === "object") {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const arr = Array.from(pair);
            if (arr.length !== 2) throw new TypeError("Each pair must have exactly two items");
            this[LIST].push([String(arr[0]), String(arr[1])]);
          }
        } else {
          for (const k of Object.keys(init)) this[LIST].push([k, String(init[k])]);
        }
      } else {
        const s = String(init);
        this[LIST] = formParse(s.startsWith("?") ? s.slice(1) : s);
      }
    }
    _update() {
      if (this[OWNER]) { const t = this.toString(); this[OWNER].query = t === "" ? null : t; }
    }
    get size() { return this[LIST].length; }
    append(name, value) { this[LIST].push([String(name), String(value)]); this._update(); }
    delete(name, value) {
      name = String(name);
      this[LIST] = this[LIST].filter(([k, v]) => k !== name || (value !== undefined && v !== String(value)));
      this._update();
    }
    get(name) { const e = this[LIST].find(([k]) => k === String(name)); return e ? e[1] : null; }
    getAll(name) { return this[LIST].filter(([k]) => k === String(name)).map(([, v]) => v); }
    has(name, value) { return this[LIST].some(([k, v]) => k === String(name) && (value === undefined || v === String(value))); }
    set(name, value) {
      name = String(name); value = String(value);
      const i = this[LIST].findIndex(([k]) => k === name);
      if (i < 0) this[LIST].push([name, value]);
      else { this[LIST][i][1] = value; this[LIST] = this[LIST].filter(([k], j) => k !== name || j === i); }
      this._update();
    }
    sort() { this[LIST].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._update(); }
    forEach(fn, thisArg) { for (const [k, v] of this[LIST]) fn.call(thisArg, v, k, this); }
    *keys() { for (const [k] of this[LIST]) yield k; }
    *values() { for (const [, v] of this[LIST]) yield v; }
    *entries() { for (const [k, v] of this[LIST]) yield [k, v]; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this[LIST].map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&"); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }
  }

  // ------------------------------------------------------------------ URL
  const RECORD = Symbol("record");
  const PARAMS = Symbol("params");

  class URL {
    constructor(input, base) {
      let baseRecord;
      if (base !== undefined) {
        baseRecord = parse(base instanceof URL ? base.href : base);
        if (!baseRecord) throw invalid(base);
      }
      const record = parse(input instanceof URL ? input.href : input, baseRecord);
      if (!record) throw invalid(input);
      this[RECORD] = record;
      this[PARAMS] = null;
    }
    static canParse(input, base) { try { new URL(input, base); return true; } catch (_) { return false; } }
    static parse(input, base) { try { return new URL(input, base); } catch (_) { return null; } }
    _reparse(href) {
      const r = parse(href);
      if (!r) throw invalid(href);
      this[RECORD] = r;
      if (this[PARAMS]) { this[PARAMS][LIST] = formParse(r.query || ""); this[PARAMS][OWNER] = r; }
    }
    get href() { return serialize(this[RECORD]); }
    set href(v) { this._reparse(String(v)); }
    get origin() {
      const u = this[RECORD];
      if (u.scheme === "file:" || !(u.scheme in SPECIAL)) return "null";
      return u.scheme + "//" + u.host + (u.port ? ":" + u.port : "");
    }
    get protocol() { return this[RECORD].scheme; }
    set protocol(v) {
      const scheme = String(v).replace(/:.*$/, "").toLowerCase() + ":";
      if ((scheme in SPECIAL) !== (this[RECORD].scheme in SPECIAL)) return;
      const u = { ...this[RECORD], scheme };
      if (u.port === SPECIAL[scheme]) u.port = "";
      this._reparse(serialize(u));
    }
    get username() { return this[RECORD].username; }
    set username(v) { if (this[RECORD].host) { this[RECORD].username = percentEncode(String(v), userinfoSet); } }
    get password() { return this[RECORD].password; }
    set password(v) { if (this[RECORD].host) { this[RECORD].password = percentEncode(String(v), userinfoSet); } }
    get host() { const u = this[RECORD]; return u.host === null ? "" : u.host + (u.port ? ":" + u.port : ""); }
    set host(v) {
      const u = this[RECORD];
      if (u.opaque !== null) return;
      const r = parse(u.scheme + "//" + String(v) + pathname(u));
      if (r && r.host) { u.host = r.host; u.port = r.port; }
    }
    get hostname() { return this[RECORD].host === null ? "" : this[RECORD].host; }
    set hostname(v) {
      const u = this[RECORD];
      if (u.opaque !== null) return;
      const r = parse(u.scheme + "//" + String(v).replace(/:.*$/, "") + "/");
      if (r && r.host) u.host = r.host;
    }
    get port() { return this[RECORD].port; }
    set port(v) {
      const u = this[RECORD];
      if (u.host === null || u.host === "" || u.scheme === "file:") return;
      const s = String(v);
      if (s === "") { u.port = ""; return; }
      const m = /^\d+/.exec(s);
      if (!m || parseInt(m[0], 10) > 65535) return;
      const port = String(parseInt(m[0], 10));
      u.port = port === SPECIAL[u.scheme] ? "" : port;
    }
    get pathname() { return pathname(this[RECORD]); }
    set pathname(v) {
      const u = this[RECORD];
      if (u.opaque !== null) return;
      const special = u.scheme in SPECIAL;
      u.path = [];
      let p = String(v);
      if (!p.startsWith("/") && !(special && p.startsWith("\\"))) p = "/" + p;
      const r = pathQueryFragment({ ...u, path: [] }, p.replace(/[?#]/g, (c) => (c === "?" ? "%3F" : "%23")), special);
      u.path = r.path;
    }
    get search() { const q = this[RECORD].query; return q === null || q === "" ? "" : "?" + q; }
    set search(v) {
      const u = this[RECORD];
      let s = String(v);
      if (s.startsWith("?")) s = s.slice(1);
      u.query = s === "" ? null : percentEncode(s, u.scheme in SPECIAL ? specialQuerySet : querySet);
      if (this[PARAMS]) this[PARAMS][LIST] = formParse(u.query || "");
    }
    get searchParams() {
      if (!this[PARAMS]) {
        const p = new URLSearchParams(this[RECORD].query || "");
        p[OWNER] = this[RECORD];
        this[PARAMS] = p;
      }
      return this[PARAMS];
    }
    get hash() { const f = this[RECORD].fragment; return f === null || f === "" ? "" : "#" + f; }
    set hash(v) {
      let s = String(v);
      if (s.startsWith("#")) s = s.slice(1);
      this[RECORD].fragment = s === "" ? null : percentEncode(s, fragmentSet);
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
    get [Symbol.toStringTag]() { return "URL"; }
  }

  for (const [name, value] of [["URL", URL], ["URLSearchParams", URLSearchParams]]) {
    Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
  }
})(globalThis);
