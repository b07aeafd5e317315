// AgentForge chat: conversations kept in this browser (localStorage), answers streamed from
// /v1/chat/completions as they are generated, tool calls and tool results shown inline; an attached
// image goes with the message as an image_url part (a data URL). In agent mode (agent.js) a
// conversation is a thread of a served agent instead.
(function () {
  const $ = (id) => document.getElementById(id);
  const store = {
    load: () => JSON.parse(localStorage.getItem("agentforge.conversations") || "[]"),
    save: (list) => {
      try { localStorage.setItem("agentforge.conversations", JSON.stringify(list)); }
      catch (e) { status("this browser's storage is full (images take room): delete old conversations"); }
    },
  };
  let conversations = store.load();
  let current = null;
  let controller = null;
  let attached = null;  // the data URL of the image the next message carries

  if (new URLSearchParams(location.search).has("embed")) document.body.classList.add("embed");
  for (const id of ["api-key", "temperature", "max-tokens"]) {
    const saved = localStorage.getItem("agentforge." + id);
    if (saved !== null) $(id).value = saved;
    $(id).addEventListener("change", () => localStorage.setItem("agentforge." + id, $(id).value));
  }

  function headers() {
    const h = { "Content-Type": "application/json" };
    if ($("api-key").value) h["Authorization"] = "Bearer " + $("api-key").value;
    return h;
  }

  async function loadModels() {
    try {
      const response = await fetch("/v1/models", { headers: headers() });
      const data = await response.json();
      $("model").innerHTML = "";
      for (const m of data.data || []) {
        const option = document.createElement("option");
        option.value = option.textContent = m.id;
        $("model").appendChild(option);
      }
    } catch (e) { status("could not list models: " + e); }
  }

  function status(text) { $("status").textContent = text || ""; }

  function newConversation() {
    current = { id: Date.now().toString(36), title: "New chat", messages: [] };
    conversations.unshift(current);
    store.save(conversations);
    renderSidebar();
    renderMessages();
  }

  function renderSidebar() {
    const list = $("conversations");
    list.innerHTML = "";
    for (const c of conversations) {
      const li = document.createElement("li");
      li.className = c === current ? "active" : "";
      const title = document.createElement("span");
      title.textContent = c.title;
      const remove = document.createElement("button");
      remove.type = "button"; remove.textContent = "×"; remove.title = "Delete";
      remove.onclick = (event) => {
        event.stopPropagation();
        conversations = conversations.filter((x) => x !== c);
        store.save(conversations);
        if (c === current) { current = conversations[0] || null; if (!current) newConversation(); }
        renderSidebar(); renderMessages();
      };
      li.onclick = () => { current = c; renderSidebar(); renderMessages(); };
      li.append(title, remove);
      list.appendChild(li);
    }
  }

  function bubble(message) {
    const div = document.createElement("div");
    div.className = "message " + message.role;
    fill(div, message);
    $("messages").appendChild(div);
    $("messages").scrollTop = $("messages").scrollHeight;
    return div;
  }

  // A message's text, whether its content is a string or a list of parts.
  function textOf(content) {
    if (!Array.isArray(content)) return content || "";
    return content.filter((p) => p.type === "text").map((p) => p.text).join("");
  }

  function fill(div, message) {
    if (message.role === "assistant") div.innerHTML = window.renderMarkdown(message.content || "");
    else div.textContent = (message.role === "tool" ? "tool result: " : "") + textOf(message.content);
    if (Array.isArray(message.content)) {
      for (const part of message.content.filter((p) => p.type === "image_url").reverse()) {
        const img = document.createElement("img");
        img.src = part.image_url.url;
        img.alt = "attached image";
        div.prepend(img);
      }
    }
    for (const call of message.tool_calls || []) {
      const c = document.createElement("div");
      c.className = "tool-call";
      c.textContent = "→ " + call.function.name + "(" + call.function.arguments + ")";
      div.appendChild(c);
    }
    if (message.trace) {
      const link = document.createElement("a");
      link.className = "trace-link";
      link.href = message.trace;
      link.target = "_blank";
      link.textContent = "trace";
      div.appendChild(link);
    }
    if (message.sources && message.sources.length) {
      const list = document.createElement("ol");
      list.className = "sources";
      for (const s of message.sources) {
        const item = document.createElement("li");
        item.value = s.n;
        item.textContent = s.source + (s.section ? " (" + s.section + ")" : "");
        list.appendChild(item);
      }
      div.appendChild(list);
    }
  }

  function renderMessages() {
    $("messages").innerHTML = "";
    for (const m of (current && current.messages) || []) bubble(m);
  }

  // Server-sent events of a streamed response, as { event, data } (data: the raw text).
  async function* sseEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const parts = buffer.split("\n\n");
      buffer = parts.pop();
      for (const part of parts) {
        yield { event: (part.match(/^event: (.*)$/m) || [])[1], data: (part.match(/^data: (.*)$/m) || [])[1] };
      }
    }
  }

  function busy(on) {
    controller = on ? new AbortController() : null;
    $("send").hidden = on; $("stop").hidden = !on;
  }

  // what agent.js (agent mode) uses
  window.AgentForgeChat = {
    headers, bubble, fill, status, busy, sseEvents,
    signal: () => controller.signal,
    save: () => store.save(conversations),
  };

  function attach(url) {
    attached = url;
    $("attachment").hidden = !url;
    $("attachment").querySelector("img").src = url || "";
    if (!url) $("attach-file").value = "";
  }

  async function send(text) {
    const agent = window.AgentForgeAgent && window.AgentForgeAgent.active();
    if (attached && agent) { status("images go to the model in chat mode, not to agents"); return; }
    const user = { role: "user", content: attached ? [{ type: "image_url", image_url: { url: attached } }, { type: "text", text }] : text };
    attach(null);
    current.messages.push(user);
    if (current.title === "New chat") { current.title = text.slice(0, 40); renderSidebar(); }
    bubble(user);
    if (agent) return window.AgentForgeAgent.send(current, text);
    const answer = { role: "assistant", content: "", tool_calls: [] };
    const div = bubble(answer);
    div.classList.add("streaming");
    busy(true);
    status("generating…");
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST", headers: headers(), signal: controller.signal,
        body: JSON.stringify({
          model: $("model").value, stream: true, messages: current.messages,
          temperature: parseFloat($("temperature").value), max_tokens: parseInt($("max-tokens").value, 10),
        }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error((body.error && body.error.message) || response.statusText);
      }
      for await (const { data } of sseEvents(response)) {
        if (!data || data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (delta.content) answer.content += delta.content;
          for (const t of delta.tool_calls || []) {
            const call = answer.tool_calls[t.index] || (answer.tool_calls[t.index] = { id: t.id, type: "function", function: { name: "", arguments: "" } });
            if (t.function && t.function.name) call.function.name = t.function.name;
            if (t.function && t.function.arguments) call.function.arguments += t.function.arguments;
          }
          if (choice.finish_reason) status("finished: " + choice.finish_reason);
        }
        fill(div, answer);
        $("messages").scrollTop = $("messages").scrollHeight;
      }
    } catch (e) {
      if (e.name !== "AbortError") bubble({ role: "error", content: "Error: " + e.message });
      status(e.name === "AbortError" ? "stopped" : "");
    } finally {
      div.classList.remove("streaming");
      if (!answer.tool_calls.length) delete answer.tool_calls;
      current.messages.push(answer);
      store.save(conversations);
      busy(false);
    }
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("input").value.trim();
    if (!text || controller) return;
    $("input").value = "";
    send(text);
  });
  $("attach").addEventListener("click", () => $("attach-file").click());
  $("attach-file").addEventListener("change", () => {
    const file = $("attach-file").files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => attach(reader.result);
    reader.onerror = () => status("could not read " + file.name);
    reader.readAsDataURL(file);
  });
  $("attachment").querySelector("button").addEventListener("click", () => attach(null));
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("new-chat").addEventListener("click", newConversation);

  current = conversations[0] || null;
  if (!current) newConversation(); else { renderSidebar(); renderMessages(); }
  loadModels();
})();
