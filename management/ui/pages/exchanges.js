// Exchanges: the list, declaring one, and publishing a message to one.
"use strict";

const Exchanges = {
  async render(view) {
    const exchanges = await Api.get("exchanges");
    view.replaceChildren(
      el("h2", {}, "Exchanges"),
      table("exchanges", [
        ["Vhost", (x) => x.vhost],
        ["Name", (x) => x.name || "(AMQP default)"],
        ["Type", (x) => x.type],
        ["Durable", (x) => x.durable],
        ["Internal", (x) => x.internal],
        ["Policy", (x) => x.policy || ""],
      ], exchanges),
      el("h3", {}, "Add an exchange"),
      inlineForm("add-exchange", [["vhost", "Vhost"], ["name", "Name"], ["type", "Type", "select", ["direct", "fanout", "topic", "headers", "x-consistent-hash"]]],
        "Add exchange", async (v) => {
          await Api.put(`exchanges/${seg(v.vhost || "/")}/${seg(v.name)}`, { type: v.type, durable: true });
          Router.refresh();
        }),
      el("h3", {}, "Publish a message"),
      inlineForm("publish-to-exchange", [["vhost", "Vhost"], ["exchange", "Exchange"], ["routing_key", "Routing key"], ["payload", "Payload"]],
        "Publish", async (v) => {
          const answer = await Api.post(`exchanges/${seg(v.vhost || "/")}/${seg(v.exchange || "amq.default")}/publish`,
            { routing_key: v.routing_key, payload: v.payload, payload_encoding: "string", properties: {} });
          if (!answer.routed) throw new Error("published, but routed to no queue");
        }));
  },
};
