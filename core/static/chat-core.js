// The chat page's protocol decisions, apart from the page: no DOM, no socket, no clock,
// no randomness of its own. Inputs in, decisions out (chat.js does the I/O).

export const SUBPROTOCOL = "vigil.v1";

export const EVENT_TYPES = Object.freeze([
  "agent_started",
  "agent_thinking",
  "tool_executing",
  "tool_completed",
  "agent_completed",
  "agent_error",
]);

// PROTOCOL.md, "Close codes": what the client does after each one. Codes not listed
// (1006 when the server vanished or refused the handshake, 1005, ...) reconnect with backoff.
const CLOSE_ACTIONS = Object.freeze({
  1000: "stop", // normal
  1002: "stop", // our frame broke RFC 6455: reconnecting would not help
  1007: "stop", // our text frame was not UTF-8: likewise
  1009: "stop", // our frame was too large: likewise
  4403: "stop", // forbidden (revoked, disabled)
  1012: "immediate", // the server drains: reconnect at once (elsewhere)
  4401: "refresh", // token expired: refresh it, then reconnect
});

/** "stop" | "immediate" | "refresh" | "backoff" for a close code. */
export function closeAction(code) {
  return CLOSE_ACTIONS[code] ?? "backoff";
}

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(cap, base * 2^attempt)).
 * `random` is a function returning [0, 1), injected so the arithmetic is testable.
 */
export function backoffDelay(attempt, random, base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Seconds until a JWT's `exp`, or null when the token carries none we can read. */
export function tokenSecondsLeft(token, nowMs) {
  const part = (token || "").split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp - nowMs / 1000 : null;
  } catch {
    return null;
  }
}

/** A v4 UUID; crypto.randomUUID exists only in secure contexts, getRandomValues everywhere. */
export function newId(cryptoImpl = globalThis.crypto) {
  if (typeof cryptoImpl.randomUUID === "function") return cryptoImpl.randomUUID();
  const b = cryptoImpl.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * What this page has received of one thread: drops repeated seqs (the server delivers at
 * least once) and knows the cumulative ack (the highest seq with nothing missing below it).
 */
export class ThreadLog {
  constructor(threadId) {
    this.threadId = threadId;
    this.epoch = "";
    this.contiguous = 0; // every seq <= contiguous was received (or is gone from the log)
    this.ahead = new Set(); // received seqs above a gap
  }

  /** "new", "duplicate", or "new_epoch" (the server lost the log: reload the thread). */
  accept(event) {
    if (this.epoch && event.epoch !== this.epoch) return "new_epoch";
    this.epoch = event.epoch;
    if (event.seq <= this.contiguous || this.ahead.has(event.seq)) return "duplicate";
    this.ahead.add(event.seq);
    this._advance();
    return "new";
  }

  /** A REST reload returned everything up to `seq` that still exists: nothing below is due. */
  loadedThrough(seq) {
    this.contiguous = Math.max(this.contiguous, seq);
    for (const s of this.ahead) if (s <= this.contiguous) this.ahead.delete(s);
    this._advance();
  }

  /** The seq for a cumulative ack and for `resume.last_seq` (0: nothing received yet). */
  get ackSeq() {
    return this.contiguous;
  }

  /** A seq above the gap was received while one below it is missing. */
  get hasGap() {
    return this.ahead.size > 0;
  }

  _advance() {
    while (this.ahead.delete(this.contiguous + 1)) this.contiguous += 1;
  }
}
