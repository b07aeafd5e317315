// Agent mode of the chat app: the conversation is a thread of a served agent (the Agent Protocol
// routes); its tokens stream in, each tool call and result shows inline, and a run that waits for
// approval shows Approve / Reject buttons, one pair per pending call.
(function () {
  const $ = (id) => document.getElementById(id);
  const ui = window.AgentForgeChat;

  async function loadAssistants() {
    try {
      const response = await fetch("/assistants/search", { method: "POST", headers: ui.headers(), body: "{}" });
      for (const a of await response.json()) {
        const option = document.createElement("option");
        option.value = a.assistant_id;
        option.textContent = "Agent: " + a.assistant_id;
        $("mode").appendChild(option);
      }
      const saved = localStorage.getItem("agentforge.mode");
      if (saved && [...$("mode").options].some((o) => o.value === saved)) $("mode").value = saved;
    } catch (e) { ui.status("could not list agents: " + e); }
  }
  $("mode").addEventListener("change", () => localStorage.setItem("agentforge.mode", $("mode").value));

  async function* events(response) {
    for await (const { event, data } of ui.sseEvents(response)) if (event && data) yield [event, JSON.parse(data)];
  }

  async function ensureThread(conversation) {
    if (conversation.thread_id && conversation.assistant_id === $("mode").value) return conversation.thread_id;
    const response = await fetch("/threads", { method: "POST", headers: ui.headers(), body: "{}" });
    const thread = await response.json();
    conversation.thread_id = thread.thread_id;
    conversation.assistant_id = $("mode").value;
    return thread.thread_id;
  }

  // One run: input (a user turn) or command (a resume); renders as it streams.
  async function run(conversation, body) {
    const threadId = await ensureThread(conversation);
    let answer = null, div = null, retrieved = [], runId = null;
    const pending = [];
    ui.busy(true);
    ui.status("agent working…");
    try {
      const response = await fetch("/threads/" + threadId + "/runs/stream", {
        method: "POST", headers: ui.headers(), signal: ui.signal(),
        body: JSON.stringify({ assistant_id: conversation.assistant_id, stream_mode: ["messages-tuple", "updates"], ...body }),
      });
      if (!response.ok) {
        const error = await response.json().catch(() => ({}));
        throw new Error((error.error && error.error.message) || response.statusText);
      }
      for await (const [event, data] of events(response)) {
        if (event === "metadata") runId = data.run_id;
        else if (event === "messages" && data[1].langgraph_node === "agent" && data[0].content) {
          if (!answer) { answer = { role: "assistant", content: "" }; div = ui.bubble(answer); div.classList.add("streaming"); }
          answer.content += data[0].content;
          ui.fill(div, answer);
        } else if (event === "updates") {
          for (const [node, update] of Object.entries(data)) {
            if (node === "__interrupt__") { pending.push(...update); continue; }
            for (const m of (update && update.messages) || []) {
              if (m.type === "ai" && m.tool_calls && m.tool_calls.length) {
                const message = { role: "assistant", content: m.content || "", tool_calls: m.tool_calls.map((c) => (
                  { id: c.id, type: "function", function: { name: c.name, arguments: JSON.stringify(c.args) } })) };
                if (div) { div.classList.remove("streaming"); ui.fill(div, message); Object.assign(answer, message); }
                else conversation.messages.push(message), ui.bubble(message);
                answer = null; div = null;
              } else if (m.type === "tool") {
                const message = { role: "tool", content: m.content };
                const found = passageSources(m.content || "");
                if (found.length) retrieved = found;
                conversation.messages.push(message);
                ui.bubble(message);
              }
            }
          }
        } else if (event === "error") {
          ui.bubble({ role: "error", content: "Error: " + data.message });
        }
      }
      ui.status(pending.length ? "waiting for your approval" : "");
    } catch (e) {
      if (e.name !== "AbortError") ui.bubble({ role: "error", content: "Error: " + e.message });
      ui.status(e.name === "AbortError" ? "stopped" : "");
    } finally {
      if (div) div.classList.remove("streaming");
      if (answer && retrieved.length) answer.sources = cited(answer.content, retrieved);
      if (answer && runId && tracing) answer.trace = "/traces/" + runId;
      if (answer && (answer.sources || answer.trace)) ui.fill(div, answer);
      if (answer) conversation.messages.push(answer);
      ui.save();
      ui.busy(false);
    }
    if (pending.length) askApproval(conversation, pending);
  }

  // A knowledge-base tool answers with numbered passages: "[1] path (section)" then the text.
  function passageSources(content) {
    return [...content.matchAll(/^\[(\d+)\] (\S+)(?: \((.*)\))?$/gm)].map(
      (m) => ({ n: Number(m[1]), source: m[2], section: m[3] || "" }));
  }

  // The sources the answer cites as [n]; all of them when it cites none.
  function cited(text, sources) {
    const numbers = new Set([...(text || "").matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
    const picked = sources.filter((s) => numbers.has(s.n));
    return picked.length ? picked : sources;
  }

  function askApproval(conversation, pending) {
    const answers = {};
    for (const item of pending) {
      const call = item.value.tool_call || {};
      const box = document.createElement("div");
      box.className = "message approval";
      box.textContent = "Run " + call.name + "(" + JSON.stringify(call.args) + ")?" + (item.value.error ? " (" + item.value.error + ")" : "");
      for (const [label, value] of [["Approve", "approve"], ["Reject", { type: "reject", message: "rejected in the chat app" }]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.className = label.toLowerCase();
        button.onclick = () => {
          answers[item.id] = value;
          box.querySelectorAll("button").forEach((b) => (b.disabled = true));
          box.classList.add("answered");
          if (Object.keys(answers).length === pending.length) run(conversation, { command: { resume: answers } });
        };
        box.appendChild(button);
      }
      $("messages").appendChild(box);
    }
    $("messages").scrollTop = $("messages").scrollHeight;
  }

  // The server keeps traces (trace_store) when /api/traces answers: answers then link to theirs.
  let tracing = false;
  fetch("/api/traces?limit=1", { headers: ui.headers() }).then((r) => { tracing = r.ok; }).catch(() => {});

  window.AgentForgeAgent = {
    active: () => $("mode").value !== "",
    send: (conversation, text) => run(conversation, { input: { messages: [{ role: "user", content: text }] } }),
  };
  loadAssistants();
})();
