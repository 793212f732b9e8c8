// A virtual list: only the rows in view (and a few more) are in the DOM, so 10,000 accounts scroll as freely as
// ten. A row is `rowHeight` high until it grows (an account's changes opened): rows are measured while they are
// drawn, and where each row starts is kept per row, so a taller row moves down the ones after it. A row stays in
// the DOM, as it is, while it is in view and drawn from the same item (===): what the reader opened or focused in
// it stays so as the list scrolls and the items around it change.

/// Rows drawn above and below the ones in view.
const OVERSCAN = 10;

export class VirtualList<T> {
  readonly el: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly window: HTMLDivElement;
  private items: T[] = [];
  /// Where each row starts; at `items.length`, the height of them all.
  private tops = new Float64Array(1);
  /// The rows measured at another height than `rowHeight`, by key.
  private readonly heights = new Map<string, number>();
  /// The rows in the DOM, by key, with the item each was drawn from.
  private drawn = new Map<string, { item: T; row: HTMLElement }>();
  private readonly keys = new WeakMap<Element, string>();
  private readonly sizes: ResizeObserver;
  private frame = 0;
  /// Called when the last row is drawn (the reader reached the end): a view that reads its rows page by page
  /// reads the next one then.
  onEnd: (() => void) | null = null;

  constructor(
    private readonly rowHeight: number,
    private readonly render: (item: T) => HTMLElement,
    label: string,
    /// Names an item's row from one `set` to the next (an account's id).
    private readonly key: (item: T) => string,
  ) {
    this.el = document.createElement("div");
    this.el.className = "virtual";
    this.el.setAttribute("role", "list");
    this.el.setAttribute("aria-label", label);
    this.spacer = document.createElement("div");
    this.window = document.createElement("div");
    this.window.className = "virtual-window";
    this.spacer.appendChild(this.window);
    this.el.appendChild(this.spacer);
    this.el.addEventListener("scroll", () => this.schedule());
    // The list's own size (the window resized) and each drawn row's.
    this.sizes = new ResizeObserver((entries) => this.resized(entries));
    this.sizes.observe(this.el);
  }

  set(items: T[]) {
    this.items = items;
    this.layout();
    this.draw();
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private layout() {
    const n = this.items.length;
    if (this.tops.length !== n + 1) this.tops = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      const height = this.heights.size ? (this.heights.get(this.key(this.items[i])) ?? this.rowHeight) : this.rowHeight;
      this.tops[i + 1] = this.tops[i] + height;
    }
    this.spacer.style.height = `${this.tops[n]}px`;
  }

  /// The row at `y`: the last one that starts at or above it.
  private at(y: number): number {
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.tops[mid] <= y) lo = mid;
      else hi = mid - 1;
    }
    return Math.max(0, lo);
  }

  private draw() {
    const n = this.items.length;
    const top = this.el.scrollTop;
    const height = this.el.clientHeight || window.innerHeight;
    const first = Math.max(0, this.at(top) - OVERSCAN);
    const last = Math.min(n, this.at(top + height) + 1 + OVERSCAN);
    const drawn = new Map<string, { item: T; row: HTMLElement }>();
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const item = this.items[i];
      const key = this.key(item);
      const had = this.drawn.get(key);
      const row = had && had.item === item ? had.row : this.fresh(item, key);
      // Only some rows are in the DOM: each says where it is among them all.
      row.setAttribute("aria-posinset", String(i + 1));
      row.setAttribute("aria-setsize", String(n));
      drawn.set(key, { item, row });
      rows.push(row);
    }
    for (const [key, { row }] of this.drawn) if (drawn.get(key)?.row !== row) this.sizes.unobserve(row);
    this.drawn = drawn;
    this.window.style.transform = `translateY(${this.tops[first]}px)`;
    // The rows that stay are not taken out and put back (that would close and blur what is open in them).
    const staying = new Set<Element>(rows);
    for (const child of [...this.window.children]) if (!staying.has(child)) child.remove();
    let next = this.window.firstElementChild;
    for (const row of rows) {
      if (row === next) next = next.nextElementSibling;
      else this.window.insertBefore(row, next);
    }
    if (last === n) this.onEnd?.();
  }

  private fresh(item: T, key: string): HTMLElement {
    const row = this.render(item);
    row.style.minHeight = `${this.rowHeight}px`;
    row.setAttribute("role", "listitem");
    this.keys.set(row, key);
    this.sizes.observe(row);
    return row;
  }

  private resized(entries: ResizeObserverEntry[]) {
    let changed = false;
    for (const e of entries) {
      if (e.target === this.el) {
        changed = true;
        continue;
      }
      const key = this.keys.get(e.target);
      const height = e.borderBoxSize[0]?.blockSize ?? 0;
      // A row out of the DOM measures nothing: it keeps the height it had.
      if (key === undefined || !e.target.isConnected || height === 0) continue;
      if (Math.abs(height - (this.heights.get(key) ?? this.rowHeight)) < 0.5) continue;
      if (Math.abs(height - this.rowHeight) < 0.5) this.heights.delete(key);
      else this.heights.set(key, height);
      changed = true;
    }
    if (!changed) return;
    this.layout();
    this.schedule();
  }
}
