// Queues: the list (sortable, filterable, with depth, rates, consumers
// and consumer lag), declaring one, and a queue's page (bindings,
// consumers, get messages, publish, move messages, purge, delete).
"use strict";

const Queues = {
  filter: "",
  async render(view) {
    const queues = await Api.get("queues");
    const shown = queues.filter((q) => q.name.includes(this.filter));
    const filter = el("input", { id: "queue-filter", placeholder: "filter by name", value: this.filter });
    filter.addEventListener("change", () => { this.filter = filter.value; Router.refresh(); });
    const stats = (q) => q.message_stats || {};
    view.replaceChildren(
      el("h2", {}, "Queues"),
      filter,
      table("queues", [
        ["Vhost", (q) => q.vhost],
        ["Name", (q) => el("a", { href: `#/queue/${seg(q.vhost)}/${seg(q.name)}`, class: "queue-link" }, q.name)],
        ["Type", (q) => q.type],
        ["Ready", (q) => q.messages_ready, true],
        ["Unacked", (q) => q.messages_unacknowledged, true],
        ["Total", (q) => q.messages, true],
        ["Consumers", (q) => q.consumers, true],
        ["Publish/s", (q) => formatRate(stats(q).publish_details), true],
        ["Deliver/s", (q) => formatRate(stats(q).deliver_get_details), true],
        ["Oldest ready (s)", (q) => formatAge(q.oldest_ready_age_seconds), true],
        ["Oldest unacked (s)", (q) => formatAge(q.oldest_unacked_age_seconds), true],
        ["Policy", (q) => q.policy || ""],
      ], shown),
      el("h3", {}, "Add a queue"),
      inlineForm("add-queue", [["vhost", "Vhost"], ["name", "Name"], ["durable", "Durable", "select", ["true", "false"]]], "Add queue",
        async (v) => {
          await Api.put(`queues/${seg(v.vhost || "/")}/${seg(v.name)}`, { durable: v.durable === "true", auto_delete: false, arguments: {} });
          Router.refresh();
        }));
  },
  async renderOne(view, vhost, name) {
    const path = `queues/${seg(vhost)}/${seg(name)}`;
    const [queue, bindings, consumers] = await Promise.all([
      Api.get(path), Api.get(`${path}/bindings`), Api.get(`consumers/${seg(vhost)}`),
    ]);
    const messages = el("pre", { id: "got-messages" });
    const moving = el("p", { id: "move-status" });
    view.replaceChildren(
      el("h2", {}, `Queue ${name} in vhost ${vhost}`),
      el("div", { class: "stats" },
        el("div", { class: "stat" }, "Ready", el("b", { id: "queue-ready" }, queue.messages_ready)),
        el("div", { class: "stat" }, "Unacked", el("b", {}, queue.messages_unacknowledged)),
        el("div", { class: "stat" }, "Consumers", el("b", {}, queue.consumers)),
        el("div", { class: "stat" }, "Oldest ready (s)", el("b", { id: "queue-oldest-ready" }, formatAge(queue.oldest_ready_age_seconds))),
        el("div", { class: "stat" }, "Oldest unacked (s)", el("b", {}, formatAge(queue.oldest_unacked_age_seconds)))),
      el("p", {}, `Type ${queue.type}, ${queue.durable ? "durable" : "transient"}, arguments ${JSON.stringify(queue.arguments)}, `
        + `policy ${queue.policy || "none"}.`),
      el("h3", {}, "Bindings"),
      table("queue-bindings", [["From", (b) => b.source || "(default exchange)"], ["Routing key", (b) => b.routing_key],
        ["Arguments", (b) => JSON.stringify(b.arguments)]], bindings),
      el("h3", {}, "Consumers"),
      table("queue-consumers", [["Tag", (c) => c.consumer_tag], ["Ack required", (c) => c.ack_required],
        ["Prefetch", (c) => c.prefetch_count, true]], consumers.filter((c) => c.queue.name === name)),
      el("h3", {}, "Publish a message (to the default exchange)"),
      inlineForm("publish-message", [["payload", "Payload"]], "Publish", async (v) => {
        await Api.post(`exchanges/${seg(vhost)}/amq.default/publish`,
          { routing_key: name, payload: v.payload, payload_encoding: "string", properties: {} });
        Router.refresh();
      }),
      el("h3", {}, "Get messages"),
      inlineForm("get-messages", [["count", "Count", "number"], ["ackmode", "Ack mode", "select",
        ["ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false"]]], "Get messages", async (v) => {
        const got = await Api.post(`${path}/get`, { count: Number(v.count || 1), ackmode: v.ackmode, encoding: "auto" });
        messages.textContent = got.length ? got.map((m) => `${m.routing_key}: ${m.payload}`).join("\n") : "(queue is empty)";
      }),
      messages,
      el("h3", {}, "Move messages (e.g. replay a dead-letter queue)"),
      Shovels.moveForm(vhost, name, moving),
      moving,
      el("h3", {}, "Purge or delete"),
      el("button", { id: "purge-queue", type: "button", onclick: async () => { await Api.del(`${path}/contents`); Router.refresh(); } }, "Purge"),
      " ",
      el("button", { id: "delete-queue", type: "button", onclick: async () => { await Api.del(path); location.hash = "#/queues"; } }, "Delete"));
  },
};
