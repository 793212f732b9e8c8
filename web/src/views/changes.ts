// Changes (of a plan, an apply or a drift) shown as diffs of the documents they change.

import { h } from "../dom";
import { diff, pretty } from "../diff";
import { ChangeKind, type Change } from "../gen/crossrole/v1/change_pb";

export function changesView(changes: Change[], open: boolean): HTMLElement {
  return h(
    "div",
    { class: "changes" },
    changes.map((c) => {
      const lines = diff(pretty(c.before), pretty(c.after));
      return h(
        "details",
        { class: "change", open },
        h("summary", {}, h("b", {}, kindName(c.kind)), " ", h("code", {}, c.subject)),
        lines.length
          ? h(
              "pre",
              { class: "diff" },
              lines.map((l) => h("span", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : "same" }, `${l.op} ${l.text}\n`)),
            )
          : null,
      );
    }),
  );
}

export function kindName(k: ChangeKind): string {
  return (ChangeKind[k] ?? String(k)).toLowerCase().replace(/_/g, " ");
}
