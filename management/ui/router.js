// Hash routing, the login form, and refreshing the overview and the lists
// every 5 s (the API samples rates at that pace); pages with forms and
// results (a queue's page) refresh only when acted on.
"use strict";

const Router = {
  // [pattern, render, refreshed every 5 s]
  routes: [
    [/^#?\/?$/, (view) => Overview.render(view), true],
    [/^#\/queues$/, (view) => Queues.render(view), true],
    [/^#\/queue\/([^/]+)\/([^/]+)$/, (view, m) => Queues.renderOne(view, decodeURIComponent(m[1]), decodeURIComponent(m[2])), false],
    [/^#\/exchanges$/, (view) => Exchanges.render(view), false],
    [/^#\/connections$/, (view) => Connections.render(view), true],
    [/^#\/channels$/, (view) => Connections.renderChannels(view), true],
    [/^#\/users$/, (view) => Access.renderUsers(view), false],
    [/^#\/vhosts$/, (view) => Access.renderVhosts(view), false],
    [/^#\/policies$/, (view) => Access.renderPolicies(view), false],
    [/^#\/shovels$/, (view) => Shovels.render(view), true],
    [/^#\/definitions$/, (view) => Definitions.render(view), false],
  ],
  // Whether the page shown refreshes by itself.
  refreshesItself() {
    const hash = location.hash || "#/";
    const route = this.routes.find(([pattern]) => pattern.test(hash));
    return route !== undefined && route[2];
  },
  timer: null,
  async refresh() {
    const view = document.getElementById("view");
    if (!Api.credentials()) return this.showLogin("");
    const hash = location.hash || "#/";
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === hash);
    const route = this.routes.find(([pattern]) => pattern.test(hash));
    try {
      if (route) await route[1](view, hash.match(route[0]));
      else view.replaceChildren(el("p", {}, "No such page."));
    } catch (error) {
      if (error.status === 401) return this.showLogin(error.message);
      view.replaceChildren(el("p", { class: "error" }, error.message));
    }
  },
  showLogin(message) {
    Api.logOut();
    document.getElementById("nav").hidden = true;
    document.getElementById("view").replaceChildren();
    document.getElementById("login").hidden = false;
    document.getElementById("login-error").textContent = message;
  },
  start() {
    document.getElementById("login").addEventListener("submit", async (event) => {
      event.preventDefault();
      Api.logIn(document.getElementById("login-user").value, document.getElementById("login-password").value);
      try {
        await Api.get("whoami");
      } catch (error) {
        return this.showLogin(error.status === 401 ? "Login failed" : error.message);
      }
      document.getElementById("login").hidden = true;
      document.getElementById("nav").hidden = false;
      this.refresh();
    });
    document.getElementById("logout").addEventListener("click", () => this.showLogin(""));
    window.addEventListener("hashchange", () => this.refresh());
    if (Api.credentials()) {
      document.getElementById("login").hidden = true;
      document.getElementById("nav").hidden = false;
    }
    this.refresh();
    // Forms being filled in are left alone.
    this.timer = setInterval(() => {
      const typing = document.activeElement && ["INPUT", "SELECT"].includes(document.activeElement.tagName);
      if (Api.credentials() && this.refreshesItself() && !typing) this.refresh();
    }, 5000);
  },
};

Router.start();
