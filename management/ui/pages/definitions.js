// Definitions: export to a file, import from one.
"use strict";

const Definitions = {
  async render(view) {
    const download = el("a", { id: "export-link", download: "warren-definitions.json" }, "Download definitions");
    const definitions = await Api.get("definitions");
    download.href = URL.createObjectURL(new Blob([JSON.stringify(definitions, null, 2)], { type: "application/json" }));
    const file = el("input", { id: "import-file", type: "file", accept: ".json,application/json" });
    const status = el("span", { class: "status" });
    view.replaceChildren(
      el("h2", {}, "Definitions"),
      el("p", {}, download, ` (${definitions.queues.length} queues, ${definitions.exchanges.length} exchanges, `
        + `${definitions.bindings.length} bindings, ${(definitions.users || []).length} users)`),
      el("h3", {}, "Import"),
      file,
      el("button", { type: "button", id: "import-definitions", onclick: async () => {
        try {
          const text = await file.files[0].text();
          await Api.post("definitions", JSON.parse(text));
          status.textContent = "imported";
          status.className = "status ok";
        } catch (error) {
          status.textContent = error.message;
          status.className = "status error";
        }
      } }, "Import"),
      status);
  },
};
