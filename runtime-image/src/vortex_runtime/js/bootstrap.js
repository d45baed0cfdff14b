// The JavaScript world of a Vortex isolate: console capture, timers, web globals and the
// invocation driver. Evaluated once per isolate by isolate.py, before the function's code; the
// evaluation returns the `install` function, which only the host holds.
// Everything the runtime relies on is captured here, so code that later replaces globals or
// pollutes prototypes only breaks itself, never the driver's bookkeeping, and the driver never
// hands its own data (the I/O buffer, reports, other invocations) to a function it could have
// replaced. The host's entry points are globals, but each needs the secret token passed to
// `install`, so function code can call none of them.
(function (global, limits) {
  "use strict";
  const ObjectKeys = Object.keys;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectHasOwn = Object.hasOwn;
  const ObjectFreeze = Object.freeze;
  const ObjectIsPrototypeOf = Object.prototype.isPrototypeOf;
  const ArrayIsArray = Array.isArray;
  const JSONStringify = JSON.stringify;
  const JSONParse = JSON.parse;
  const StringCtor = String;
  const StringFromCharCode = String.fromCharCode;
  const StringPrototype = String.prototype;
  const StringCharCodeAt = StringPrototype.charCodeAt;
  const StringSlice = StringPrototype.slice;
  const MathMin = Math.min;
  const MathMax = Math.max;
  const DateCtor = Date;
  const DateNow = Date.now;
  const DateToISOString = Date.prototype.toISOString;
  const ErrorPrototype = Error.prototype;
  const TypeErrorCtor = TypeError;
  const RegExpExec = RegExp.prototype.exec;
  const Uint8ArrayCtor = Uint8Array;
  const TypedArrayFill = ObjectGetPrototypeOf(Uint8Array.prototype).fill;
  const ReflectApply = Reflect.apply;
  // Rest parameters build a plain array without the (overridable) iterator protocol.
  const call = (fn, self, ...args) => ReflectApply(fn, self, args);
  // charCodeAt as a plain function, for when String.prototype.charCodeAt has been replaced.
  const charCodeAt = ReflectApply(Function.prototype.bind, Function.prototype.call, [StringCharCodeAt]);
  const PromiseCtor = Promise;
  const PromiseResolve = Promise.resolve.bind(Promise);
  const PromiseThen = Promise.prototype.then;
  const SetCtor = Set;
  const MapCtor = Map;
  const AtomicsObject = Atomics;
  const AtomicsWaitAsync = Atomics.waitAsync;
  const AtomicsNotify = Atomics.notify;
  const Int32ArrayCtor = Int32Array;
  const SharedArrayBufferCtor = SharedArrayBuffer;
  const ErrorCtor = Error;
  const MapSet = Map.prototype.set, MapGet = Map.prototype.get, MapDelete = Map.prototype.delete;
  const SyntaxErrorCtor = SyntaxError;
  const PromiseReject = Promise.reject.bind(Promise);
  const ArrayBufferIsView = ArrayBuffer.isView;

  // The host timer, held here (mini-racer's `__timer_manager` is disabled below): a shared word
  // to wait on, woken early when the timer is cleared.
  function hostSetTimeout(fn, delay) {
    const word = new Int32ArrayCtor(new SharedArrayBufferCtor(4));
    call(PromiseThen, call(AtomicsWaitAsync, AtomicsObject, word, 0, 0, delay).value, fn);
    return word;
  }
  function hostClearTimeout(word) {
    call(AtomicsNotify, AtomicsObject, word, 0);
  }

  // Whether `s.charCodeAt(i)` still is the built-in, so the byte counters below may take the
  // fast path; the own-property checks keep a getter anywhere from deciding.
  function charCodeAtIntact() {
    const d = ObjectGetOwnPropertyDescriptor(StringPrototype, "charCodeAt");
    return d !== undefined && ObjectHasOwn(d, "value") && d.value === StringCharCodeAt;
  }

  // ---------------------------------------------------------------- sizes on the wire
  // Output, logs and errors are counted in the bytes they take on the wire: UTF-8, and inside a
  // JSON string, where a quote, a backslash or a control character costs its escape.
  const TRUNCATED = "... [truncated]";
  let clipBytes = 0; // the wire size of what clip() last returned

  function escapedBytes(c) {
    if (c < 0x20) return c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
    return c === 34 || c === 92 ? 2 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }

  // `s` cut to at most `budget` wire bytes, the marker included, with lone surrogates (which
  // UTF-8 cannot carry) replaced by U+FFFD; sets clipBytes. A cut never splits a pair.
  function clip(s, budget) {
    const fast = charCodeAtIntact();
    const n = s.length;
    const room = budget - TRUNCATED.length;
    let bytes = 0, cut = -1, cutBytes = 0, lone = false, truncated = false;
    for (let i = 0; i < n; i++) {
      const c = fast ? s.charCodeAt(i) : charCodeAt(s, i);
      let b, units = 1;
      if (c < 0xd800 || c > 0xdfff) b = escapedBytes(c);
      else {
        const d = i + 1 < n ? (fast ? s.charCodeAt(i + 1) : charCodeAt(s, i + 1)) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) { b = 4; units = 2; }
        else { b = 3; lone = true; } // as U+FFFD
      }
      if (cut < 0 && bytes + b > room) { cut = i; cutBytes = bytes; }
      bytes += b;
      if (bytes > budget) { truncated = true; break; }
      i += units - 1;
    }
    let out = truncated ? call(StringSlice, s, 0, cut) : s;
    if (lone) out = wellFormed(out, fast);
    if (truncated) { out += TRUNCATED; bytes = cutBytes + TRUNCATED.length; }
    clipBytes = bytes;
    return out;
  }

  function wellFormed(s, fast) {
    let out = "", from = 0;
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const c = fast ? s.charCodeAt(i) : charCodeAt(s, i);
      if (c < 0xd800 || c > 0xdfff) continue;
      const d = i + 1 < n ? (fast ? s.charCodeAt(i + 1) : charCodeAt(s, i + 1)) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) { i++; continue; }
      out += call(StringSlice, s, from, i) + "\ufffd";
      from = i + 1;
    }
    return from === 0 ? s : out + call(StringSlice, s, from);
  }

  // The wire size of JSON text (already escaped, and free of lone surrogates), or -1 when it
  // nests deeper than limits.maxResultDepth. Text too short to break either bound is not read,
  // and its length is returned as its size.
  function measureJSON(text) {
    const n = text.length;
    const maxDepth = limits.maxResultDepth;
    if (n <= 2 * maxDepth && 3 * n <= limits.maxOutputBytes) return n;
    const fast = charCodeAtIntact();
    let bytes = n, depth = 0, inString = false;
    for (let i = 0; i < n; i++) {
      const c = fast ? text.charCodeAt(i) : charCodeAt(text, i);
      if (c >= 0x80) bytes += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2; // a pair is 2 + 2
      else if (inString) { if (c === 92) i++; else if (c === 34) inString = false; }
      else if (c === 34) inString = true;
      else if (c === 91 || c === 123) { if (++depth > maxDepth) return -1; }
      else if (c === 93 || c === 125) depth--;
    }
    return bytes;
  }

  // ---------------------------------------------------------------- invocation state
  let current = null; // {id, logText, count, bytes, dropped, timers}

  function define(name, value) {
    try {
      ObjectDefineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
    } catch (e) {
      global[name] = value; // a non-configurable `var` binding, such as the host's setTimeout
    }
  }

  // ---------------------------------------------------------------- console
  function inspect(value, depth, seen) {
    const t = typeof value;
    if (t === "string") return depth === 0 ? value : JSONStringify(value);
    if (t === "number" || t === "boolean" || t === "undefined") return String(value);
    if (t === "bigint") return String(value) + "n";
    if (t === "symbol") return value.toString();
    if (t === "function") return "[Function: " + (value.name || "(anonymous)") + "]";
    if (value === null) return "null";
    if (seen.has(value)) return "[Circular]";
    if (value instanceof Error) return value.stack ? String(value.stack) : String(value);
    if (value instanceof DateCtor) return isNaN(value) ? "Invalid Date" : call(DateToISOString, value);
    if (value instanceof RegExp) return String(value);
    if (depth > 4) return ArrayIsArray(value) ? "[Array]" : "[Object]";
    seen.add(value);
    try {
      if (ArrayIsArray(value)) {
        const parts = [];
        const n = MathMin(value.length, 100);
        for (let i = 0; i < n; i++) parts.push(inspect(value[i], depth + 1, seen));
        if (value.length > n) parts.push("... " + (value.length - n) + " more items");
        return "[ " + parts.join(", ") + (parts.length ? " ]" : "]");
      }
      if (value instanceof MapCtor) {
        const parts = [];
        for (const [k, v] of value) parts.push(inspect(k, depth + 1, seen) + " => " + inspect(v, depth + 1, seen));
        return "Map(" + value.size + ") { " + parts.join(", ") + " }";
      }
      if (value instanceof SetCtor) {
        const parts = [];
        for (const v of value) parts.push(inspect(v, depth + 1, seen));
        return "Set(" + value.size + ") { " + parts.join(", ") + " }";
      }
      if (ArrayBuffer.isView(value)) {
        return value.constructor.name + "(" + value.length + ") [ " + Array.prototype.slice.call(value, 0, 50).join(", ") + " ]";
      }
      if (value instanceof PromiseCtor) return "Promise { <pending> }";
      const keys = ObjectKeys(value);
      const proto = ObjectGetPrototypeOf(value);
      const name = proto && proto.constructor && proto !== Object.prototype ? proto.constructor.name + " " : "";
      if (keys.length === 0) return name + "{}";
      const parts = [];
      for (const k of keys.slice(0, 100)) {
        const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSONStringify(k);
        parts.push(key + ": " + inspect(value[k], depth + 1, seen));
      }
      if (keys.length > 100) parts.push("... " + (keys.length - 100) + " more keys");
      return name + "{ " + parts.join(", ") + " }";
    } catch (e) {
      return "[Uninspectable]";
    } finally {
      seen.delete(value);
    }
  }

  function format(args) {
    let out = "";
    for (let i = 0; i < args.length; i++) out += (i ? " " : "") + inspect(args[i], 0, new SetCtor());
    return out;
  }

  // Each entry goes straight into the report's JSON text, so neither the entries nor the text
  // pass through an array or object a function could have hooked.
  function record(level, args) {
    const inv = current;
    if (inv === null) return; // after the invocation ended: nobody is listening any more
    if (inv.count >= limits.maxLogEntries || inv.bytes >= limits.maxLogBytes) {
      inv.dropped++;
      return;
    }
    let message;
    try {
      message = format(args);
    } catch (e) {
      message = "[Unformattable log message]";
    }
    const room = limits.maxLogBytes - inv.bytes;
    message = clip(message, room);
    if (clipBytes > room) { // not even the marker fits
      inv.dropped++;
      return;
    }
    inv.bytes += clipBytes;
    inv.logText += (inv.count++ > 0 ? "," : "") + logEntry(level, message);
  }

  function logEntry(level, message) {
    return '{"timestamp":"' + call(DateToISOString, new DateCtor()) + '","level":"' + level +
      '","message":' + JSONStringify(message) + "}";
  }

  const consoleObject = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    consoleObject[level] = function (...args) { record(level, args); };
  }
  consoleObject.trace = function (...args) { record("debug", args); };
  define("console", consoleObject);

  // ---------------------------------------------------------------- timers
  let nextTimerId = 1;
  const timers = new MapCtor(); // id -> {handle, invocation}

  function reportAsyncError(e) {
    record("error", ["Uncaught", e]);
  }

  function schedule(fn, delay, args, repeat) {
    if (typeof fn !== "function") throw new TypeError("The callback must be a function");
    const inv = current;
    if (inv === null) return 0; // a stray timer after the invocation ended never runs
    if (inv.timers.size >= limits.maxTimers) {
      throw new RangeError("Too many pending timers (limit " + limits.maxTimers + ")");
    }
    const id = nextTimerId++;
    delay = Number(delay);
    if (!(delay >= 0)) delay = 0;
    if (delay < 1) delay = 1; // the host timer (Atomics.waitAsync) resolves 0 synchronously
    const arm = () => {
      const handle = call(hostSetTimeout, global, () => {
        if (!timers.has(id) || current !== inv) return;
        if (repeat) arm(); else { timers.delete(id); inv.timers.delete(id); }
        try { fn(...args); } catch (e) { reportAsyncError(e); }
      }, delay);
      timers.set(id, handle);
    };
    inv.timers.add(id);
    arm();
    return id;
  }

  function clear(id) {
    const handle = timers.get(id);
    if (handle === undefined) return;
    timers.delete(id);
    if (current !== null) current.timers.delete(id);
    call(hostClearTimeout, global, handle);
  }

  define("setTimeout", function setTimeout(fn, delay, ...args) { return schedule(fn, delay, args, false); });
  define("setInterval", function setInterval(fn, delay, ...args) { return schedule(fn, delay, args, true); });
  define("clearTimeout", function clearTimeout(id) { clear(id); });
  define("clearInterval", function clearInterval(id) { clear(id); });
  define("queueMicrotask", function queueMicrotask(fn) {
    if (typeof fn !== "function") throw new TypeError("The callback must be a function");
    call(PromiseThen, PromiseResolve(), () => { try { fn(); } catch (e) { reportAsyncError(e); } });
  });

  // ---------------------------------------------------------------- text encoding, base64
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") {
      const s = String(input);
      const out = new Uint8Array(s.length * 3);
      let n = 0;
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
          else c = 0xfffd;
        } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        if (c < 0x80) out[n++] = c;
        else if (c < 0x800) { out[n++] = 0xc0 | (c >> 6); out[n++] = 0x80 | (c & 63); }
        else if (c < 0x10000) { out[n++] = 0xe0 | (c >> 12); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63); }
        else { out[n++] = 0xf0 | (c >> 18); out[n++] = 0x80 | ((c >> 12) & 63); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63); }
      }
      return out.slice(0, n);
    }
  }

  class TextDecoder {
    constructor(label = "utf-8", options = {}) {
      const l = String(label).toLowerCase();
      if (l !== "utf-8" && l !== "utf8") throw new RangeError("Only utf-8 is supported, not " + label);
      this.fatal = !!options.fatal;
    }
    get encoding() { return "utf-8"; }
    decode(input) {
      if (input === undefined) return "";
      const b = input instanceof ArrayBuffer ? new Uint8Array(input)
        : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      let out = "";
      const bad = () => { if (this.fatal) throw new TypeError("The encoded data was not valid utf-8"); return 0xfffd; };
      for (let i = 0; i < b.length;) {
        const c = b[i];
        let cp, need;
        if (c < 0x80) { cp = c; need = 0; }
        else if (c >= 0xc2 && c < 0xe0) { cp = c & 31; need = 1; }
        else if (c >= 0xe0 && c < 0xf0) { cp = c & 15; need = 2; }
        else if (c >= 0xf0 && c < 0xf5) { cp = c & 7; need = 3; }
        else { out += StringFromCharCode(bad()); i++; continue; }
        let j = 1;
        for (; j <= need; j++) {
          const d = b[i + j];
          if (d === undefined || (d & 0xc0) !== 0x80) break;
          cp = (cp << 6) | (d & 63);
        }
        if (j <= need || (need === 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need === 3 && (cp < 0x10000 || cp > 0x10ffff))) {
          out += StringFromCharCode(bad()); i += MathMax(j, 1); continue;
        }
        i += need + 1;
        if (cp >= 0x10000) { cp -= 0x10000; out += StringFromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023)); }
        else out += StringFromCharCode(cp);
      }
      if (out.charCodeAt(0) === 0xfeff) out = out.slice(1);
      return out;
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  define("btoa", function btoa(data) {
    const s = String(data);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) throw new DOMException("Invalid character", "InvalidCharacterError");
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < s.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < s.length ? B64[n & 63] : "=");
    }
    return out;
  });
  define("atob", function atob(data) {
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) throw new DOMException("Invalid character", "InvalidCharacterError");
    let out = "", bits = 0, acc = 0;
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i]);
      bits += 6;
      if (bits >= 8) { bits -= 8; out += StringFromCharCode((acc >> bits) & 255); }
    }
    return out;
  });

  class DOMException extends Error {
    constructor(message = "", name = "Error") { super(message); this.name = name; }
  }
  define("DOMException", DOMException);

  // ---------------------------------------------------------------- structuredClone
  function cloneValue(v, memo) {
    if (v === null || (typeof v !== "object" && typeof v !== "function" && typeof v !== "symbol")) return v;
    if (typeof v === "function" || typeof v === "symbol") throw new DOMException(String(typeof v) + " could not be cloned", "DataCloneError");
    if (memo.has(v)) return memo.get(v);
    let out;
    if (v instanceof DateCtor) out = new DateCtor(v.getTime());
    else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
    else if (v instanceof ArrayBuffer) out = v.slice(0);
    else if (ArrayBuffer.isView(v)) {
      const buf = cloneValue(v.buffer, memo);
      out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength)
        : new v.constructor(buf, v.byteOffset, v.length);
    } else if (v instanceof MapCtor) { out = new MapCtor(); memo.set(v, out); for (const [k, x] of v) out.set(cloneValue(k, memo), cloneValue(x, memo)); return out; }
    else if (v instanceof SetCtor) { out = new SetCtor(); memo.set(v, out); for (const x of v) out.add(cloneValue(x, memo)); return out; }
    else if (v instanceof Error) { out = new (v.constructor === Error || !v.constructor ? Error : v.constructor)(v.message); out.stack = v.stack; }
    else if (v instanceof PromiseCtor || v instanceof WeakMap || v instanceof WeakSet) throw new DOMException("object could not be cloned", "DataCloneError");
    else if (ArrayIsArray(v)) { out = new Array(v.length); memo.set(v, out); for (let i = 0; i < v.length; i++) out[i] = cloneValue(v[i], memo); return out; }
    else { out = {}; memo.set(v, out); for (const k of ObjectKeys(v)) out[k] = cloneValue(v[k], memo); return out; }
    memo.set(v, out);
    return out;
  }
  define("structuredClone", function structuredClone(value) {
    if (arguments.length === 0) throw new TypeError("structuredClone requires a value");
    return cloneValue(value, new MapCtor());
  });

  // ---------------------------------------------------------------- crypto (ChaCha20 CSPRNG)
  // Keyed with fresh host entropy at the start of every invocation (see run()).
  const rngKey = new Uint32Array(8);
  const rngState = new Uint32Array(16);
  const rngBlock = new Uint8Array(64);
  let rngCounter = 0, rngUsed = 64;
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  function quarter(s, a, b, c, d) {
    s[a] = (s[a] + s[b]) | 0; s[d] = rotl(s[d] ^ s[a], 16);
    s[c] = (s[c] + s[d]) | 0; s[b] = rotl(s[b] ^ s[c], 12);
    s[a] = (s[a] + s[b]) | 0; s[d] = rotl(s[d] ^ s[a], 8);
    s[c] = (s[c] + s[d]) | 0; s[b] = rotl(s[b] ^ s[c], 7);
  }
  function refill() {
    const init = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, ...rngKey, rngCounter++, 0, 0, 0];
    for (let i = 0; i < 16; i++) rngState[i] = init[i];
    for (let r = 0; r < 10; r++) {
      quarter(rngState, 0, 4, 8, 12); quarter(rngState, 1, 5, 9, 13); quarter(rngState, 2, 6, 10, 14); quarter(rngState, 3, 7, 11, 15);
      quarter(rngState, 0, 5, 10, 15); quarter(rngState, 1, 6, 11, 12); quarter(rngState, 2, 7, 8, 13); quarter(rngState, 3, 4, 9, 14);
    }
    for (let i = 0; i < 16; i++) {
      const w = (rngState[i] + init[i]) >>> 0;
      rngBlock[i * 4] = w & 255; rngBlock[i * 4 + 1] = (w >>> 8) & 255; rngBlock[i * 4 + 2] = (w >>> 16) & 255; rngBlock[i * 4 + 3] = w >>> 24;
    }
    rngUsed = 0;
  }
  function reseed(hex) {
    for (let i = 0; i < 8; i++) {
      let word = 0;
      for (let j = i * 8; j < i * 8 + 8; j++) {
        const c = charCodeAt(hex, j);
        word = word * 16 + (c <= 57 ? c - 48 : (c | 32) - 87);
      }
      rngKey[i] = word >>> 0;
    }
    rngCounter = 0; rngUsed = 64;
  }
  function randomBytes(view) {
    for (let i = 0; i < view.length; i++) {
      if (rngUsed >= 64) refill();
      view[i] = rngBlock[rngUsed++];
    }
  }
  const cryptoObject = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof DataView || array instanceof Float32Array || array instanceof Float64Array) {
        throw new TypeError("getRandomValues needs an integer typed array");
      }
      if (array.byteLength > 65536) throw new DOMException("The requested length exceeds 65,536 bytes", "QuotaExceededError");
      randomBytes(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
    randomUUID() {
      const b = new Uint8Array(16);
      randomBytes(b);
      b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
      const h = Array.prototype.map.call(b, (x) => (x + 256).toString(16).slice(1)).join("");
      return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
    },
  };
  define("crypto", cryptoObject);

  // ---------------------------------------------------------------- after the invocation
  // Nothing of an invocation runs once it has finished. Its timers are cleared (above). V8's
  // other ways of running code later, from a task of its own, are gated here: the promises
  // they settle settle only within the invocation that asked for them (for the module's top
  // level: until the end of the first invocation), and never afterwards, so nothing chained
  // on them runs. The host's own timer (mini-racer's `__timer_manager`) is replaced by one
  // held here. The host also probes idle isolates, and recycles one found busy.
  let epoch = 0; // counts finished invocations (the first one ends the module's top level)
  const WeakSetCtor = WeakSet;
  const WeakSetHas = WeakSet.prototype.has;
  const WeakSetAdd = WeakSet.prototype.add;
  const FinalizationRegistryCtor = FinalizationRegistry;
  const FinalizationRegister = FinalizationRegistry.prototype.register;
  const FinalizationUnregister = FinalizationRegistry.prototype.unregister;

  // Who asked: the running invocation, the module's top level (until the first invocation
  // ends), or nobody (code running after its invocation ended: what it asks for never comes).
  const TOP_LEVEL = {};
  function owner() {
    return current !== null ? current : epoch === 0 ? TOP_LEVEL : null;
  }
  function alive(o) {
    return o === TOP_LEVEL ? epoch === 0 : o !== null && current === o;
  }

  function gate(promise) {
    const o = owner();
    return new PromiseCtor((resolve, reject) => {
      call(PromiseThen, promise, (v) => { if (alive(o)) resolve(v); }, (x) => { if (alive(o)) reject(x); });
    });
  }

  for (const name of ["__timer_manager", "__TimerManager"]) {
    try { global[name] = undefined; } catch (_) { /* not there */ }
  }
  try { __TimerManager = undefined; } catch (_) { /* a script-scope class binding, if any */ } // eslint-disable-line no-global-assign

  ObjectDefineProperty(AtomicsObject, "waitAsync", {
    value: function waitAsync(typedArray, index, value, timeout) {
      const r = call(AtomicsWaitAsync, AtomicsObject, typedArray, index, value, timeout);
      return r.async ? { async: true, value: gate(r.value) } : r;
    },
    writable: true, configurable: true, enumerable: false,
  });

  // Cleanup callbacks may run later or never (the language says so): here, only within the
  // invocation that registered the object.
  class FinalizationRegistryGated {
    #registry;
    constructor(cleanup) {
      if (typeof cleanup !== "function") throw new TypeErrorCtor("The cleanup callback must be a function");
      this.#registry = new FinalizationRegistryCtor((held) => {
        if (alive(held.owner)) { try { cleanup(held.value); } catch (e) { reportAsyncError(e); } }
      });
    }
    register(target, held, unregisterToken) {
      call(FinalizationRegister, this.#registry, target, { value: held, owner: owner() }, unregisterToken);
    }
    unregister(unregisterToken) { return call(FinalizationUnregister, this.#registry, unregisterToken); }
  }
  ObjectDefineProperty(FinalizationRegistryGated, "name", { value: "FinalizationRegistry" });
  define("FinalizationRegistry", FinalizationRegistryGated);

  // ---------------------------------------------------------------- memory outside the heap
  // The heap limit the host sets does not see ArrayBuffers, typed arrays or WebAssembly memory,
  // whose bytes live outside V8's heap. Every way a function has to allocate them goes through
  // a wrapper here, which charges the bytes against the function's memory limit before they
  // are allocated: heap and outside memory together stay within it. The running count is
  // corrected from V8's own figures (and a collection, which credits what was freed) whenever
  // a charge could reach the limit, and at least every sixteenth of the limit (MEASURE_EVERY
  // bytes at the least: each measurement walks the whole heap, in V8's statistics). A function that
  // would go over gets a RangeError, and its invocation ends as MemoryLimitExceeded even if it
  // catches that. A WebAssembly memory (made by the JS API, or a module's own) is charged its
  // initial size, and its maximum is cut to what is left of the limit when it is made; growth
  // from inside WebAssembly shows in V8's figures, which are read again at the end of every
  // invocation of an isolate that has a WebAssembly memory.
  const gcNow = typeof global.gc === "function" ? global.gc : null;
  const v8Statistics = typeof global.getV8Statistics === "function" ? global.getV8Statistics : null;
  for (const name of ["gc", "getV8Statistics"]) {
    try { delete global[name]; } catch (_) { /* not configurable (V8's extensions): */ global[name] = undefined; }
  }
  const RangeErrorCtor = RangeError;
  const MathTrunc = Math.trunc;
  const NumberCtor = Number;
  const ReflectConstruct = Reflect.construct;
  const ProxyCtor = Proxy;
  const WASM_PAGE = 65536;
  const MEASURE_EVERY = 1024 * 1024;
  const MEASURE_AFTER_MS = 10;
  let memoryLimit = limits.memoryBytes; // set again by install()
  let measureEvery = MathMax(MEASURE_EVERY, memoryLimit / 16); // with it
  let outside = 0; // bytes outside the heap at the last measurement, plus charges since
  let heapLive = 0; // heap bytes committed at the last measurement
  let sinceMeasure = 0;
  let hasWasmMemory = false; // it may grow from inside WebAssembly, unseen by the wrappers

  function measure(collect) {
    if (v8Statistics === null) return;
    if (collect && gcNow !== null) gcNow();
    const s = v8Statistics();
    outside = s.amount_of_external_allocated_memory;
    // The heap V8 has committed (its per-space live counts miss large objects until a collection).
    heapLive = s.total_committed_bytes;
    sinceMeasure = 0;
  }

  function overLimit(what) {
    if (current !== null) current.memory = true;
    return new RangeErrorCtor(what + " would take the function past its memory limit of " + limits.memoryMb + " MB");
  }

  function charge(bytes) {
    if (!(bytes > 0) || v8Statistics === null) return;
    if (sinceMeasure + bytes >= measureEvery || outside + heapLive + bytes > memoryLimit) {
      measure(false);
      if (outside + heapLive + bytes > memoryLimit) measure(true);
      if (outside + heapLive + bytes > memoryLimit) throw overLimit("Allocating " + bytes + " bytes");
    }
    outside += bytes;
    sinceMeasure += bytes;
  }

  function room() {
    measure(true);
    return MathMax(0, memoryLimit - outside - heapLive);
  }

  // ToIndex, done once here, so that a valueOf cannot answer one size to the charge and another
  // to the allocation.
  function toIndex(v) {
    const n = v === undefined ? 0 : MathTrunc(NumberCtor(v)) || 0;
    if (n < 0 || n > 9007199254740991) throw new RangeErrorCtor("Invalid length " + stringOf(v, "?"));
    return n;
  }

  const ArrayBufferCtor = ArrayBuffer;
  const ArrayBufferByteLength = ObjectGetOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get;
  const SharedByteLength = ObjectGetOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength").get;
  const TypedArrayPrototype = ObjectGetPrototypeOf(Uint8Array.prototype);
  const TypedArrayBuffer = ObjectGetOwnPropertyDescriptor(TypedArrayPrototype, "buffer").get;
  const TypedArrayByteLength = ObjectGetOwnPropertyDescriptor(TypedArrayPrototype, "byteLength").get;
  const TypedArraySet = TypedArrayPrototype.set;
  const TypedArraySubarray = TypedArrayPrototype.subarray;
  // V8 keeps typed arrays up to this size inside the heap, where the heap limit counts them.
  const IN_HEAP_BYTES = 64;
  const charged = new WeakSetCtor(); // buffers whose bytes are counted

  function isBuffer(v) {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return false;
    try { call(ArrayBufferByteLength, v); return true; } catch (_) { /* not an ArrayBuffer */ }
    try { call(SharedByteLength, v); return true; } catch (_) { return false; }
  }

  function chargedResult(view) { // a typed array some built-in allocated: charge it unless counted
    if (call(TypedArrayByteLength, view) <= IN_HEAP_BYTES) return view;
    const buffer = call(TypedArrayBuffer, view);
    if (!call(WeakSetHas, charged, buffer)) {
      charge(call(TypedArrayByteLength, view));
      call(WeakSetAdd, charged, buffer);
    }
    return view;
  }

  function wrapConstructor(name, construct) {
    const target = global[name];
    if (typeof target !== "function") return;
    const wrapped = new ProxyCtor(target, { construct });
    ObjectDefineProperty(target.prototype, "constructor", { value: wrapped, writable: true, configurable: true, enumerable: false });
    define(name, wrapped);
  }

  function bufferOptions(options) {
    if (options === undefined || options === null || typeof options !== "object") return undefined;
    const max = options.maxByteLength;
    return max === undefined ? undefined : { maxByteLength: toIndex(max) };
  }
  for (const name of ["ArrayBuffer", "SharedArrayBuffer"]) {
    wrapConstructor(name, (target, args, newTarget) => {
      const length = toIndex(args[0]);
      const options = bufferOptions(args[1]);
      charge(options === undefined ? length : MathMax(length, options.maxByteLength));
      const buffer = ReflectConstruct(target, options === undefined ? [length] : [length, options], newTarget);
      call(WeakSetAdd, charged, buffer);
      return buffer;
    });
  }
  function relativeIndex(v, length, otherwise) {
    if (v === undefined) return otherwise;
    const n = MathTrunc(NumberCtor(v)) || 0;
    return n < 0 ? MathMax(length + n, 0) : MathMin(n, length);
  }
  for (const [proto, byteLength] of [[ArrayBufferCtor.prototype, ArrayBufferByteLength], [SharedArrayBufferCtor.prototype, SharedByteLength]]) {
    const slice = proto.slice;
    ObjectDefineProperty(proto, "slice", {
      value: function slice_(start, end) {
        const length = call(byteLength, this);
        const from = relativeIndex(start, length, 0);
        const to = relativeIndex(end, length, length);
        charge(to - from);
        const out = call(slice, this, from, to);
        if (isBuffer(out)) call(WeakSetAdd, charged, out);
        return out;
      },
      writable: true, configurable: true, enumerable: false,
    });
    ObjectDefineProperty(proto.slice, "name", { value: "slice" });
  }
  for (const method of ["transfer", "transferToFixedLength"]) {
    const transfer = ArrayBufferCtor.prototype[method];
    if (typeof transfer !== "function") continue;
    const fn = function (newLength) {
      const length = call(ArrayBufferByteLength, this);
      const n = newLength === undefined ? length : toIndex(newLength);
      charge(n - length);
      const out = newLength === undefined ? call(transfer, this) : call(transfer, this, n);
      call(WeakSetAdd, charged, out);
      return out;
    };
    ObjectDefineProperty(fn, "name", { value: method });
    ObjectDefineProperty(ArrayBufferCtor.prototype, method, { value: fn, writable: true, configurable: true, enumerable: false });
  }

  const typedArrayNames = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"];
  for (const name of typedArrayNames) {
    const target = global[name];
    if (typeof target !== "function") continue;
    const bytesPer = target.BYTES_PER_ELEMENT;
    wrapConstructor(name, (t, args, newTarget) => {
      const source = args[0];
      if (source !== null && (typeof source === "object" || typeof source === "function")) {
        // a view of a buffer allocates nothing; a copy of an array or iterable is charged once made
        if (isBuffer(source)) return ReflectConstruct(t, args, newTarget);
        return chargedResult(ReflectConstruct(t, args, newTarget));
      }
      const length = toIndex(source);
      if (length * bytesPer <= IN_HEAP_BYTES) return ReflectConstruct(t, [length], newTarget);
      charge(length * bytesPer);
      const view = ReflectConstruct(t, [length], newTarget);
      call(WeakSetAdd, charged, call(TypedArrayBuffer, view));
      return view;
    });
  }
  // Built-ins that make a typed array of the same kind without calling its constructor.
  for (const method of ["slice", "map", "filter", "toReversed", "toSorted", "with"]) {
    const original = TypedArrayPrototype[method];
    if (typeof original !== "function") continue;
    const fn = function (...args) { return chargedResult(ReflectApply(original, this, args)); };
    ObjectDefineProperty(fn, "name", { value: method });
    ObjectDefineProperty(fn, "length", { value: original.length });
    ObjectDefineProperty(TypedArrayPrototype, method, { value: fn, writable: true, configurable: true, enumerable: false });
  }

  // WebAssembly memory: the JS API's, and a module's own (read from its memory section).
  const Wasm = global.WebAssembly;
  if (Wasm !== undefined) {
    const pagesLeft = () => MathTrunc(room() / WASM_PAGE);
    wrapWasm("Memory", (target, args, newTarget) => {
      const d = args[0];
      if (d === null || typeof d !== "object") return ReflectConstruct(target, args, newTarget);
      const initial = toIndex(d.initial);
      const declared = d.maximum === undefined ? 65536 : toIndex(d.maximum);
      const shared = !!d.shared;
      charge(initial * WASM_PAGE);
      hasWasmMemory = true;
      const maximum = MathMin(declared, MathMax(initial, pagesLeft()));
      return ReflectConstruct(target, [{ initial, maximum, shared }], newTarget);
    });
    const MemoryGrow = Wasm.Memory.prototype.grow;
    ObjectDefineProperty(Wasm.Memory.prototype, "grow", {
      value: function grow(delta) {
        const pages = toIndex(delta);
        charge(pages * WASM_PAGE);
        return call(MemoryGrow, this, pages);
      },
      writable: true, configurable: true, enumerable: false,
    });
    const ModuleCtor = Wasm.Module;
    const InstanceCtor = Wasm.Instance;
    const moduleMemory = new WeakMap(); // module -> its own memory's maximum, in pages
    const WeakMapSet = WeakMap.prototype.set, WeakMapGet = WeakMap.prototype.get;
    const newModule = (bytes) => {
      const fixed = withMemoryMaximum(bytes, pagesLeft);
      const module = ReflectConstruct(ModuleCtor, [fixed.bytes]);
      if (fixed.pages > 0) call(WeakMapSet, moduleMemory, module, fixed.pages);
      return module;
    };
    const newInstance = (module, imports) => {
      const pages = call(WeakMapGet, moduleMemory, module);
      if (pages !== undefined) { charge(pages * WASM_PAGE); hasWasmMemory = true; }
      return ReflectConstruct(InstanceCtor, [module, imports]);
    };
    wrapWasm("Module", (target, args) => newModule(args[0]));
    wrapWasm("Instance", (target, args) => newInstance(args[0], args[1]));
    // Compiled here, on this thread and within this invocation, so no later task settles them.
    const later = (f) => new PromiseCtor((resolve) => resolve(f()));
    ObjectDefineProperty(Wasm, "compile", { value: function compile(bytes) { return later(() => newModule(bytes)); }, writable: true, configurable: true });
    ObjectDefineProperty(Wasm, "instantiate", {
      value: function instantiate(source, imports) {
        return later(() => {
          if (source instanceof ModuleCtor) return newInstance(source, imports);
          const module = newModule(source);
          return { module, instance: newInstance(module, imports) };
        });
      },
      writable: true, configurable: true,
    });
    for (const name of ["compileStreaming", "instantiateStreaming"]) {
      if (typeof Wasm[name] === "function") {
        const original = Wasm[name];
        ObjectDefineProperty(Wasm, name, { value: function (...args) { return gate(ReflectApply(original, Wasm, args)); }, writable: true, configurable: true });
      }
    }
    function wrapWasm(name, construct) {
      const target = Wasm[name];
      const wrapped = new ProxyCtor(target, { construct });
      ObjectDefineProperty(target.prototype, "constructor", { value: wrapped, writable: true, configurable: true, enumerable: false });
      ObjectDefineProperty(Wasm, name, { value: wrapped, writable: true, configurable: true, enumerable: false });
    }
  }

  // The module's bytes with its own memories' maximum cut to what is left of the limit (when
  // it has none, or a larger one), and their initial size in pages (0: it defines none).
  function withMemoryMaximum(source, pagesLeft) {
    let bytes;
    if (isBuffer(source)) bytes = new Uint8ArrayCtor(call(ArrayBufferCtor.prototype.slice, source, 0));
    else if (ArrayBufferCtor.isView(source)) {
      const view = new Uint8ArrayCtor(source.buffer, source.byteOffset, source.byteLength);
      bytes = new Uint8ArrayCtor(view.length);
      call(TypedArraySet, bytes, view);
    } else throw new TypeErrorCtor("WebAssembly.Module(): Argument 0 must be a buffer source");
    const n = bytes.length;
    let p = 8;
    const leb = () => { let v = 0, shift = 0, b; do { if (p >= n) throw new RangeErrorCtor("Truncated WebAssembly module"); b = bytes[p++]; v += (b & 127) * 2 ** shift; shift += 7; } while (b & 128); return v; };
    while (p < n) {
      const at = p;
      const id = bytes[p++];
      const size = leb();
      const start = p;
      if (id !== 5) { p = start + size; continue; }
      const count = leb();
      let pages = 0;
      const parts = [];
      let changed = false;
      for (let i = 0; i < count; i++) {
        const flags = bytes[p++];
        const initial = leb();
        const declared = flags & 1 ? leb() : 65536;
        const maximum = MathMin(declared, MathMax(initial, pagesLeft()));
        if (maximum !== declared || !(flags & 1)) changed = true;
        pages += initial;
        parts.push([flags | 1, initial, maximum]);
      }
      if (!changed) return { bytes, pages };
      const body = [...encodeLeb(count)];
      for (const [flags, initial, maximum] of parts) body.push(flags, ...encodeLeb(initial), ...encodeLeb(maximum));
      const head = [5, ...encodeLeb(body.length)];
      const rest = start + size;
      const out = new Uint8ArrayCtor(at + head.length + body.length + (n - rest));
      call(TypedArraySet, out, call(TypedArraySubarray, bytes, 0, at));
      let q = at;
      for (const b of head) out[q++] = b;
      for (const b of body) out[q++] = b;
      call(TypedArraySet, out, call(TypedArraySubarray, bytes, rest), q);
      return { bytes: out, pages };
    }
    return { bytes, pages: 0 };
  }
  function encodeLeb(v) { const out = []; do { let b = v % 128; v = MathTrunc(v / 128); if (v > 0) b |= 128; out.push(b); } while (v > 0); return out; }

  // ---------------------------------------------------------------- the invocation driver
  let handler = null;
  let notify = null;
  let token = null; // the host's secret, set by install()
  // The finished invocation's report waits here until the host takes it. The host asks right
  // after starting an invocation (most finish within that first turn of the event loop) and
  // is notified only when it had to wait.
  let ready = null;
  let hostWaiting = false;

  // Compared in constant time, so that timing the refusals reveals nothing of the token (its
  // length is no secret).
  function fromHost(t) {
    if (token === null || typeof t !== "string" || t.length !== token.length) refuse();
    let diff = 0;
    for (let i = 0; i < token.length; i++) diff |= charCodeAt(t, i) ^ charCodeAt(token, i);
    if (diff !== 0) refuse();
  }

  function refuse() {
    throw new TypeErrorCtor("This is the runtime's own hook");
  }

  function report(text) {
    ready = text;
    if (hostWaiting) {
      hostWaiting = false;
      notify();
    }
  }

  function take(t) {
    fromHost(t);
    const text = ready;
    if (text === null) {
      if (outbox !== "") { // host calls first: "\u0001" and a JSON array of [id, op, args]
        const calls = "\u0001[" + outbox + "]";
        outbox = "";
        return calls;
      }
      hostWaiting = true;
      return null;
    }
    ready = null;
    return text;
  }

  // ---------------------------------------------------------------- host calls (context.kv, fetch)
  // A call is queued here and the host told (as a finished report would tell it); the host
  // takes the queue with take(), does the work on its own event loop, and answers with
  // reply(). Calls belong to their invocation: an answer that comes after it ended is dropped,
  // so nothing of an invocation runs after it (or in the next one).
  const MAX_HOST_CALLS = 1000;
  let outbox = ""; // the queued calls, comma-separated JSON arrays
  let pending = new MapCtor(); // id -> [resolve, reject] of the current invocation's calls
  let nextCall = 0;

  function hostCall(inv, op, args) {
    if (inv === null || current !== inv) return PromiseReject(new ErrorCtor(inv === null ? "KV and fetch work only while an invocation runs" : "The invocation that made this call has ended"));
    if (inv.calls >= MAX_HOST_CALLS) return PromiseReject(new RangeErrorCtor("More than " + MAX_HOST_CALLS + " KV and fetch calls in one invocation"));
    inv.calls++;
    const id = ++nextCall;
    return new PromiseCtor((resolve, reject) => {
      call(MapSet, pending, id, [resolve, reject]);
      outbox += (outbox === "" ? "" : ",") + "[" + id + "," + JSONStringify(op) + "," + args + "]";
      if (hostWaiting) {
        hostWaiting = false;
        notify();
      }
    });
  }

  function reply(t, id, ok, kind, text) {
    fromHost(t);
    const settle = call(MapGet, pending, id);
    if (settle === undefined) return 0; // its invocation is over
    call(MapDelete, pending, id);
    if (!ok) {
      const Ctor = kind === "TypeError" ? TypeErrorCtor : kind === "RangeError" ? RangeErrorCtor : ErrorCtor;
      settle[1](new Ctor(text));
      return 0;
    }
    let value;
    try {
      if (kind === "null") value = null;
      else if (kind === "bytes") value = bytesOf(text);
      else if (kind === "json") value = JSONParse(text);
      else value = text;
    } catch (e) {
      settle[1](e);
      return 0;
    }
    settle[0](value);
    return 0;
  }

  // A string of byte values (0-255) and back: how bytes cross to the host and back.
  function bytesOf(text) {
    const n = text.length;
    if (n > IN_HEAP_BYTES) charge(n); // counted against the memory limit, as every buffer is
    const out = new Uint8ArrayCtor(n);
    for (let i = 0; i < n; i++) out[i] = charCodeAt(text, i);
    const buffer = call(TypedArrayBuffer, out);
    call(WeakSetAdd, charged, buffer);
    return buffer;
  }
  function binaryText(value) {
    const bytes = ArrayBufferIsView(value)
      ? new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength)
      : new Uint8ArrayCtor(value);
    let out = "";
    for (let i = 0; i < bytes.length; i += 8192) {
      out += ReflectApply(StringFromCharCode, null, call(TypedArraySubarray, bytes, i, MathMin(i + 8192, bytes.length)));
    }
    return out;
  }

  function kvKey(key) {
    if (typeof key !== "string" || key === "") throw new TypeErrorCtor("A KV key must be a non-empty string");
    return JSONStringify(key);
  }

  // context.kv of one invocation: Workers KV's shape, with ttlSeconds for expiry.
  function makeKV(inv) {
    const kv = {
      get(key, options) {
        let type = "text";
        try {
          type = typeof options === "string" ? options : (options && options.type) || "text";
          if (type !== "text" && type !== "json" && type !== "arrayBuffer") throw new TypeErrorCtor('The KV get type must be "text", "json" or "arrayBuffer"');
          const answer = hostCall(inv, "get", '{"key":' + kvKey(key) + ',"type":"' + type + '"}');
          if (type !== "json") return answer;
          return call(PromiseThen, answer, (text) => {
            if (text === null) return null;
            try { return JSONParse(text); } catch (e) { throw new SyntaxErrorCtor("The KV value of " + JSONStringify(key) + " is not JSON: " + e.message); }
          });
        } catch (e) {
          return PromiseReject(e);
        }
      },
      put(key, value, options) {
        try {
          let text, binary = false;
          if (typeof value === "string") text = value;
          else if (value instanceof ArrayBufferCtor || ArrayBufferIsView(value)) { text = binaryText(value); binary = true; }
          else if (value === undefined) throw new TypeErrorCtor("A KV value must be given");
          else {
            text = JSONStringify(value);
            if (text === undefined) throw new TypeErrorCtor("A KV value must be a string, an ArrayBuffer or JSON-serialisable");
          }
          if (text.length > 1048576 * (binary ? 1 : 3)) throw new RangeErrorCtor("The KV value is over the limit of 1048576 bytes");
          const ttl = options ? options.ttlSeconds : undefined;
          if (ttl !== undefined && typeof ttl !== "number") throw new TypeErrorCtor("ttlSeconds must be a number");
          return call(PromiseThen, hostCall(inv, "put", '{"key":' + kvKey(key) + ',"value":' + JSONStringify(text) +
            ',"binary":' + binary + (ttl !== undefined ? ',"ttlSeconds":' + JSONStringify(ttl) : "") + "}"), () => undefined);
        } catch (e) {
          return PromiseReject(e);
        }
      },
      delete(key) {
        try {
          return call(PromiseThen, hostCall(inv, "delete", '{"key":' + kvKey(key) + "}"), () => undefined);
        } catch (e) {
          return PromiseReject(e);
        }
      },
      list(options) {
        try {
          const o = options || {};
          const prefix = o.prefix === undefined ? "" : o.prefix;
          if (typeof prefix !== "string") throw new TypeErrorCtor("The KV list prefix must be a string");
          const limit = o.limit === undefined ? 1000 : o.limit;
          if (typeof limit !== "number") throw new TypeErrorCtor("The KV list limit must be a number");
          const cursor = o.cursor === undefined || o.cursor === null ? "" : StringCtor(o.cursor);
          return hostCall(inv, "list", '{"prefix":' + JSONStringify(prefix) + ',"limit":' + JSONStringify(limit) + ',"cursor":' + JSONStringify(cursor) + "}");
        } catch (e) {
          return PromiseReject(e);
        }
      },
    };
    return ObjectFreeze(kv);
  }

  // ---------------------------------------------------------------- fetch
  // Headers, Request, Response, AbortController and fetch, the Fetch standard's shapes. A
  // request is a host call (fetch.py): the host checks it against the function's egress rules,
  // performs it on its event loop, and answers with the whole response; its body arrives as
  // bytes. Like every host call, fetch belongs to the running invocation.
  let URLCtor = null; // url.js's URL, taken at first use (it is evaluated after this file)
  function absoluteURL(input) {
    if (URLCtor === null) URLCtor = global.URL;
    let url;
    try { url = new URLCtor(StringCtor(input)); } catch (_) { throw new TypeErrorCtor("fetch: " + JSONStringify(StringCtor(input)) + " is not an absolute URL"); }
    return url.href;
  }
  function headerName(name) {
    const n = StringCtor(name).toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)) throw new TypeErrorCtor("Invalid header name: " + JSONStringify(StringCtor(name)));
    return n;
  }
  function headerValue(value) {
    const v = StringCtor(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(v)) throw new TypeErrorCtor("Invalid header value");
    return v;
  }
  const HEADERS = Symbol("headers");
  class Headers {
    constructor(init) {
      this[HEADERS] = [];
      if (init === undefined || init === null) return;
      if (init instanceof Headers) { for (const [k, v] of init[HEADERS]) this[HEADERS].push([k, v]); return; }
      if (typeof init !== "object") throw new TypeErrorCtor("Headers must be built from an object, an array of pairs or Headers");
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeErrorCtor("A header pair must have two elements");
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of ObjectKeys(init)) this.append(k, init[k]);
      }
    }
    append(name, value) { this[HEADERS].push([headerName(name), headerValue(value)]); }
    set(name, value) {
      const n = headerName(name), v = headerValue(value);
      const list = this[HEADERS];
      const i = list.findIndex(([k]) => k === n);
      if (i < 0) { list.push([n, v]); return; }
      list[i] = [n, v]; // the first keeps its place; the others go
      this[HEADERS] = list.filter(([k], j) => k !== n || j === i);
    }
    get(name) {
      const n = headerName(name);
      if (n === "set-cookie") { const all = this.getSetCookie(); return all.length ? all.join(", ") : null; }
      const values = this[HEADERS].filter(([k]) => k === n).map(([, v]) => v);
      return values.length ? values.join(", ") : null;
    }
    getSetCookie() { return this[HEADERS].filter(([k]) => k === "set-cookie").map(([, v]) => v); }
    has(name) { const n = headerName(name); return this[HEADERS].some(([k]) => k === n); }
    delete(name) { const n = headerName(name); this[HEADERS] = this[HEADERS].filter(([k]) => k !== n); }
    *entries() {
      const names = [...new SetCtor(this[HEADERS].map(([k]) => k))].sort();
      for (const n of names) {
        if (n === "set-cookie") for (const v of this.getSetCookie()) yield [n, v];
        else yield [n, this.get(n)];
      }
    }
    keys() { return (function* (h) { for (const [k] of h.entries()) yield k; })(this); }
    values() { return (function* (h) { for (const [, v] of h.entries()) yield v; })(this); }
    forEach(fn, self) { for (const [k, v] of this.entries()) call(fn, self, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "Headers"; }
  }

  // A body given to Request or Response: [bytes as a byte string, its default content type].
  function bodyOf(body) {
    if (body === undefined || body === null) return [null, null];
    if (typeof body === "string") return [binaryText(new TextEncoder().encode(body)), "text/plain;charset=UTF-8"];
    if (body instanceof ArrayBufferCtor || ArrayBufferIsView(body)) return [binaryText(body), null];
    if (global.URLSearchParams && body instanceof global.URLSearchParams) {
      return [binaryText(new TextEncoder().encode(StringCtor(body))), "application/x-www-form-urlencoded;charset=UTF-8"];
    }
    return [binaryText(new TextEncoder().encode(StringCtor(body))), "text/plain;charset=UTF-8"];
  }

  const BODY = Symbol("body"), USED = Symbol("used");
  class Body {
    get bodyUsed() { return this[USED]; }
    get body() { return this[BODY] === null ? null : this[BODY]; }
    _take() {
      if (this[USED]) return PromiseReject(new TypeErrorCtor("The body has already been read"));
      this[USED] = true;
      return PromiseResolve(this[BODY] === null ? "" : this[BODY]);
    }
    arrayBuffer() { return this._take().then((t) => bytesOf(t)); }
    bytes() { return this.arrayBuffer().then((b) => new Uint8ArrayCtor(b)); }
    text() { return this.arrayBuffer().then((b) => new TextDecoder().decode(b)); }
    json() { return this.text().then((t) => JSONParse(t)); }
  }
  function bodyInit(target, body, headers) {
    const [bytes, type] = bodyOf(body);
    target[BODY] = bytes;
    target[USED] = false;
    if (type !== null && !headers.has("content-type")) headers.set("content-type", type);
  }

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      const from = input instanceof Request ? input : null;
      init = init || {};
      this.url = from ? from.url : absoluteURL(input);
      this.method = StringCtor(init.method || (from ? from.method : "GET")).toUpperCase();
      this.headers = new Headers(init.headers !== undefined ? init.headers : from ? from.headers : undefined);
      this.redirect = init.redirect || (from ? from.redirect : "follow");
      if (this.redirect !== "follow" && this.redirect !== "manual" && this.redirect !== "error") throw new TypeErrorCtor("redirect must be follow, manual or error");
      this.signal = init.signal !== undefined ? init.signal : from ? from.signal : null;
      if (init.body !== undefined && init.body !== null) {
        if (this.method === "GET" || this.method === "HEAD") throw new TypeErrorCtor("A " + this.method + " request cannot have a body");
        bodyInit(this, init.body, this.headers);
      } else if (from) {
        this[BODY] = from[BODY];
        this[USED] = false;
      } else {
        this[BODY] = null;
        this[USED] = false;
      }
    }
    clone() { return new Request(this); }
    get [Symbol.toStringTag]() { return "Request"; }
  }

  class Response extends Body {
    constructor(body, init = {}) {
      super();
      init = init || {};
      const status = init.status === undefined ? 200 : init.status;
      if (typeof status !== "number" || status < 200 || status > 599) throw new RangeErrorCtor("The status must be 200 to 599");
      this.status = status;
      this.statusText = init.statusText === undefined ? "" : StringCtor(init.statusText);
      this.headers = new Headers(init.headers);
      this.url = "";
      this.redirected = false;
      this.type = "default";
      bodyInit(this, body, this.headers);
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    clone() {
      if (this[USED]) throw new TypeErrorCtor("The body has already been read");
      const copy = new Response(null, this);
      copy[BODY] = this[BODY];
      copy.url = this.url;
      copy.redirected = this.redirected;
      copy.type = this.type;
      return copy;
    }
    static json(data, init = {}) {
      const headers = new Headers(init && init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSONStringify(data), { ...init, headers });
    }
    static error() { const r = new Response(null, { status: 200 }); r.status = 0; r.type = "error"; return r; }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  function responseOf(answer) {
    const r = new Response(null, { status: 200, statusText: answer.statusText, headers: answer.headers });
    r.status = answer.status; // 1xx-3xx too, as a fetched response may be
    r[BODY] = answer.body === "" ? null : answer.body;
    r.url = answer.url;
    r.redirected = answer.redirected;
    r.type = "basic";
    return r;
  }

  const ABORTED = Symbol("aborted"), LISTENERS = Symbol("listeners");
  class AbortSignal {
    constructor(key) {
      if (key !== ABORTED) throw new TypeErrorCtor("Illegal constructor: use an AbortController");
      this[ABORTED] = false;
      this.reason = undefined;
      this.onabort = null;
      this[LISTENERS] = [];
    }
    get aborted() { return this[ABORTED]; }
    addEventListener(type, fn) { if (type === "abort" && typeof fn === "function") this[LISTENERS].push(fn); }
    removeEventListener(type, fn) { this[LISTENERS] = this[LISTENERS].filter((f) => f !== fn); }
    throwIfAborted() { if (this[ABORTED]) throw this.reason; }
    _abort(reason) {
      if (this[ABORTED]) return;
      this[ABORTED] = true;
      this.reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      const event = { type: "abort", target: this };
      for (const fn of [...(this.onabort ? [this.onabort] : []), ...this[LISTENERS]]) {
        try { call(fn, this, event); } catch (e) { reportAsyncError(e); }
      }
    }
    static abort(reason) { const s = new AbortSignal(ABORTED); s._abort(reason); return s; }
    static timeout(ms) {
      const s = new AbortSignal(ABORTED);
      global.setTimeout(() => s._abort(new DOMException("The operation timed out", "TimeoutError")), ms);
      return s;
    }
    get [Symbol.toStringTag]() { return "AbortSignal"; }
  }
  class AbortController {
    constructor() { this.signal = new AbortSignal(ABORTED); }
    abort(reason) { this.signal._abort(reason); }
    get [Symbol.toStringTag]() { return "AbortController"; }
  }

  function fetch(input, init) {
    try {
      const request = input instanceof Request && init === undefined ? input : new Request(input, init);
      const signal = request.signal;
      if (signal && signal.aborted) return PromiseReject(signal.reason);
      if (request.bodyUsed) return PromiseReject(new TypeErrorCtor("The request body has already been read"));
      const headers = [];
      for (const [k, v] of request.headers[HEADERS]) headers.push([k, v]);
      const args = JSONStringify({ url: request.url, method: request.method, headers, body: request[BODY], redirect: request.redirect });
      const answer = call(PromiseThen, hostCall(current, "fetch", args), responseOf);
      if (!signal) return answer;
      return new PromiseCtor((resolve, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason));
        call(PromiseThen, answer, resolve, reject);
      });
    } catch (e) {
      return PromiseReject(e);
    }
  }
  define("Headers", Headers);
  define("Request", Request);
  define("Response", Response);
  define("AbortController", AbortController);
  define("AbortSignal", AbortSignal);
  define("fetch", fetch);

  // String(v), or `fallback` when that throws (a hostile toString or Symbol.toPrimitive).
  function stringOf(v, fallback) {
    try {
      return StringCtor(v);
    } catch (_) {
      return fallback;
    }
  }

  // name, message and stack of whatever was thrown, each bounded; nothing here may throw,
  // whatever getters, proxies or traps the value carries.
  function errorInfo(e) {
    let name = "Error", message = "", stack = "";
    let errorLike = false;
    try {
      errorLike = e !== null && typeof e === "object" &&
        (call(ObjectIsPrototypeOf, ErrorPrototype, e) || "message" in e);
    } catch (_) {
      errorLike = true; // a proxy refusing to be looked at: read what it lets through
    }
    if (errorLike) {
      try { const v = e.name; if (v !== undefined) name = stringOf(v, "Error"); } catch (_) { /* keep "Error" */ }
      try { message = stringOf(e.message, "[the error's message could not be read]"); } catch (_) { message = "[the error's message could not be read]"; }
      try { const v = e.stack; stack = v ? stringOf(v, "") : ""; } catch (_) { /* no stack */ }
    } else {
      let shown;
      try { shown = typeof e === "string" ? e : JSONStringify(e); } catch (_) { /* below */ }
      if (typeof shown !== "string") shown = stringOf(e, "[a value that cannot be shown]");
      message = "Uncaught " + shown;
    }
    return {
      name: clip(name, limits.maxErrorNameBytes),
      message: clip(message, limits.maxErrorMessageBytes),
      stack: clip(stack, limits.maxErrorStackBytes),
    };
  }

  function logsText(inv) {
    let logs = inv.logText;
    if (inv.dropped > 0) {
      logs += (inv.count > 0 ? "," : "") + logEntry("warn", "[" + inv.dropped + " more log entries dropped: log limit reached]");
    }
    return "[" + logs + "]";
  }

  // A report is one line of JSON (the id, how it ended, the logs) and, for a success, a newline
  // and the output's JSON text, which the host passes on without parsing it. It is assembled
  // from strings only, so a polluted toJSON or a hooked prototype cannot change or break it.
  function failureReport(inv, kind, name, message, stack, extra = "") {
    return '{"id":' + inv.id + ',"ok":false,"kind":"' + kind + '","error":{"name":' + JSONStringify(name) +
      ',"message":' + JSONStringify(message) + ',"stack":' + JSONStringify(stack) + '},"logs":' + logsText(inv) + extra + "}";
  }

  function notSerialisable(inv, reason) {
    return failureReport(inv, "FunctionError", "TypeError", "The function's result is not JSON-serialisable: " + reason, "");
  }

  function tooLarge(inv, size) {
    return failureReport(inv, "OutputTooLarge", "RangeError",
      "The result is " + size + " bytes of JSON, over the limit of " + limits.maxOutputBytes + " bytes", "");
  }

  function successReport(inv, value) {
    let out;
    try {
      out = JSONStringify(value === undefined ? null : value);
    } catch (e) {
      return notSerialisable(inv, errorInfo(e).message);
    }
    if (out === undefined) out = "null"; // a function or a symbol
    if (out.length > limits.maxOutputBytes) return tooLarge(inv, "at least " + out.length);
    const size = measureJSON(out);
    if (size < 0) return notSerialisable(inv, "it is nested more than " + limits.maxResultDepth + " levels deep");
    if (size > limits.maxOutputBytes) return tooLarge(inv, size);
    return '{"id":' + inv.id + ',"ok":true,"logs":' + logsText(inv) + "}\n" + out;
  }

  const forgetMatch = /(?:)/;

  let finishing = null; // the invocation whose report is being built, for salvageLogs()

  // A function stopped at its limit by a charge never got the memory it asked for; once its
  // invocation is over, what it allocated is garbage unless something of it stays reachable.
  // A collection tells: the isolate is `reusable` when no more than a quarter of the limit is
  // left in use (no WebAssembly memory, which never shrinks), and is recycled otherwise. One
  // found over its limit at the end (`overMemory`, which has just collected) never is.
  function memoryReport(inv) {
    let reusable = false;
    if (inv.memory && !hasWasmMemory && v8Statistics !== null) {
      measure(true);
      reusable = outside + heapLive <= memoryLimit / 4;
    }
    return failureReport(inv, "MemoryLimitExceeded", "RangeError",
      "The function exceeded its memory limit of " + limits.memoryMb + " MB (heap and buffers)", "",
      ',"reusable":' + reusable);
  }

  // Whether the invocation ends over its memory limit: always measured after one that ran long
  // enough to have allocated that much (a large string, say, which the heap limit sees only
  // at the next collection); a collection first confirms what the count says.
  function overMemory(inv) {
    if (inv.memory) return true;
    if (v8Statistics === null || (!hasWasmMemory && DateNow() - inv.started < MEASURE_AFTER_MS)) return false;
    measure(false);
    if (outside + heapLive <= memoryLimit) return false;
    measure(true);
    return outside + heapLive > memoryLimit;
  }

  function finish(inv, ok, value) {
    if (current !== inv) return;
    current = null;
    if (inv.calls > 0) { // answers still to come are dropped
      outbox = "";
      pending = new MapCtor();
    }
    epoch++;
    finishing = inv;
    let result;
    try {
      for (const id of inv.timers) { const h = timers.get(id); timers.delete(id); if (h !== undefined) call(hostClearTimeout, global, h); }
    } catch (_) { /* hooked Set or Map methods: the timers check `current` before they run */ }
    try {
      if (overMemory(inv)) result = memoryReport(inv);
      else if (ok) result = successReport(inv, value);
      else { const info = errorInfo(value); result = failureReport(inv, "FunctionError", info.name, info.message, info.stack); }
    } catch (_) { // our own stack ran out while reporting
      result = '{"id":' + inv.id + ',"ok":false,"kind":"FunctionError","error":{"name":"Error","message":"The function\'s result could not be reported","stack":""},"logs":[]}';
    }
    // RegExp.input, lastMatch, $1... still hold the last string a regular expression matched,
    // often part of this invocation's event: reset them before the next invocation can look.
    call(RegExpExec, forgetMatch, "");
    finishing = null;
    report(result);
  }

  // Starts one invocation. Returns the report when the function finished synchronously (no
  // await), so the host gets it with this same call; otherwise null, and take() collects it.
  function run(id, eventText, contextText, seed) {
    ready = null;
    hostWaiting = false;
    reseed(seed);
    const event = JSONParse(eventText);
    const context = JSONParse(contextText);
    const started = DateNow();
    const inv = { id, logText: "", count: 0, bytes: 0, dropped: 0, timers: new SetCtor(), memory: false, started, calls: 0 };
    current = inv;
    ObjectDefineProperty(context, "kv", { value: makeKV(inv), writable: true, enumerable: false, configurable: true });
    ObjectDefineProperty(context, "getRemainingTimeMillis", {
      value: () => MathMax(0, context.timeoutMs - (DateNow() - started)),
      writable: true, enumerable: true, configurable: true,
    });
    let result, then;
    try {
      result = handler(event, context);
      // Reading `then` runs the result's getters and proxy traps: a throw there is the
      // function's own error, as it would be for `await`.
      then = result !== null && typeof result === "object" ? result.then : undefined;
    } catch (e) {
      finish(inv, false, e);
      return takeReady();
    }
    if (typeof then === "function") {
      try {
        call(PromiseThen, PromiseResolve(result), (v) => finish(inv, true, v), (e) => finish(inv, false, e));
      } catch (e) {
        finish(inv, false, e);
      }
    } else {
      finish(inv, true, result);
    }
    return takeReady();
  }

  // The host writes small invocations into this buffer and starts them with one constant
  // script, which V8 compiles once: a little-endian uint32 length, then ASCII text
  // "<id> <seed> <context length>\n<context><event>". The buffer is zeroed as soon as it is
  // read, and only ever handed to built-ins captured above, which look up nothing a function
  // could replace (no species, no prototype methods).
  let io = null, ioBytes = null; // made by install(), with the function's limits

  function decode(from, to) {
    let out = "";
    for (let i = from; i < to; i += 8192) {
      out += ReflectApply(StringFromCharCode, null, new Uint8ArrayCtor(io, i, MathMin(8192, to - i)));
    }
    return out;
  }

  // What the host wrote to the I/O buffer (its length in 4 bytes, then the message), read by
  // `read(end)` and then cleared, so that nothing of it stays for a later reader.
  function fromBuffer(read) {
    const end = (ioBytes[0] | (ioBytes[1] << 8) | (ioBytes[2] << 16) | (ioBytes[3] << 24)) + 4;
    try {
      return read(end);
    } finally {
      ReflectApply(TypedArrayFill, ioBytes, [0, 0, end]);
    }
  }

  // An invocation: "<id> <seed> <context length>\n<context><event>".
  function runFromBuffer(t) {
    fromHost(t);
    const m = fromBuffer((end) => {
      let p = 4, id = 0, contextLength = 0;
      while (ioBytes[p] !== 32) id = id * 10 + ioBytes[p++] - 48;
      const seedStart = ++p;
      while (ioBytes[p] !== 32) p++;
      const seed = decode(seedStart, p++);
      while (ioBytes[p] !== 10) contextLength = contextLength * 10 + ioBytes[p++] - 48;
      p++;
      return [id, seed, decode(p, p + contextLength), decode(p + contextLength, end)];
    });
    return run(m[0], m[3], m[2], m[1]); // (no destructuring: the iterator can be replaced)
  }

  // A host call's answer: "<id> <ok 0|1> <kind>\n<text>", the text's characters one byte each
  // (latin-1). The host writes it only while the buffer is free.
  function replyFromBuffer(t) {
    fromHost(t);
    const m = fromBuffer((end) => {
      let p = 4, id = 0;
      while (ioBytes[p] !== 32) id = id * 10 + ioBytes[p++] - 48;
      const ok = ioBytes[++p] === 49;
      const kindStart = (p += 2);
      while (ioBytes[p] !== 10) p++;
      return [id, ok, decode(kindStart, p), decode(p + 1, end)];
    });
    return reply(t, m[0], m[1], m[2], m[3]);
  }

  function runFromScript(t, id, eventText, contextText, seed) {
    fromHost(t);
    return run(id, eventText, contextText, seed);
  }

  function takeReady() {
    const text = ready;
    ready = null;
    return text;
  }

  // The logs of an invocation cut short by the heap limit, for its MemoryLimitExceeded reply.
  function salvageLogs(t) {
    fromHost(t);
    const inv = current !== null ? current : finishing;
    current = finishing = null;
    return inv === null ? "[]" : logsText(inv);
  }

  // The host's probe of an idle isolate: that it answers at all, and its memory ("heap outside").
  // Measured again only when an invocation has run since the last probe.
  let probedAt = -1;
  function probe(t) {
    fromHost(t);
    if (probedAt !== epoch) { measure(false); probedAt = epoch; }
    return heapLive + " " + outside;
  }

  // The function's limits, set when a (pre-warmed) isolate becomes the function's. The I/O
  // buffer keeps the size it was made with.
  function setLimits(t, limitsText) {
    fromHost(t);
    const next = JSONParse(limitsText);
    next.ioBytes = limits.ioBytes;
    applyLimits(next);
  }

  function applyLimits(next) {
    limits = next;
    memoryLimit = limits.memoryBytes;
    measureEvery = MathMax(MEASURE_EVERY, memoryLimit / 16);
  }

  // One-shot, and gone once used: the handler is set while the function's code loads.
  ObjectDefineProperty(global, "__vortex_set_handler", {
    value: function (fn) {
      if (handler !== null) throw new TypeErrorCtor("The handler is already set");
      if (typeof fn !== "function") throw new TypeErrorCtor("The default export must be a function");
      handler = fn;
      delete global.__vortex_set_handler;
    },
    configurable: true, enumerable: false,
  });
  // Fixed (neither writable nor configurable), so that no function can put its own in their place
  // and be handed the token by the host's next call.
  ObjectDefineProperty(global, "__vortex_run", { value: ObjectFreeze(runFromScript), enumerable: false });
  ObjectDefineProperty(global, "__vortex_take", { value: ObjectFreeze(take), enumerable: false });
  ObjectDefineProperty(global, "__vortex_run_io", { value: ObjectFreeze(runFromBuffer), enumerable: false });
  ObjectDefineProperty(global, "__vortex_logs", { value: ObjectFreeze(salvageLogs), enumerable: false });
  ObjectDefineProperty(global, "__vortex_probe", { value: ObjectFreeze(probe), enumerable: false });
  ObjectDefineProperty(global, "__vortex_limits", { value: ObjectFreeze(setLimits), enumerable: false });
  ObjectDefineProperty(global, "__vortex_reply", { value: ObjectFreeze(reply), enumerable: false });
  ObjectDefineProperty(global, "__vortex_reply_io", { value: ObjectFreeze(replyFromBuffer), enumerable: false });

  // Called once by the host, through a handle only it holds: the notification function, the
  // token its calls will carry, and back the I/O buffer.
  // The bootstrap runs before the isolate is given to a function (a pre-warmed isolate), so the
  // function's limits come with install().
  return function install(notifyFn, secret, limitsText) {
    if (token !== null) throw new TypeErrorCtor("Already installed");
    notify = notifyFn;
    token = secret;
    applyLimits(JSONParse(limitsText));
    io = new ArrayBufferCtor(limits.ioBytes);
    ioBytes = new Uint8ArrayCtor(io);
    return io;
  };
})(globalThis, __VORTEX_LIMITS__);
