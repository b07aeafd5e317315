// A small, safe Markdown renderer: text is HTML-escaped first, then code blocks, inline code,
// headings, lists, bold, italics and http(s) links are formatted. No raw HTML gets through.
(function () {
  function escape(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function inline(text) {
    return text
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[^*])\*([^*]+)\*/g, "$1<em>$2</em>")
      .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  }
  function render(source) {
    const parts = escape(source).split(/```/);
    let html = "";
    parts.forEach(function (part, i) {
      if (i % 2 === 1) {
        html += "<pre><code>" + part.replace(/^[\w-]*\n/, "") + "</code></pre>";
        return;
      }
      let list = null;
      part.split("\n").forEach(function (line) {
        const item = line.match(/^\s*(?:[-*]|\d+\.)\s+(.*)$/);
        if (item) {
          if (!list) { list = /^\s*\d/.test(line) ? "ol" : "ul"; html += "<" + list + ">"; }
          html += "<li>" + inline(item[1]) + "</li>";
          return;
        }
        if (list) { html += "</" + list + ">"; list = null; }
        const heading = line.match(/^(#{1,4})\s+(.*)$/);
        if (heading) { html += "<h" + (heading[1].length + 2) + ">" + inline(heading[2]) + "</h" + (heading[1].length + 2) + ">"; }
        else if (line.trim()) { html += "<p>" + inline(line) + "</p>"; }
      });
      if (list) { html += "</" + list + ">"; }
    });
    return html;
  }
  window.renderMarkdown = render;
})();
