// The organization tree: OU paths and accounts, SUSPENDED marked, and for a chosen binding each account's badge
// (in sync, drifted, failed, not owned, skipped) with its Switch Role link or console command.

import { api, describe } from "../api";
import { badge, clear, h } from "../dom";
import type { Binding } from "../gen/crossrole/v1/binding_pb";
import type { OrganizationalUnit } from "../gen/crossrole/v1/organization_pb";
import { loadBindings, loadOrg, standings, stateName, suspended, type Org, type Standing } from "../model";
import { VirtualList } from "../virtual";

type Row = { kind: "unit"; unit: OrganizationalUnit; depth: number; count: number } | { kind: "account"; id: string; depth: number };

/// Links per account for a binding: a Switch Role URL, or why the console cannot be used.
type Links = Map<string, { url: string; why: string }>;

export async function orgView(main: HTMLElement, params: URLSearchParams) {
  clear(main, h("p", { class: "loading" }, "Reading the organization…"));
  const [org, bindings] = await Promise.all([loadOrg(api), loadBindings(api)]);
  const chosen = bindings.find((b) => b.name === params.get("binding"));
  const states = chosen ? await standings(api, chosen) : new Map<string, Standing>();
  const links = chosen ? await switchLinks(chosen) : new Map();
  const collapsed = new Set<string>();
  let filter = "";

  const list = new VirtualList<Row>(
    28,
    (row) => render(row, org, chosen, states, links, collapsed, redraw),
    "organization",
    (row) => (row.kind === "unit" ? `unit:${row.unit.id}` : `account:${row.id}`),
  );
  function redraw() {
    list.set(flatten(org, collapsed, filter));
  }
  const select = h(
    "select",
    {
      id: "binding",
      "aria-label": "binding",
      onchange: (e: Event) => {
        const name = (e.target as HTMLSelectElement).value;
        location.hash = name ? `#/org?binding=${encodeURIComponent(name)}` : "#/org";
      },
    },
    h("option", { value: "" }, "— badges for a binding —"),
    bindings.map((b) => h("option", { value: b.name, selected: b.name === chosen?.name }, b.name)),
  );
  const search = h("input", {
    type: "search",
    placeholder: "filter accounts by name or id",
    "aria-label": "filter",
    oninput: (e: Event) => {
      filter = (e.target as HTMLInputElement).value.trim().toLowerCase();
      redraw();
    },
  });
  const counts = new Map<Standing, number>();
  for (const s of states.values()) counts.set(s, (counts.get(s) ?? 0) + 1);
  clear(
    main,
    h(
      "div",
      { class: "toolbar" },
      h("h2", {}, "Organization ", h("code", {}, org.id)),
      h("span", { class: "muted", id: "account-count" }, `${org.accounts.size} accounts`),
      select,
      search,
    ),
    chosen
      ? h(
          "p",
          { class: "summary", id: "binding-summary" },
          `${chosen.name}: `,
          [...counts].map(([s, n]) => [badge(s, `${n} ${s}`), " "]),
        )
      : null,
    list.el,
  );
  redraw();
}

function flatten(org: Org, collapsed: Set<string>, filter: string): Row[] {
  const rows: Row[] = [];
  const walk = (unit: OrganizationalUnit, depth: number): number => {
    const at = rows.length;
    rows.push({ kind: "unit", unit, depth, count: 0 });
    let count = 0;
    const open = !collapsed.has(unit.id);
    for (const child of unit.children) {
      const before = rows.length;
      const n = walk(child, depth + 1);
      count += n;
      if (!open || (filter && n === 0)) rows.length = before;
    }
    for (const id of unit.accountIds) {
      const a = org.accounts.get(id);
      if (filter && !(id.includes(filter) || (a?.name ?? "").toLowerCase().includes(filter))) continue;
      count++;
      if (open) rows.push({ kind: "account", id, depth: depth + 1 });
    }
    rows[at] = { kind: "unit", unit, depth, count };
    return count;
  };
  walk(org.root, 0);
  return rows;
}

function render(
  row: Row,
  org: Org,
  chosen: Binding | undefined,
  states: Map<string, Standing>,
  links: Links,
  collapsed: Set<string>,
  redraw: () => void,
): HTMLElement {
  const indent = { style: `padding-left:${row.depth * 18 + 6}px` };
  if (row.kind === "unit") {
    const open = !collapsed.has(row.unit.id);
    return h(
      "div",
      { class: "row unit", ...indent },
      h(
        "button",
        {
          class: "toggle",
          "aria-expanded": String(open),
          onclick: () => {
            if (open) collapsed.add(row.unit.id);
            else collapsed.delete(row.unit.id);
            redraw();
          },
        },
        open ? "▾" : "▸",
      ),
      h("span", { class: "unit-name" }, row.unit.path || row.unit.name),
      h("span", { class: "muted" }, ` ${row.count} ${row.count === 1 ? "account" : "accounts"}`),
    );
  }
  const a = org.accounts.get(row.id);
  const state = states.get(row.id);
  const link = links.get(row.id);
  return h(
    "div",
    { class: "row account", "data-account": row.id, ...indent },
    h("span", { class: "name" }, a?.name ?? row.id),
    h("code", { class: "id" }, row.id),
    suspended(a) ? badge("suspended", a ? stateName(a) : "UNKNOWN") : null,
    chosen ? badge(state ?? "not targeted") : null,
    // Only where crossrole applied the binding's spec (crossroled gives no link elsewhere): a Switch Role link, or
    // the command that signs in where the console cannot switch.
    chosen && state && state !== "skipped" && state !== "not targeted" && link
      ? link.url.startsWith("https://")
        ? h("a", { href: link.url, target: "_blank", rel: "noopener noreferrer", class: "switch" }, "Switch Role")
        : h("code", { class: "console", title: link.why }, `crossrole console ${row.id} --binding ${chosen.name}`)
      : null,
  );
}

async function switchLinks(b: Binding): Promise<Links> {
  const out: Links = new Map();
  if (!b.spec) return out;
  try {
    const r = await api.access.getSwitchRoleLinks({ spec: b.spec });
    for (const l of r.links) out.set(l.accountId, { url: l.url, why: l.unusableReason });
  } catch (e) {
    console.warn("no Switch Role links:", describe(e));
  }
  return out;
}
