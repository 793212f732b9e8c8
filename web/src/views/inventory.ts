// The inventory of cross-account access, from the latest one crossroled finished: "who can enter this account"
// (every role of one account: who can enter it and under which conditions, its owner, when it was last used, its
// findings) and "where can this principal go" (the roles across the organization that an account or an ARN is
// named as able to enter). Read page by page as the reader scrolls, drawn only for the rows in view.

import { api, describe, isNotFound } from "../api";
import { badge, clear, h, when } from "../dom";
import {
  EntrantKind,
  InventorySeverity,
  type Entrant,
  type InventoryRole,
  type ListInventoryRequestSchema,
} from "../gen/crossrole/v1/inventory_pb";
import type { Operation } from "../gen/crossrole/v1/operation_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { loadOrg, type Org } from "../model";
import { VirtualList } from "../virtual";

type Mode = "account" | "principal";

/// Roles read per page.
const PAGE = 200;

export async function inventoryView(main: HTMLElement, mode: Mode, params: URLSearchParams, signal: AbortSignal) {
  clear(main, h("p", { class: "loading" }, "Reading the organization…"));
  const org = await loadOrg(api);
  const asked = (params.get(mode) ?? "").trim();
  const form = picker(mode, asked, org);
  const heading = h(
    "div",
    { class: "toolbar" },
    h("h2", {}, mode === "account" ? "Who can enter this account" : "Where can this principal go"),
    form,
  );
  if (!asked) {
    clear(
      main,
      heading,
      h(
        "p",
        { class: "muted" },
        mode === "account"
          ? "Pick an account: every role in it, who can enter it and under which conditions, with the inventory's findings."
          : "Type an account id or a principal's ARN: the roles across the organization it is named as able to enter.",
      ),
    );
    return;
  }
  const request: MessageInitShape<typeof ListInventoryRequestSchema> =
    mode === "account" ? { accountIds: [asked], pageSize: PAGE } : { principal: asked, pageSize: PAGE };
  clear(main, heading, h("p", { class: "loading" }, "Reading the inventory…"));
  let first;
  try {
    first = await api.inventory.listInventory(request);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    clear(main, heading, noInventory());
    return;
  }
  const roles: InventoryRole[] = [...first.roles];
  let next = first.nextPageToken;
  let reading = false;
  const count = h("span", { class: "muted", id: "inventory-count" });
  const list = new VirtualList<InventoryRole>(
    28,
    (r) => roleRow(r, mode, asked, org),
    mode === "account" ? "roles" : "roles it can enter",
    (r) => `${r.accountId}/${r.name}`,
  );
  list.el.id = "inventory";
  const draw = () => {
    count.textContent = `${roles.length}${next ? "+" : ""} ${roles.length === 1 && !next ? "role" : "roles"}`;
    list.set(roles);
  };
  list.onEnd = async () => {
    if (!next || reading || signal.aborted) return;
    reading = true;
    try {
      const page = await api.inventory.listInventory({ ...request, pageToken: next }, { signal });
      roles.push(...page.roles);
      next = page.nextPageToken;
    } catch (e) {
      if (signal.aborted) return;
      next = "";
      count.textContent = `${roles.length} roles; the rest could not be read: ${describe(e)}`;
      return;
    } finally {
      reading = false;
    }
    draw();
  };
  const what =
    mode === "account"
      ? [org.accounts.get(asked)?.name ?? "", " ", h("code", {}, asked)]
      : [h("code", {}, asked)];
  clear(
    main,
    heading,
    h("p", { class: "summary", id: "inventory-of" }, what, " — ", count, " ", source(first.operation)),
    roles.length === 0 && !next
      ? h(
          "p",
          { class: "muted", id: "inventory-empty" },
          mode === "account" ? "The inventory found no role in this account." : "The inventory found no role this principal is named as able to enter.",
        )
      : null,
    list.el,
  );
  draw();
}

/// Where the rows come from: the inventory's operation, when it finished, and the accounts it could not read.
function source(op: Operation | undefined): HTMLElement | null {
  if (!op) return null;
  const failed = op.counts?.failed ?? 0;
  return h(
    "span",
    { class: "muted" },
    "from the inventory ",
    h("a", { href: `#/operations/${op.id}` }, h("code", {}, op.id.slice(0, 8))),
    op.endTime ? ` of ${when(op.endTime)}` : "",
    failed ? `, ${failed} ${failed === 1 ? "account" : "accounts"} not read (see the operation)` : "",
  );
}

function noInventory(): HTMLElement {
  return h(
    "div",
    { class: "empty", id: "no-inventory" },
    h("p", {}, "No inventory yet: crossroled has not read who can enter the organization's accounts."),
    h("p", {}, "Make one (a token with scope plan), then come back: ", h("code", {}, `crossrole inventory`)),
  );
}

function picker(mode: Mode, asked: string, org: Org): HTMLElement {
  const input = h("input", {
    type: "search",
    id: `inventory-${mode}`,
    name: mode,
    value: asked,
    list: mode === "account" ? "inventory-accounts" : undefined,
    placeholder: mode === "account" ? "account id" : "account id or principal ARN",
    "aria-label": mode === "account" ? "account" : "principal",
    required: true,
  });
  return h(
    "form",
    {
      class: "picker",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const v = input.value.trim();
        // A name picked from the list is taken as its account.
        const id = mode === "account" ? (v.match(/\b(\d{12})\b/)?.[1] ?? v) : v;
        location.hash = `#/inventory/${mode}?${mode}=${encodeURIComponent(id)}`;
      },
    },
    input,
    mode === "account"
      ? h(
          "datalist",
          { id: "inventory-accounts" },
          [...org.accounts.values()].map((a) => h("option", { value: a.id }, a.name)),
        )
      : null,
    h("button", { type: "submit" }, "Show"),
  );
}

function roleRow(r: InventoryRole, mode: Mode, asked: string, org: Org): HTMLElement {
  const worst = r.findings[0]?.severity ?? InventorySeverity.UNSPECIFIED;
  // Where the principal goes: the entrants that name it (all of them, should none match as crossroled matched).
  const named = mode === "principal" ? r.entrants.filter((e) => names(e, asked)) : [];
  const entrants = named.length ? named : r.entrants;
  return h(
    "div",
    { class: "row role", "data-account": r.accountId, "data-role": r.name },
    h(
      "div",
      { class: "role-head" },
      mode === "principal"
        ? [h("span", { class: "name" }, org.accounts.get(r.accountId)?.name ?? ""), " ", h("code", { class: "id" }, r.accountId), " "]
        : null,
      h("b", { class: "role-name" }, r.name),
      r.findings.length ? [" ", badge(severityName(worst))] : null,
      " ",
      r.owner ? h("span", { class: "owner" }, `owned by crossrole (spec ${r.owner})`) : h("span", { class: "muted owner" }, "not owned by crossrole"),
      " ",
      h("span", { class: "muted last-used" }, r.lastUsedTime ? `last used ${when(r.lastUsedTime)}${r.lastUsedRegion ? ` in ${r.lastUsedRegion}` : ""}` : "never used"),
    ),
    h(
      "ul",
      { class: "entrants" },
      entrants.length === 0 ? h("li", { class: "muted" }, "nobody can enter") : null,
      entrants.map((e) => h("li", { class: "entrant", "data-kind": entrantKind(e.kind) }, entrantKind(e.kind), ": ", h("code", {}, e.principal), e.wholeAccount ? " (the whole account)" : "", conditions(e))),
    ),
    r.findings.length
      ? h(
          "ul",
          { class: "findings" },
          r.findings.map((f) => h("li", { class: "finding", "data-severity": severityName(f.severity) }, badge(severityName(f.severity)), " ", f.reason)),
        )
      : null,
  );
}

/// The conditions that guard an entrant, in words (never an ExternalId's value: crossroled gives none).
export function conditions(e: Entrant): string {
  const c = e.conditions;
  const out: string[] = [];
  if (c?.externalId) out.push("ExternalId");
  if (c?.mfa) out.push("MFA");
  for (const o of c?.organization ?? []) out.push(`${o.key} ${o.values.join(", ")}`);
  if (c?.sourceIdentity) out.push("source identity");
  if (c?.principalArns.length) out.push(`aws:PrincipalArn ${c.principalArns.join(", ")}`);
  if (c?.otherKeys.length) out.push(c.otherKeys.join(", "));
  return out.length ? ` — only with ${out.join("; ")}` : " — no condition";
}

/// Whether the entrant is the principal asked about (or anyone, which names every principal).
export function names(e: Entrant, asked: string): boolean {
  if (e.kind === EntrantKind.ANYONE || e.principal === asked) return true;
  const account = /^\d{12}$/.test(asked) ? asked : (asked.split(":")[4] ?? "");
  return account !== "" && e.accountId === account && (e.wholeAccount || /^\d{12}$/.test(asked));
}

export function entrantKind(k: EntrantKind): string {
  return (EntrantKind[k] ?? String(k)).toLowerCase().replace(/_/g, " ");
}

export function severityName(s: InventorySeverity): string {
  return (InventorySeverity[s] ?? String(s)).toLowerCase();
}
