// A virtual list: only the rows in view (and a few more) are in the DOM, so 10,000 accounts scroll as freely as
// ten. Rows have one fixed height.

export class VirtualList<T> {
  readonly el: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly window: HTMLDivElement;
  private items: T[] = [];
  private frame = 0;

  constructor(
    private readonly rowHeight: number,
    private readonly render: (item: T, index: number) => HTMLElement,
    label: string,
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
    window.addEventListener("resize", () => this.schedule());
  }

  set(items: T[]) {
    this.items = items;
    this.spacer.style.height = `${items.length * this.rowHeight}px`;
    this.draw();
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /// Draws the rows in view now.
  draw() {
    const height = this.el.clientHeight || window.innerHeight;
    const first = Math.max(0, Math.floor(this.el.scrollTop / this.rowHeight) - 10);
    const last = Math.min(this.items.length, Math.ceil((this.el.scrollTop + height) / this.rowHeight) + 10);
    this.window.style.transform = `translateY(${first * this.rowHeight}px)`;
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const row = this.render(this.items[i], i);
      row.style.height = `${this.rowHeight}px`;
      row.setAttribute("role", "listitem");
      rows.push(row);
    }
    this.window.replaceChildren(...rows);
  }
}
