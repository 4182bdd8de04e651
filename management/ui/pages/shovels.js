// Shovels: their status (refreshed), deleting one, and the "Move messages"
// form of a queue's page (a shovel that moves what the queue holds to
// another queue and deletes itself, as RabbitMQ's UI defines it).
"use strict";

const Shovels = {
  async render(view) {
    const shovels = await Api.get("shovels");
    view.replaceChildren(
      el("h2", {}, "Shovels"),
      table("shovels", [
        ["Vhost", (s) => s.vhost],
        ["Name", (s) => s.name],
        ["State", (s) => s.state],
        ["Source", (s) => s.src_queue || s.src_exchange || ""],
        ["Destination", (s) => s.dest_queue || s.dest_exchange || "(original exchange)"],
        ["Since", (s) => s.timestamp],
        ["Reason", (s) => s.reason || ""],
        ["", (s) => el("button", { type: "button", class: "delete-shovel", onclick: async () => {
          await Api.del(`shovels/vhost/${seg(s.vhost)}/${seg(s.name)}`);
          Router.refresh();
        } }, "Delete")],
      ], shovels));
  },
  // The form that moves a queue's messages elsewhere.
  moveForm(vhost, queue, status) {
    return inlineForm("move-messages", [["destination", "Destination queue"]], "Move messages", async (v) => {
      const uri = `amqp:///${encodeURIComponent(vhost)}`;
      await Api.put(`parameters/shovel/${seg(vhost)}/${seg(`Move from ${queue}`)}`, { value: {
        "src-uri": uri, "src-queue": queue, "src-protocol": "amqp091", "src-prefetch-count": 1000,
        "src-delete-after": "queue-length", "dest-uri": uri, "dest-queue": v.destination,
        "dest-protocol": "amqp091", "dest-add-forward-headers": false, "ack-mode": "on-confirm",
      } });
      status.textContent = `Moving messages to ${v.destination}: see Shovels.`;
    });
  },
};
