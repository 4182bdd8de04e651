// The overview: totals, listeners, alarms, and message rates over time.
"use strict";

const Overview = {
  history: { publish: [], deliver: [] },
  async render(view) {
    const [overview, nodes] = await Promise.all([Api.get("overview"), Api.get("nodes")]);
    const totals = overview.queue_totals || {};
    const objects = overview.object_totals || {};
    const stats = overview.message_stats || {};
    const node = nodes[0] || {};
    const h = this.history;
    h.publish.push((stats.publish_details || {}).rate || 0);
    h.deliver.push((stats.deliver_get_details || {}).rate || 0);
    for (const key of Object.keys(h)) if (h[key].length > 60) h[key].shift();
    const stat = (label, value, id) => el("div", { class: "stat", id }, label, el("b", {}, value));
    const alarms = [node.mem_alarm && "memory", node.disk_free_alarm && "disk"].filter(Boolean);
    const canvas = el("canvas", { id: "rates", width: 600, height: 160 });
    view.replaceChildren(
      el("h2", {}, `Overview of ${overview.node}`),
      el("div", { class: "stats" },
        stat("Ready", totals.messages_ready || 0, "total-ready"),
        stat("Unacked", totals.messages_unacknowledged || 0, "total-unacked"),
        stat("Total", totals.messages || 0, "total-messages"),
        stat("Connections", objects.connections || 0),
        stat("Channels", objects.channels || 0),
        stat("Queues", objects.queues || 0),
        stat("Consumers", objects.consumers || 0)),
      el("h3", {}, "Message rates (published, delivered), sampled every 5 s"),
      canvas,
      el("h3", {}, "Listeners"),
      table("listeners", [["Protocol", (l) => l.protocol], ["Address", (l) => l.ip_address], ["Port", (l) => l.port, true]], overview.listeners || []),
      el("h3", {}, "Node"),
      el("p", { id: "alarms" }, alarms.length ? `Alarms in effect: ${alarms.join(", ")}` : "No alarm in effect."),
      el("p", {}, `Memory ${(node.mem_used / 1048576).toFixed(1)} MiB of ${(node.mem_limit / 1048576).toFixed(0)} MiB high watermark; `
        + `disk free ${(node.disk_free / 1073741824).toFixed(1)} GiB.`));
    Chart.draw(canvas, [{ name: "published", points: h.publish }, { name: "delivered", points: h.deliver }]);
  },
};
