// One operation, followed live: WatchOperation replays its events from the journal and then follows it, on any
// replica. Per-account results fill in as accounts finish, in a virtual list (an operation over 10,000 accounts
// draws only the rows in view), with a filter; each account's changes open as diffs.

import { api, describe } from "../api";
import { badge, clear, h, when } from "../dom";
import { AccountOutcome, OperationState, type AccountResult, type Operation, type OperationEvent } from "../gen/crossrole/v1/operation_pb";
import { VirtualList } from "../virtual";
import { changesView, kindName } from "./changes";
import { kind, stateName } from "./operations";

export async function operationView(main: HTMLElement, id: string, signal: AbortSignal) {
  clear(main, h("p", { class: "loading" }, "Reading the operation…"));
  const { operation } = await api.ops.getOperation({ operationId: id });
  if (!operation) throw new Error(`no operation ${id}`);
  let op: Operation = operation;
  const results = new Map<string, AccountResult>();
  // Of the results, those with a final outcome.
  let finals = 0;
  let total = op.counts?.total ?? 0;
  // Accounts settled without running (skipped): done from the moment the targets are known.
  let settled = 0;
  // The operation's own counts, once it ends: exact.
  let ended: number | null = null;
  let state = op.state;
  let filter = "";
  // Why the page stopped following the operation.
  let lost = "";
  const opened: Opened = { rows: new Set(), closed: new Map() };
  const bar = h("div", { class: "bar-fill" });
  const progressBar = h("div", { class: "bar", role: "progressbar", "aria-label": "accounts done", "aria-valuemin": 0, "aria-valuemax": 100 }, bar);
  const progressText = h("span", { id: "progress" });
  const stateBadge = h("span", {});
  const message = h("p", { class: "message" });
  const shownCount = h("span", { class: "muted", id: "account-results" });
  const list = new VirtualList<AccountResult>(28, (r) => resultRow(r, opened), "accounts", (r) => r.accountId);
  list.el.id = "accounts";
  list.el.classList.add("results");
  const events = h("ol", { class: "events", reversed: true });
  let shown = 0;

  const draw = () => {
    const done = ended ?? finals + settled;
    const pct = total > 0 ? Math.min(100, Math.round((done * 100) / total)) : isFinalState(state) ? 100 : 0;
    bar.style.width = `${pct}%`;
    progressBar.setAttribute("aria-valuenow", String(pct));
    progressText.textContent = `${done} of ${total || "…"} accounts (${pct}%)`;
    progressText.dataset.percent = String(pct);
    clear(stateBadge, badge(stateName(state)));
    message.textContent = lost || op.message;
    const all = [...results.values()];
    const rows = filter ? all.filter((r) => matches(r, filter)) : all;
    shownCount.textContent = filter ? `${rows.length} of ${all.length} finished` : `${all.length} finished`;
    list.set(rows);
  };
  // A finished operation replays thousands of events at once: the page is drawn once a frame, not per event.
  let frame = 0;
  const redraw = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
    });
  };
  const onEvent = (e: OperationEvent) => {
    const ev = e.event;
    switch (ev.case) {
      case "stateChanged":
        state = ev.value.state;
        op = { ...op, message: ev.value.message };
        if (ev.value.counts?.total) total = ev.value.counts.total;
        if (ev.value.counts && isFinalState(ev.value.state)) ended = ev.value.counts.total - ev.value.counts.pending - ev.value.counts.running;
        break;
      case "targetsResolved":
        total = Math.max(total, ev.value.targetCount + ev.value.skippedCount + ev.value.cleanupCount);
        settled = ev.value.skippedCount;
        break;
      case "accountFinished": {
        const r = ev.value.result;
        if (!r) break;
        const before = results.get(r.accountId);
        if (before && isFinal(before.outcome)) finals--;
        if (isFinal(r.outcome)) finals++;
        results.set(r.accountId, r);
        break;
      }
      default:
        break;
    }
    if (shown < 500) {
      events.prepend(h("li", {}, h("code", {}, `#${e.sequence}`), " ", when(e.time), " ", e.accountId ? h("code", {}, e.accountId) : null, " ", describeEvent(e)));
      shown++;
    }
    redraw();
  };
  const search = h("input", {
    type: "search",
    placeholder: "filter by name, id or outcome",
    "aria-label": "filter accounts",
    oninput: (e: Event) => {
      filter = (e.target as HTMLInputElement).value.trim().toLowerCase();
      draw();
    },
  });

  clear(
    main,
    h(
      "div",
      { class: "toolbar" },
      h("h2", {}, kind(op.kind), " ", op.spec?.name ?? "", op.dryRun ? " (dry run)" : ""),
      stateBadge,
      h("code", { class: "muted" }, op.id),
    ),
    h("p", { class: "muted" }, `created ${when(op.createTime)} by ${op.createdBy}`, op.bindingName ? ` for binding ${op.bindingName}` : ""),
    progressBar,
    progressText,
    message,
    h("div", { class: "toolbar" }, h("h3", {}, "Accounts"), shownCount, search),
    h("div", { class: "row grid head result-columns", "aria-hidden": "true" }, ["account", "outcome", "error", "changes"].map((t) => h("span", {}, t))),
    list.el,
    h("h3", {}, "Events"),
    events,
  );
  draw();
  try {
    for await (const r of api.ops.watchOperation({ operationId: id, afterSequence: 0n }, { signal })) {
      if (r.event) onEvent(r.event);
    }
  } catch (e) {
    if (signal.aborted) return;
    lost = `The live stream ended: ${describe(e)}. Reload to follow it again.`;
    draw();
  }
}

/// What the reader opened: the accounts whose changes are open, and in each the diffs closed again (by index). A
/// row drawn again (scrolled away and back) opens as it was.
type Opened = { rows: Set<string>; closed: Map<string, Set<number>> };

/// An account's row: its outcome, its error and its changes in one line; the changes open into their diffs in
/// place, drawn when first opened.
function resultRow(r: AccountResult, opened: Opened): HTMLElement {
  const id = r.accountId;
  const error = r.error ? `${r.error.code}: ${r.error.message}` : "";
  const panel = h("div", { class: "result-changes", id: `changes-${id}` });
  const show = (open: boolean) => {
    if (open && !panel.firstChild) {
      const closed = opened.closed.get(id) ?? new Set<number>();
      opened.closed.set(id, closed);
      const view = changesView(r.changes, true);
      view.querySelectorAll("details").forEach((d, i) => {
        d.open = !closed.has(i);
        d.addEventListener("toggle", () => (d.open ? closed.delete(i) : closed.add(i)));
      });
      panel.appendChild(view);
    }
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "▾" : "▸";
  };
  // In place, not by drawing the row again: the button keeps the focus.
  const toggle = h("button", {
    class: "toggle changes-toggle",
    "aria-controls": panel.id,
    "aria-label": `changes in ${r.accountName || id}`,
    onclick: () => {
      if (opened.rows.has(id)) opened.rows.delete(id);
      else opened.rows.add(id);
      show(opened.rows.has(id));
    },
  });
  show(opened.rows.has(id) && r.changes.length > 0);
  return h(
    "div",
    { class: "row result", "data-account": id },
    h(
      "div",
      { class: "result-columns" },
      h("span", { class: "name" }, r.accountName || id, " ", h("code", { class: "id" }, id)),
      h("span", {}, badge(outcomeName(r.outcome))),
      h("span", { class: "result-error", title: error }, error),
      r.changes.length
        ? h(
            "span",
            { class: "change-list" },
            toggle,
            `${r.changes.length} ${r.changes.length === 1 ? "change" : "changes"}: `,
            r.changes.map((c, i) => [i ? ", " : "", h("b", {}, kindName(c.kind)), " ", h("code", {}, c.subject)]),
          )
        : h("span", { class: "muted" }, "no change"),
    ),
    r.changes.length ? panel : null,
  );
}

function matches(r: AccountResult, filter: string): boolean {
  return [r.accountName, r.accountId, outcomeName(r.outcome)].some((s) => s.toLowerCase().includes(filter));
}

function isFinalState(s: OperationState): boolean {
  return [OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED].includes(s);
}

function isFinal(o: AccountOutcome): boolean {
  return ![AccountOutcome.UNSPECIFIED, AccountOutcome.PENDING, AccountOutcome.RUNNING].includes(o);
}

function outcomeName(o: AccountOutcome): string {
  return (AccountOutcome[o] ?? String(o)).toLowerCase().replace(/_/g, " ");
}

function describeEvent(e: OperationEvent): string {
  const ev = e.event;
  switch (ev.case) {
    case "stateChanged":
      return `state ${stateName(ev.value.state)}${ev.value.message ? `: ${ev.value.message}` : ""}`;
    case "targetsResolved":
      return `targets known: ${ev.value.targetCount} to work on, ${ev.value.skippedCount} skipped, ${ev.value.cleanupCount} to clean up`;
    case "phaseStarted":
      return `phase ${String(ev.value.phase)}`;
    case "changeApplied":
      return `applied ${ev.value.change ? kindName(ev.value.change.kind) : ""} ${ev.value.change?.subject ?? ""}`;
    case "callRetried":
      return `retried ${ev.value.call} (${ev.value.awsErrorCode || "transient"}), attempt ${ev.value.attempt}`;
    case "accountFinished":
      return `finished: ${ev.value.result ? outcomeName(ev.value.result.outcome) : ""}`;
    default:
      return "";
  }
}
