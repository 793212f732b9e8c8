// Operations, newest first.

import { api } from "../api";
import { badge, clear, h, when } from "../dom";
import { OperationKind, OperationState, type Operation } from "../gen/crossrole/v1/operation_pb";

export async function operationsView(main: HTMLElement) {
  clear(main, h("p", { class: "loading" }, "Reading operations…"));
  const { operations } = await api.ops.listOperations({ pageSize: 100 });
  clear(
    main,
    h("div", { class: "toolbar" }, h("h2", {}, "Operations"), h("span", { class: "muted" }, `${operations.length} newest`)),
    h(
      "table",
      { class: "table", id: "operations" },
      h("thead", {}, h("tr", {}, ["operation", "kind", "spec", "state", "accounts", "created", "by"].map((t) => h("th", {}, t)))),
      h("tbody", {}, operations.map(row)),
    ),
  );
}

function row(op: Operation): HTMLElement {
  const c = op.counts;
  return h(
    "tr",
    {},
    h("td", {}, h("a", { href: `#/operations/${op.id}` }, h("code", {}, op.id))),
    h("td", {}, kind(op.kind), op.dryRun ? " (dry run)" : ""),
    h("td", {}, op.spec?.name ?? "", op.bindingName ? h("span", { class: "muted" }, ` binding ${op.bindingName}`) : null),
    h("td", {}, badge(stateName(op.state))),
    h("td", {}, c ? `${c.changed} changed, ${c.unchanged} unchanged, ${c.failed} failed of ${c.total}` : ""),
    h("td", {}, when(op.createTime)),
    h("td", {}, op.createdBy),
  );
}

export function kind(k: OperationKind): string {
  return (OperationKind[k] ?? String(k)).toLowerCase();
}

export function stateName(s: OperationState): string {
  return (OperationState[s] ?? String(s)).toLowerCase();
}
