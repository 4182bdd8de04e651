// Users, vhosts, permissions and policies.
"use strict";

const Access = {
  async renderUsers(view) {
    const [users, permissions] = await Promise.all([Api.get("users"), Api.get("permissions")]);
    view.replaceChildren(
      el("h2", {}, "Users"),
      table("users", [
        ["Name", (u) => u.name],
        ["Tags", (u) => u.tags.join(", ")],
        ["", (u) => el("button", { type: "button", onclick: async () => { await Api.del(`users/${seg(u.name)}`); Router.refresh(); } }, "Delete")],
      ], users),
      el("h3", {}, "Add a user"),
      inlineForm("add-user", [["name", "Name"], ["password", "Password", "password"], ["tags", "Tags (comma-separated)"]], "Add user",
        async (v) => { await Api.put(`users/${seg(v.name)}`, { password: v.password, tags: v.tags }); Router.refresh(); }),
      el("h2", {}, "Permissions"),
      table("permissions", [["User", (p) => p.user], ["Vhost", (p) => p.vhost], ["Configure", (p) => p.configure],
        ["Write", (p) => p.write], ["Read", (p) => p.read],
        ["", (p) => el("button", { type: "button", onclick: async () => { await Api.del(`permissions/${seg(p.vhost)}/${seg(p.user)}`); Router.refresh(); } }, "Clear")]],
      permissions),
      el("h3", {}, "Set permissions"),
      inlineForm("set-permissions", [["user", "User"], ["vhost", "Vhost"], ["configure", "Configure"], ["write", "Write"], ["read", "Read"]],
        "Set permissions", async (v) => {
          await Api.put(`permissions/${seg(v.vhost || "/")}/${seg(v.user)}`, { configure: v.configure, write: v.write, read: v.read });
          Router.refresh();
        }));
  },
  async renderVhosts(view) {
    const vhosts = await Api.get("vhosts");
    view.replaceChildren(
      el("h2", {}, "Virtual hosts"),
      table("vhosts", [
        ["Name", (v) => v.name],
        ["Description", (v) => v.description],
        ["Messages", (v) => v.messages, true],
        ["", (v) => el("button", { type: "button", onclick: async () => { await Api.del(`vhosts/${seg(v.name)}`); Router.refresh(); } }, "Delete")],
      ], vhosts),
      el("h3", {}, "Add a vhost"),
      inlineForm("add-vhost", [["name", "Name"], ["description", "Description"]], "Add vhost",
        async (v) => { await Api.put(`vhosts/${seg(v.name)}`, { description: v.description }); Router.refresh(); }));
  },
  async renderPolicies(view) {
    const policies = await Api.get("policies");
    view.replaceChildren(
      el("h2", {}, "Policies"),
      table("policies", [
        ["Vhost", (p) => p.vhost],
        ["Name", (p) => p.name],
        ["Pattern", (p) => p.pattern],
        ["Apply to", (p) => p["apply-to"]],
        ["Definition", (p) => JSON.stringify(p.definition)],
        ["Priority", (p) => p.priority, true],
        ["", (p) => el("button", { type: "button", onclick: async () => { await Api.del(`policies/${seg(p.vhost)}/${seg(p.name)}`); Router.refresh(); } }, "Delete")],
      ], policies),
      el("h3", {}, "Add a policy"),
      inlineForm("add-policy", [["vhost", "Vhost"], ["name", "Name"], ["pattern", "Pattern"],
        ["apply-to", "Apply to", "select", ["all", "queues", "exchanges", "classic_queues", "quorum_queues"]],
        ["definition", "Definition (JSON)"], ["priority", "Priority", "number"]], "Add policy", async (v) => {
        await Api.put(`policies/${seg(v.vhost || "/")}/${seg(v.name)}`, {
          pattern: v.pattern, "apply-to": v["apply-to"], definition: JSON.parse(v.definition || "{}"), priority: Number(v.priority || 0),
        });
        Router.refresh();
      }));
  },
};
