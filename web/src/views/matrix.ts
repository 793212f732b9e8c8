// The access matrix: accounts × bindings, each cell the account's state under the binding. Rows are virtual, so
// 10,000 accounts scroll freely.

import { api } from "../api";
import { badge, clear, h } from "../dom";
import { loadBindings, loadOrg, standings, suspended, type Standing } from "../model";
import { VirtualList } from "../virtual";

export async function matrixView(main: HTMLElement) {
  clear(main, h("p", { class: "loading" }, "Reading the organization and the bindings…"));
  const [org, bindings] = await Promise.all([loadOrg(api), loadBindings(api)]);
  const columns = await Promise.all(bindings.map((b) => standings(api, b)));
  const ids = [...org.accounts.keys()].sort((x, y) => {
    const a = org.accounts.get(x)?.parentPath ?? "";
    const b = org.accounts.get(y)?.parentPath ?? "";
    return a === b ? x.localeCompare(y) : a.localeCompare(b);
  });
  const template = `minmax(14rem, 2fr) 9rem ${bindings.map(() => "minmax(7rem, 1fr)").join(" ")}`;
  const list = new VirtualList<string>(
    28,
    (id) => {
      const a = org.accounts.get(id);
      return h(
        "div",
        { class: "row grid", style: `grid-template-columns:${template}`, "data-account": id },
        h("span", { class: "name", title: a?.parentPath ?? "" }, a?.name ?? id, suspended(a) ? badge("suspended") : null),
        h("code", {}, id),
        columns.map((c) => h("span", {}, badge((c.get(id) as Standing | undefined) ?? "not targeted"))),
      );
    },
    "access matrix",
    (id) => id,
  );
  clear(
    main,
    h("div", { class: "toolbar" }, h("h2", {}, "Access matrix"), h("span", { class: "muted" }, `${ids.length} accounts × ${bindings.length} bindings`)),
    h(
      "div",
      { class: "row grid head", style: `grid-template-columns:${template}` },
      h("span", {}, "account"),
      h("span", {}, "id"),
      bindings.map((b) => h("a", { href: `#/org?binding=${encodeURIComponent(b.name)}` }, b.name)),
    ),
    list.el,
  );
  list.set(ids);
}
