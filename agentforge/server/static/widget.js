// Embeddable AgentForge chat: <script src="https://your-server/widget.js" async></script>
// adds a chat button to the page that opens the server's chat in a panel (an iframe of /?embed=1).
(function () {
  const script = document.currentScript;
  const origin = new URL(script.src).origin;
  const title = (script.dataset && script.dataset.title) || "Chat";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = title;
  button.setAttribute("aria-label", "Open chat");
  button.style.cssText = "position:fixed;right:20px;bottom:20px;z-index:2147483646;padding:10px 16px;border:none;" +
    "border-radius:20px;background:#6d5bd0;color:#fff;font:15px system-ui,sans-serif;cursor:pointer;box-shadow:0 2px 8px #0003";
  const frame = document.createElement("iframe");
  frame.src = origin + "/?embed=1";
  frame.title = title;
  frame.style.cssText = "position:fixed;right:20px;bottom:70px;z-index:2147483647;width:380px;height:520px;max-width:90vw;" +
    "max-height:80vh;border:1px solid #ddd;border-radius:12px;box-shadow:0 4px 16px #0003;background:#fff;display:none";
  button.addEventListener("click", function () {
    frame.style.display = frame.style.display === "none" ? "block" : "none";
  });
  document.body.append(frame, button);
})();
