// Connections and channels, with closing a connection.
"use strict";

const Connections = {
  async render(view) {
    const connections = await Api.get("connections");
    view.replaceChildren(
      el("h2", {}, "Connections"),
      table("connections", [
        ["Name", (c) => c.name],
        ["User", (c) => c.user],
        ["Vhost", (c) => c.vhost],
        ["TLS", (c) => c.ssl],
        ["Channels", (c) => c.channels, true],
        ["Client", (c) => (c.client_properties || {}).product || ""],
        ["", (c) => el("button", { type: "button", class: "close-connection", onclick: async () => {
          await fetch(`api/connections/${seg(c.name)}`, {
            method: "DELETE",
            headers: { authorization: "Basic " + Api.credentials(), "x-reason": "Closed via the Warren UI" },
          });
          Router.refresh();
        } }, "Close")],
      ], connections));
  },
  async renderChannels(view) {
    const channels = await Api.get("channels");
    view.replaceChildren(
      el("h2", {}, "Channels"),
      table("channels", [
        ["Channel", (c) => c.name],
        ["User", (c) => c.user],
        ["Consumers", (c) => c.consumer_count, true],
        ["Prefetch", (c) => c.prefetch_count, true],
        ["Unacked", (c) => c.messages_unacknowledged, true],
        ["Confirm", (c) => c.confirm],
      ], channels));
  },
};
