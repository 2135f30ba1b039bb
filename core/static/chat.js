// The Vigil chat page: one WebSocket speaking vigil.v1 (docs/protocol.md), every agent
// event shown as it arrives. Server text is only ever inserted with textContent.
import {
  EVENT_TYPES,
  SUBPROTOCOL,
  ThreadLog,
  backoffDelay,
  closeAction,
  newId,
  tokenSecondsLeft,
} from "./chat-core.js";

const TOKEN_REFRESH_MARGIN_S = 60;
const MAX_ERRORS_SHOWN = 20;
const RELOAD_PAGE_SIZE = 1000;
// Missing this many heartbeats (plus a second of slack) means the server is gone.
const WATCHDOG_HEARTBEATS = 2.5;
// A gap in a thread's seqs that no resend has filled after this long is healed with a resume
// of the thread (as the Python client's Reconnect.gap_timeout_s); `?gap_timeout_ms=` changes it.
const GAP_TIMEOUT_MS =
  Number(new URLSearchParams(location.search).get("gap_timeout_ms")) || 10_000;

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

const ui = {
  userForm: $("user-form"),
  userInput: $("user-input"),
  state: $("connection-state"),
  connectionId: $("connection-id"),
  threadId: $("thread-id"),
  resumeState: $("resume-state"),
  conversation: $("conversation"),
  emptyHint: $("empty-hint"),
  errorsPanel: $("errors-panel"),
  errors: $("errors"),
  composer: $("composer"),
  message: $("message-input"),
  newThread: $("new-thread-button"),
  turnTemplate: document.getElementById("turn-template"),
  runTemplate: document.getElementById("run-template"),
};

// A conversation session: its thread is unknown (null) until the first chat is accepted.
const newSession = () => ({ threadId: null });

const state = {
  user: null,
  token: null,
  ws: null, // the current socket; handlers of any other socket are ignored
  open: false, // connection_ready received on state.ws
  attempt: 0, // reconnect attempts since the last connection_ready
  reconnectTimer: null,
  watchdogTimer: null,
  heartbeatMs: 15_000,
  session: newSession(),
  logs: new Map(), // thread_id -> ThreadLog
  pending: [], // chats not yet accepted: {id, text, session, sentOn, turn}
  turnsByChat: new Map(), // chat id -> turn element
  runs: new Map(), // run_id -> run element
};

// --- connection -------------------------------------------------------------------------

function setConnectionState(name, text) {
  ui.state.dataset.state = name;
  ui.state.textContent = text;
}

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

async function fetchToken() {
  const user = state.user;
  const response = await fetch(`/api/dev/token?user=${encodeURIComponent(user)}`);
  if (!response.ok) throw new Error(`token request failed: HTTP ${response.status}`);
  const body = await response.json();
  if (user === state.user) state.token = body.token; // unless the user switched meanwhile
}

function tokenIsStale() {
  const left = tokenSecondsLeft(state.token, Date.now());
  return !state.token || (left !== null && left < TOKEN_REFRESH_MARGIN_S);
}

async function connect({ refreshToken = false } = {}) {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  setConnectionState(state.attempt ? "reconnecting" : "connecting", "connecting…");
  const user = state.user;
  try {
    if (refreshToken || tokenIsStale()) await fetchToken();
  } catch (err) {
    if (user !== state.user) return; // the user switched meanwhile
    showError({ code: "token_unavailable", message: String(err.message || err), ref: null });
    scheduleReconnect("backoff");
    return;
  }
  if (user !== state.user) return;
  const ws = new WebSocket(wsUrl(), [SUBPROTOCOL, `bearer.${state.token}`]);
  state.ws = ws;
  state.open = false;
  ws.addEventListener("message", (message) => {
    if (state.ws === ws) onFrame(message.data);
  });
  ws.addEventListener("close", (event) => {
    if (state.ws === ws) onClose(event.code, event.reason);
  });
}

function detachSocket(code = 1000, reason = "") {
  const ws = state.ws;
  state.ws = null;
  state.open = false;
  clearTimeout(state.watchdogTimer);
  if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code, reason);
}

function onClose(code, reason) {
  state.ws = null;
  state.open = false;
  clearTimeout(state.watchdogTimer);
  ui.connectionId.textContent = "–";
  const action = closeAction(code);
  const why = `closed (${code}${reason ? `: ${reason}` : ""})`;
  if (action === "stop") {
    setConnectionState("closed", `${why}; not reconnecting`);
    return;
  }
  // 1006 also covers a refused handshake (an expired token among the reasons): refresh it.
  scheduleReconnect(action, why, action === "refresh" || code === 1006);
}

function scheduleReconnect(action, why = "disconnected", refreshToken = false) {
  const delay =
    action === "immediate" && state.attempt === 0 ? 0 : backoffDelay(state.attempt, Math.random);
  state.attempt += 1;
  setConnectionState("reconnecting", `${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
  state.reconnectTimer = setTimeout(() => connect({ refreshToken }), delay);
}

function armWatchdog() {
  clearTimeout(state.watchdogTimer);
  state.watchdogTimer = setTimeout(() => {
    detachSocket(4000, "heartbeat missed");
    ui.connectionId.textContent = "–";
    scheduleReconnect("backoff", "no heartbeat from the server");
  }, state.heartbeatMs * WATCHDOG_HEARTBEATS + 1000);
}

function send(frame) {
  if (!state.open) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

// --- frames from the server ----------------------------------------------------------------

function onFrame(raw) {
  let frame;
  try {
    frame = JSON.parse(raw);
  } catch {
    showError({ code: "invalid_json", message: "the server sent a frame that is not JSON" });
    return;
  }
  armWatchdog();
  if (EVENT_TYPES.includes(frame.type)) {
    onEvent(frame);
    return;
  }
  switch (frame.type) {
    case "connection_ready":
      onReady(frame);
      break;
    case "chat_accepted":
      onChatAccepted(frame);
      break;
    case "resumed":
      onResumed(frame);
      break;
    case "ping":
      send({ type: "pong", ts: frame.ts });
      break;
    case "error":
      onErrorFrame(frame);
      break;
    default:
      break; // v1 may add frame types; an unknown one is not ours to handle
  }
}

function onReady(frame) {
  state.open = true;
  state.attempt = 0;
  if (typeof frame.heartbeat_interval_s === "number" && frame.heartbeat_interval_s > 0) {
    state.heartbeatMs = frame.heartbeat_interval_s * 1000;
  }
  armWatchdog();
  ui.connectionId.textContent = frame.connection_id;
  setConnectionState("open", `connected as ${frame.user_id}`);
  // Resume first, so replayed events come before anything a re-sent chat starts.
  for (const log of state.logs.values()) {
    if (!log.reloading) {
      send({ type: "resume", thread_id: log.threadId, epoch: log.epoch, last_seq: log.ackSeq });
    }
  }
  for (const chat of state.pending) chat.sentOn = null;
  flushPending();
}

function onChatAccepted(frame) {
  const index = state.pending.findIndex((chat) => chat.id === frame.id);
  const chat = index >= 0 ? state.pending.splice(index, 1)[0] : null;
  const known = state.logs.has(frame.thread_id);
  const log = logFor(frame.thread_id);
  const turn = state.turnsByChat.get(frame.id);
  if (chat) {
    chat.session.threadId = frame.thread_id;
    chat.turn.dataset.status = "accepted";
    // Re-sent after a reconnect into a thread this page never heard of: the run's first
    // events went to the lost connection. A resume fetches them (or says to reload).
    if (chat.sends > 1 && !known) {
      send({ type: "resume", thread_id: log.threadId, epoch: log.epoch, last_seq: log.ackSeq });
    }
  }
  const run = state.runs.get(frame.run_id);
  if (!run) {
    attachRun(turn ?? newTurn(null), frame.run_id, frame.thread_id);
  } else if (turn && !turn.contains(run)) {
    // A replay drew this run before its acceptance came: move it under its message.
    const drawnFor = run.closest('[data-testid="turn"]');
    turn.append(run);
    drawnFor.remove();
  }
  showThread();
  flushPending();
}

function onResumed(frame) {
  ui.resumeState.hidden = false;
  ui.resumeState.dataset.recovered = String(frame.recovered);
  ui.resumeState.dataset.threadId = frame.thread_id;
  ui.resumeState.textContent = frame.recovered
    ? `resumed: ${frame.replayed} event(s) replayed`
    : "resume could not recover: reloading the thread";
  if (!frame.recovered) reloadThread(frame.thread_id);
}

function onErrorFrame(frame) {
  showError(frame);
  const index = frame.ref ? state.pending.findIndex((chat) => chat.id === frame.ref) : -1;
  if (index >= 0) {
    // The server refused this chat; a later one on the same session may still go.
    const [chat] = state.pending.splice(index, 1);
    chat.turn.dataset.status = "refused";
    const note = document.createElement("p");
    note.className = "refusal";
    note.dataset.testid = "chat-refused";
    note.textContent = `Not sent: ${frame.code}: ${frame.message}`;
    chat.turn.append(note);
    flushPending();
  }
}

function onEvent(event) {
  const log = logFor(event.thread_id);
  if (log.reloading) {
    log.reloading.push(event); // handled once the REST reload is in
    return;
  }
  const verdict = log.accept(event);
  if (verdict === "new_epoch") {
    reloadThread(event.thread_id);
    return;
  }
  if (verdict === "new") renderEvent(event);
  // Duplicates are acked too: the server sent them again because an ack went missing.
  ack(log);
  watchGap(log);
}

// An event lost on its way (pub/sub between replicas delivers at most once) is resent only to
// the connections of the replica that emitted it: a gap that outlasts GAP_TIMEOUT_MS is
// asked for again with a resume, which replays what came after the last contiguous seq.
function watchGap(log) {
  if (!log.hasGap) {
    clearTimeout(log.gapTimer);
    log.gapTimer = null;
    return;
  }
  if (log.gapTimer) return;
  const missing = log.ackSeq + 1;
  log.gapTimer = setTimeout(() => {
    log.gapTimer = null;
    if (state.logs.get(log.threadId) !== log || log.reloading || log.ackSeq >= missing) return;
    // Not open: the resume sent on connection_ready asks for it instead.
    send({ type: "resume", thread_id: log.threadId, epoch: log.epoch, last_seq: log.ackSeq });
    watchGap(log); // and again later, should the replay not fill it either
  }, GAP_TIMEOUT_MS);
}

function ack(log) {
  if (log.ackSeq > 0) send({ type: "ack", thread_id: log.threadId, seq: log.ackSeq });
}

function logFor(threadId) {
  let log = state.logs.get(threadId);
  if (!log) {
    log = new ThreadLog(threadId);
    state.logs.set(threadId, log);
  }
  return log;
}

// A resume that cannot recover: the REST API is the source of truth for the thread.
async function reloadThread(threadId) {
  const previous = state.logs.get(threadId);
  if (previous?.reloading) return;
  const log = new ThreadLog(threadId);
  log.reloading = [...(previous?.reloading ?? [])];
  state.logs.set(threadId, log);
  for (const [runId, run] of state.runs) {
    if (run.dataset.threadId === threadId) {
      run.closest('[data-testid="turn"]').remove();
      state.runs.delete(runId);
    }
  }
  let after = 0;
  try {
    for (;;) {
      const page = await fetchEvents(threadId, after);
      for (const event of page.events) {
        if (log.accept(event) === "new") renderEvent(event);
      }
      if (page.events.length === 0 || page.next_after_seq <= after) break;
      after = page.next_after_seq;
    }
    log.loadedThrough(after);
  } catch (err) {
    showError({ code: "reload_failed", message: String(err.message || err), ref: null });
  }
  const buffered = log.reloading;
  log.reloading = null;
  for (const event of buffered) onEvent(event);
  ack(log);
}

async function fetchEvents(threadId, afterSeq) {
  const url =
    `/api/threads/${encodeURIComponent(threadId)}/events` +
    `?after_seq=${afterSeq}&limit=${RELOAD_PAGE_SIZE}`;
  const get = () => fetch(url, { headers: { Authorization: `Bearer ${state.token}` } });
  let response = await get();
  if (response.status === 401) {
    await fetchToken();
    response = await get();
  }
  if (!response.ok) throw new Error(`reloading thread ${threadId}: HTTP ${response.status}`);
  return response.json();
}

// --- chats from the user -------------------------------------------------------------------

function submitChat(text) {
  const chat = { id: newId(), text, session: state.session, sentOn: null, sends: 0, turn: null };
  chat.turn = newTurn(text);
  chat.turn.dataset.chatId = chat.id;
  chat.turn.dataset.status = "sending";
  state.turnsByChat.set(chat.id, chat.turn);
  state.pending.push(chat);
  flushPending();
}

// Sends what is pending, in order. A chat that opens a thread goes alone: the chats after it
// in the same session wait for its thread_id, so the conversation stays on one thread.
// A chat re-sent after a reconnect keeps its id, which the server deduplicates.
function flushPending() {
  if (!state.open) return;
  const opening = new Set();
  for (const chat of state.pending) {
    if (chat.session.threadId === null) {
      if (opening.has(chat.session)) continue;
      opening.add(chat.session);
    }
    if (chat.sentOn === state.ws) continue;
    send({ type: "chat", id: chat.id, thread_id: chat.session.threadId, text: chat.text });
    chat.sentOn = state.ws;
    chat.sends += 1;
  }
}

// --- rendering ---------------------------------------------------------------------------

function newTurn(text) {
  ui.emptyHint.hidden = true;
  const turn = ui.turnTemplate.content.firstElementChild.cloneNode(true);
  const message = $("user-message", turn);
  if (text === null) message.closest(".user-message").hidden = true;
  else message.textContent = text;
  ui.conversation.append(turn);
  turn.scrollIntoView({ block: "end" });
  return turn;
}

function attachRun(turn, runId, threadId) {
  const run = ui.runTemplate.content.firstElementChild.cloneNode(true);
  run.dataset.runId = runId;
  run.dataset.threadId = threadId;
  $("run-id", run).textContent = runId.slice(0, 8);
  $("run-id", run).title = runId;
  $("cancel-button", run).addEventListener("click", () => send({ type: "cancel", run_id: runId }));
  turn.append(run);
  state.runs.set(runId, run);
  return run;
}

function runFor(event) {
  const known = state.runs.get(event.run_id);
  if (known) return known;
  // A run this page did not start here (a replay, a reload, another tab of the same user).
  const message = event.type === "agent_started" ? String(event.data?.message ?? "") : null;
  return attachRun(newTurn(message), event.run_id, event.thread_id);
}

function renderEvent(event) {
  const run = runFor(event);
  const data = event.data ?? {};
  const item = document.createElement("li");
  item.className = `event event-${event.type}`;
  item.dataset.testid = "event";
  item.dataset.type = event.type;
  item.dataset.seq = String(event.seq);

  const head = document.createElement("div");
  head.className = "event-head";
  head.append(
    span("event-seq", `#${event.seq}`),
    span("event-type", event.type.replace("_", " ")),
    span("event-time", timeOf(event.ts)),
  );
  const body = document.createElement("div");
  body.className = "event-body";
  body.dataset.testid = "event-body";
  for (const [label, value] of describe(event.type, data)) {
    const row = document.createElement("p");
    if (label) row.append(span("event-label", `${label}: `));
    const content = typeof value === "string" ? value : JSON.stringify(value);
    row.append(span("event-value", content));
    body.append(row);
  }
  item.append(head, body);

  // Events arrive in seq order, except when a replay overlaps live ones: keep them sorted.
  const list = $("events", run);
  const later = [...list.children].find((li) => Number(li.dataset.seq) > event.seq);
  list.insertBefore(item, later ?? null);

  if (event.type === "agent_started" && data.message) {
    const turn = run.closest('[data-testid="turn"]');
    const message = $("user-message", turn);
    if (!message.textContent) {
      message.textContent = String(data.message);
      message.closest(".user-message").hidden = false;
    }
  }
  if (event.type === "agent_error") run.dataset.error = String(data.reason ?? "error");
  if (event.type === "agent_completed") showAnswer(run, data);
  item.scrollIntoView({ block: "nearest" });
}

function describe(type, data) {
  switch (type) {
    case "agent_started":
      return [["agent", data.agent], ["message", data.message]];
    case "agent_thinking":
      return [[`step ${data.step ?? "?"}`, data.text]];
    case "tool_executing":
      return [["tool", data.tool], ["arguments", data.arguments ?? {}]];
    case "tool_completed": {
      const rows = [["tool", data.tool], ["status", data.status]];
      rows.push(data.status === "ok" ? ["result", data.result] : ["error", data.error]);
      rows.push(["duration", `${data.duration_ms} ms`]);
      return rows;
    }
    case "agent_completed":
      return [["status", data.status], ["duration", `${data.duration_ms} ms`]];
    case "agent_error":
      return [["reason", data.reason], ["phase", data.phase], ["message", data.message]];
    default:
      return [["data", data]];
  }
}

function showAnswer(run, data) {
  const status = String(data.status ?? "completed");
  run.dataset.status = status;
  const badge = $("run-status", run);
  badge.textContent = status;
  badge.dataset.status = status;
  $("cancel-button", run).hidden = true;
  const answer = $("answer", run);
  answer.hidden = false;
  answer.dataset.status = status;
  const text = data.text ? String(data.text) : `The run ended: ${status}.`;
  $("answer-text", answer).textContent = text;
  const usage = data.usage ?? {};
  $("usage", answer).textContent =
    `${usage.input_tokens ?? 0} input tokens · ${usage.output_tokens ?? 0} output tokens · ` +
    `${data.duration_ms ?? "?"} ms`;
}

function span(testid, text) {
  const element = document.createElement("span");
  element.className = testid;
  element.dataset.testid = testid;
  element.textContent = text ?? "";
  return element;
}

function timeOf(ts) {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}

function showError(frame) {
  ui.errorsPanel.hidden = false;
  const item = document.createElement("li");
  item.dataset.testid = "error";
  item.dataset.code = String(frame.code);
  const ref = frame.ref ? ` (ref ${frame.ref})` : "";
  item.textContent = `${frame.code}: ${frame.message ?? ""}${ref}`;
  ui.errors.prepend(item);
  while (ui.errors.children.length > MAX_ERRORS_SHOWN) ui.errors.lastElementChild.remove();
}

function showThread() {
  ui.threadId.textContent = state.session.threadId ?? "new";
}

// --- wiring --------------------------------------------------------------------------------

function startAs(user) {
  detachSocket(1000, "switching user");
  clearTimeout(state.reconnectTimer);
  Object.assign(state, {
    user,
    token: null,
    attempt: 0,
    session: newSession(),
    logs: new Map(),
    pending: [],
    turnsByChat: new Map(),
    runs: new Map(),
  });
  ui.conversation.replaceChildren(ui.emptyHint);
  ui.emptyHint.hidden = false;
  showThread();
  connect();
}

ui.userForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const user = ui.userInput.value.trim();
  if (user) startAs(user);
});

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text) return;
  submitChat(text);
  ui.message.value = "";
  ui.message.focus();
});

ui.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.newThread.addEventListener("click", () => {
  state.session = newSession();
  showThread();
  const divider = document.createElement("hr");
  divider.className = "thread-divider";
  divider.dataset.testid = "thread-divider";
  ui.conversation.append(divider);
  ui.message.focus();
});

startAs(ui.userInput.value.trim() || "guest");
