// crossrole's console: sign in with a token, then the organization, the access matrix, operations (followed live),
// bindings (with what is left of their access) and the inventory (who can enter an account, where a principal can
// go), all read through the same gRPC API as every other client.

import "./style.css";
import { api, describe, isUnauthenticated, token } from "./api";
import { clear, h } from "./dom";
import { bindingsView } from "./views/bindings";
import { inventoryView } from "./views/inventory";
import { matrixView } from "./views/matrix";
import { operationView } from "./views/operation";
import { operationsView } from "./views/operations";
import { orgView } from "./views/org";

const app = document.getElementById("app") as HTMLElement;
let current: AbortController | null = null;

function signIn(problem?: string) {
  token.clear();
  const input = h("input", { type: "password", id: "token", autocomplete: "off", "aria-label": "token", required: true });
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        token.set(input.value.trim());
        try {
          await api.org.describeOrganization({});
          if (!location.hash || location.hash === "#/signin") location.hash = "#/org";
          route();
        } catch (err) {
          signIn(describe(err));
        }
      },
    },
    h("h1", {}, "crossrole"),
    h("p", {}, "Sign in with a crossroled token (a read token is enough). It stays in this tab only."),
    input,
    h("button", { type: "submit" }, "Sign in"),
    problem ? h("p", { class: "error", role: "alert" }, problem) : null,
  );
  clear(app, form);
  input.focus();
}

function shell(): HTMLElement {
  const main = h("main", { id: "main" });
  const link = (href: string, label: string) =>
    h("a", { href, class: location.hash.startsWith(href.split("?")[0]) ? "active" : "" }, label);
  clear(
    app,
    h(
      "header",
      {},
      h("span", { class: "brand" }, "crossrole"),
      h(
        "nav",
        {},
        link("#/org", "Organization"),
        link("#/matrix", "Access matrix"),
        link("#/operations", "Operations"),
        link("#/bindings", "Bindings"),
        link("#/inventory/account", "Who can enter"),
        link("#/inventory/principal", "Where can it go"),
      ),
      h("button", { class: "signout", onclick: () => signIn() }, "Sign out"),
    ),
    main,
  );
  return main;
}

async function route() {
  if (!token.get()) return signIn();
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const [path, query] = (location.hash.slice(1) || "/org").split("?");
  const params = new URLSearchParams(query ?? "");
  const main = shell();
  try {
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "operations" && parts[1]) await operationView(main, parts[1], controller.signal);
    else if (parts[0] === "operations") await operationsView(main);
    else if (parts[0] === "bindings") await bindingsView(main);
    else if (parts[0] === "matrix") await matrixView(main);
    else if (parts[0] === "inventory") await inventoryView(main, parts[1] === "principal" ? "principal" : "account", params, controller.signal);
    else await orgView(main, params);
  } catch (e) {
    if (controller.signal.aborted) return;
    if (isUnauthenticated(e)) return signIn(describe(e));
    clear(main, h("p", { class: "error", role: "alert" }, describe(e)));
  }
}

window.addEventListener("hashchange", route);
route();
