// The HTTP API as the pages use it: credentials kept for the session,
// JSON in and out, RabbitMQ's error bodies turned into messages; and the
// small DOM helpers every page shares.
"use strict";

const Api = {
  credentials() {
    return sessionStorage.getItem("warren-auth");
  },
  logIn(user, password) {
    sessionStorage.setItem("warren-auth", btoa(unescape(encodeURIComponent(user + ":" + password))));
  },
  logOut() {
    sessionStorage.removeItem("warren-auth");
  },
  async request(method, path, body) {
    const headers = { authorization: "Basic " + this.credentials() };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch("api/" + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const reason = data && (data.reason || data.error);
      const error = new Error(`${response.status}: ${reason || response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return data;
  },
  get(path) { return this.request("GET", path); },
  put(path, body) { return this.request("PUT", path, body || {}); },
  post(path, body) { return this.request("POST", path, body || {}); },
  del(path) { return this.request("DELETE", path); },
};

// A path segment ("/" becomes "%2F").
function seg(text) {
  return encodeURIComponent(text);
}

// Builds an element: el("td", {class: "num"}, "3").
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A sortable table: columns are [heading, value(row), numeric?].
function table(id, columns, rows) {
  let sortBy = -1;
  let reverse = false;
  const body = el("tbody");
  const render = () => {
    const sorted = rows.slice();
    if (sortBy >= 0) {
      const value = columns[sortBy][1];
      sorted.sort((a, b) => {
        const x = value(a), y = value(b);
        const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return reverse ? -order : order;
      });
    }
    body.replaceChildren(...sorted.map((row) =>
      el("tr", {}, columns.map(([, value, numeric]) => el("td", numeric ? { class: "num" } : {}, value(row))))));
  };
  const head = el("tr", {}, columns.map(([heading], i) => el("th", {
    onclick: () => { reverse = sortBy === i ? !reverse : false; sortBy = i; render(); },
  }, heading)));
  render();
  return el("table", { id }, el("thead", {}, head), body);
}

// A form whose fields are [name, label, type?]; submit(values) runs on submit.
function inlineForm(id, fields, button, submit) {
  const status = el("span", { class: "status" });
  const form = el("form", { class: "inline", id },
    fields.map(([name, label, type]) => el("label", {}, label,
      type === "select"
        ? el("select", { name }, ...(fields.find((f) => f[0] === name)[3] || []).map((o) => el("option", { value: o }, o)))
        : el("input", { name, type: type || "text" }))),
    el("button", { type: "submit" }, button), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    try {
      await submit(values);
      status.textContent = "done";
      status.className = "status ok";
    } catch (error) {
      status.textContent = error.message;
      status.className = "status error";
    }
  });
  return form;
}

// A consumer-lag age in seconds, to a tenth ("" when nothing waits); a
// number, so that tables sort it as one.
function formatAge(seconds) {
  return typeof seconds === "number" ? Math.round(seconds * 10) / 10 : "";
}

function formatRate(details) {
  return details && typeof details.rate === "number" ? details.rate.toFixed(1) : "0.0";
}
