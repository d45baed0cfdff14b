// The JavaScript world of a Vortex isolate: console capture, timers, web globals and the
// invocation driver. Evaluated once per isolate by isolate.py, before the function's code.
// Everything the runtime relies on is captured here, so code that later replaces globals or
// pollutes prototypes only breaks itself, never the driver's bookkeeping.
(function (global, limits) {
  "use strict";
  const ObjectKeys = Object.keys;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectFreeze = Object.freeze;
  const ArrayIsArray = Array.isArray;
  const JSONStringify = JSON.stringify;
  const JSONParse = JSON.parse;
  const StringFromCharCode = String.fromCharCode;
  const MathMin = Math.min;
  const MathMax = Math.max;
  const DateCtor = Date;
  const DateToISOString = Date.prototype.toISOString;
  const ReflectApply = Reflect.apply;
  // Rest parameters build a plain array without the (overridable) iterator protocol.
  const call = (fn, self, ...args) => ReflectApply(fn, self, args);
  const PromiseCtor = Promise;
  const PromiseResolve = Promise.resolve.bind(Promise);
  const PromiseThen = Promise.prototype.then;
  const SetCtor = Set;
  const MapCtor = Map;
  const hostSetTimeout = global.setTimeout;
  const hostClearTimeout = global.clearTimeout;

  // ---------------------------------------------------------------- invocation state
  let current = null; // {id, logs, bytes, dropped, timers, deadline}

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

  function record(level, args) {
    const inv = current;
    if (inv === null) return; // after the invocation ended: nobody is listening any more
    if (inv.logs.length >= limits.maxLogEntries || inv.bytes >= limits.maxLogBytes) {
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
    if (message.length > room) {
      message = message.slice(0, MathMax(room, 0)) + "... [truncated]";
    }
    inv.bytes += message.length;
    inv.logs[inv.logs.length] = { timestamp: call(DateToISOString, new DateCtor()), level, message };
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
    for (let i = 0; i < 8; i++) rngKey[i] = parseInt(hex.slice(i * 8, i * 8 + 8), 16) >>> 0;
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

  // ---------------------------------------------------------------- the invocation driver
  let handler = null;
  let notify = null;
  // The finished invocation's report waits here until the host takes it. The host asks right
  // after starting an invocation (most finish within that first turn of the event loop) and
  // is notified only when it had to wait.
  let ready = null;
  let hostWaiting = false;

  function report(text) {
    ready = text;
    if (hostWaiting) {
      hostWaiting = false;
      notify();
    }
  }

  function take() {
    const text = ready;
    if (text === null) {
      hostWaiting = true;
      return null;
    }
    ready = null;
    return text;
  }

  function errorInfo(e) {
    if (e instanceof Error || (e && typeof e === "object" && "message" in e)) {
      let name = "Error", message = "", stack = "";
      try { name = String(e.name); message = String(e.message); stack = String(e.stack || ""); } catch (_) { /* hostile getters */ }
      return { name, message, stack };
    }
    let text;
    try { text = typeof e === "string" ? e : JSONStringify(e); } catch (_) { text = String(e); }
    return { name: "Error", message: "Uncaught " + text, stack: "" };
  }

  function finish(inv, ok, value) {
    if (current !== inv) return;
    for (const id of inv.timers) { const h = timers.get(id); timers.delete(id); if (h !== undefined) call(hostClearTimeout, global, h); }
    current = null;
    const logs = inv.logs;
    if (inv.dropped > 0) {
      logs[logs.length] = { timestamp: call(DateToISOString, new DateCtor()), level: "warn", message: "[" + inv.dropped + " more log entries dropped: log limit reached]" };
    }
    let text;
    if (ok) {
      try {
        const out = JSONStringify(value === undefined ? null : value);
        text = out === undefined ? "null" : out;
      } catch (e) {
        ok = false;
        value = { name: "TypeError", message: "The function's result is not JSON-serialisable: " + errorInfo(e).message, stack: "" };
        text = null;
      }
      if (ok && text.length > limits.maxOutputBytes) {
        report(JSONStringify({ id: inv.id, ok: false, kind: "OutputTooLarge", error: { name: "RangeError", message: "The result is " + text.length + " bytes, over the limit of " + limits.maxOutputBytes, stack: "" }, logs }));
        return;
      }
    }
    if (ok) {
      // The output is already JSON text: splice it in rather than serialising twice.
      report('{"id":' + inv.id + ',"ok":true,"logs":' + JSONStringify(logs) + ',"output":' + text + "}");
    } else {
      report(JSONStringify({ id: inv.id, ok: false, kind: "FunctionError", error: errorInfo(value), logs }));
    }
  }

  // Starts one invocation. Returns the report when the function finished synchronously (no
  // await), so the host gets it with this same call; otherwise null, and take() collects it.
  function run(id, eventText, contextText, seed) {
    ready = null;
    hostWaiting = false;
    reseed(seed);
    const event = JSONParse(eventText);
    const context = JSONParse(contextText);
    const inv = { id, logs: [], bytes: 0, dropped: 0, timers: new SetCtor() };
    current = inv;
    const started = DateCtor.now();
    context.getRemainingTimeMillis = () => MathMax(0, context.timeoutMs - (DateCtor.now() - started));
    let result;
    try {
      result = handler(event, context);
    } catch (e) {
      finish(inv, false, e);
      return takeReady();
    }
    if (result !== null && typeof result === "object" && typeof result.then === "function") {
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
  // "<id> <seed> <context length>\n<context><event>".
  const io = new ArrayBuffer(limits.ioBytes);
  const ioBytes = new Uint8Array(io);
  const ioView = new DataView(io);
  function runFromBuffer() {
    const length = ioView.getUint32(0, true) + 4;
    let text = "";
    for (let i = 4; i < length; i += 8192) {
      text += ReflectApply(StringFromCharCode, null, ioBytes.subarray(i, MathMin(i + 8192, length)));
    }
    const nl = text.indexOf("\n");
    const head = text.slice(0, nl).split(" ");
    const contextEnd = nl + 1 + Number(head[2]);
    return run(Number(head[0]), text.slice(contextEnd), text.slice(nl + 1, contextEnd), head[1]);
  }

  function takeReady() {
    const text = ready;
    ready = null;
    return text;
  }

  ObjectDefineProperty(global, "__vortex_install", {
    value: function (notifyFn) { notify = notifyFn; },
    configurable: true, enumerable: false,
  });
  ObjectDefineProperty(global, "__vortex_set_handler", {
    value: function (fn) {
      if (typeof fn !== "function") throw new TypeError("The default export must be a function");
      handler = fn;
    },
    configurable: true, enumerable: false,
  });
  ObjectDefineProperty(global, "__vortex_run", { value: ObjectFreeze(run), enumerable: false });
  ObjectDefineProperty(global, "__vortex_take", { value: ObjectFreeze(take), enumerable: false });
  ObjectDefineProperty(global, "__vortex_run_io", { value: ObjectFreeze(runFromBuffer), enumerable: false });
  ObjectDefineProperty(global, "__vortex_io", { value: () => io, configurable: true, enumerable: false });
})(globalThis, __VORTEX_LIMITS__);
